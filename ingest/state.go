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
// holds no URL and no credentials. Its fields from Status to PacketsLost are
// the main stream's (see StreamState); Sub is the sub stream's.
type CameraState struct {
	ID, Name string
	Status   Status
	// Since is when Status last changed.
	Since time.Time
	// LastError is the error that ended the last session, "" if none. An
	// authentication failure starts with "authentication failed". It is
	// for logs and admins: it may name the camera's address.
	LastError string
	// Reason is LastError's kind, "" if none: what an operator is told.
	Reason Reason
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
	// PacketsSplit counts video packets larger than MaxPacketSize that were
	// re-packetized; PacketsUnsplit those that could not be (interleaved
	// mode, malformed) and were dropped.
	PacketsSplit   uint64
	PacketsUnsplit uint64
	// Held is the end of the hold (Manager.Hold) that keeps the stream
	// pulled without readers; zero when none.
	Held time.Time

	// Sub is the state of the camera's sub stream; nil when the camera has
	// none (CameraConfig.SubURL is empty).
	Sub *StreamState

	// Node is, when several nodes share the cameras, the node that pulls
	// the camera; "" when none does or on a single node. The Manager never
	// sets it: the cluster's adapter does, when it shows another node's
	// state.
	Node string
}

// StreamState is a snapshot of one of a camera's streams. Its fields mean
// what CameraState's fields of the same names mean.
type StreamState struct {
	Status          Status
	Since           time.Time
	LastError       string
	Reason          Reason
	Tracks          []Track
	BitrateKbps     float64
	FrameRate       float64
	Viewers         int
	Reconnects      uint64
	Dropped         uint64
	BytesReceived   uint64
	PacketsReceived uint64
	PacketsLost     uint64
	PacketsSplit    uint64
	PacketsUnsplit  uint64
	Held            time.Time
}

// Main returns the state of the camera's main stream.
func (c CameraState) Main() StreamState {
	return StreamState{
		Status:          c.Status,
		Since:           c.Since,
		LastError:       c.LastError,
		Reason:          c.Reason,
		Tracks:          c.Tracks,
		BitrateKbps:     c.BitrateKbps,
		FrameRate:       c.FrameRate,
		Viewers:         c.Viewers,
		Reconnects:      c.Reconnects,
		Dropped:         c.Dropped,
		BytesReceived:   c.BytesReceived,
		PacketsReceived: c.PacketsReceived,
		PacketsLost:     c.PacketsLost,
		PacketsSplit:    c.PacketsSplit,
		PacketsUnsplit:  c.PacketsUnsplit,
		Held:            c.Held,
	}
}

// cameraState builds a camera's state from its streams' states.
func cameraState(id, name string, main StreamState, sub *StreamState) CameraState {
	return CameraState{
		ID:              id,
		Name:            name,
		Status:          main.Status,
		Since:           main.Since,
		LastError:       main.LastError,
		Reason:          main.Reason,
		Tracks:          main.Tracks,
		BitrateKbps:     main.BitrateKbps,
		FrameRate:       main.FrameRate,
		Viewers:         main.Viewers,
		Reconnects:      main.Reconnects,
		Dropped:         main.Dropped,
		BytesReceived:   main.BytesReceived,
		PacketsReceived: main.PacketsReceived,
		PacketsLost:     main.PacketsLost,
		PacketsSplit:    main.PacketsSplit,
		PacketsUnsplit:  main.PacketsUnsplit,
		Held:            main.Held,
		Sub:             sub,
	}
}
