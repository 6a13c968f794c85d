package ingest

import "time"

// Status is the state of a camera's connection.
type Status string

// Camera statuses.
const (
	// StatusOffline: an on-demand camera that nobody is watching; not pulled.
	StatusOffline Status = "offline"
	// StatusConnecting: connecting, describing or setting up.
	StatusConnecting Status = "connecting"
	// StatusOnline: playing.
	StatusOnline Status = "online"
	// StatusRetrying: the last session failed; waiting to reconnect.
	StatusRetrying Status = "retrying"
)

// CameraState is a snapshot of one camera, safe to show to operators: it
// holds no URL and no credentials.
type CameraState struct {
	ID, Name string
	Status   Status
	// Since is when Status last changed.
	Since time.Time
	// LastError is the error that ended the last session, "" if none. An
	// authentication failure starts with "authentication failed".
	LastError string
	// Tracks are the tracks of the current (or last) session.
	Tracks []Track
	// BitrateKbps and FrameRate (video units per second) are measured over
	// the last few seconds; 0 when not online.
	BitrateKbps float64
	FrameRate   float64
	// Viewers is the number of readers.
	Viewers int
	// Reconnects counts sessions started after a failed one.
	Reconnects uint64
	// Dropped counts units that slow readers dropped, in total.
	Dropped uint64
	// BytesReceived and PacketsReceived count RTP payload bytes (with
	// headers) and packets received from the camera, in total.
	BytesReceived   uint64
	PacketsReceived uint64
	// PacketsLost counts RTP packets that never arrived (sequence gaps).
	PacketsLost uint64
}
