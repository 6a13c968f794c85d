package recorder

import (
	"errors"
	"time"
)

// Errors of the recorder's queries; callers branch with errors.Is.
var (
	// ErrUnknownCamera: the camera is not configured to record.
	ErrUnknownCamera = errors.New("camera is not recorded")
	// ErrNotRecorded: nothing was recorded in the asked span.
	ErrNotRecorded = errors.New("nothing recorded in this span")
	// ErrBadSpan: the span is reversed, empty or longer than max_export.
	ErrBadSpan = errors.New("bad span")
	// ErrUnknownClip: no such clip.
	ErrUnknownClip = errors.New("no such clip")
	// ErrClosed: the recorder was closed.
	ErrClosed = errors.New("recorder closed")
)

// Span is a stretch of time a camera was recorded without a gap.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ClipStatus is where an evidence clip stands.
type ClipStatus string

// Clip statuses.
const (
	ClipRecording ClipStatus = "recording"
	ClipComplete  ClipStatus = "complete"
	ClipFailed    ClipStatus = "failed"
)

// Clip is one camera's evidence clip of one incident. While it records,
// Start is its first picture (pre_alarm before Alarm until it has one)
// and End where it is to end (moved by ExtendClips); once complete, End is
// the end of its last picture.
type Clip struct {
	ID       string     `json:"id"` // unique within the incident: the camera's ID
	Incident string     `json:"incident"`
	Camera   string     `json:"camera"`
	Start    time.Time  `json:"start"`
	End      time.Time  `json:"end"`
	Status   ClipStatus `json:"status"`
	// SHA256 is the hex SHA-256 of the clip's file, once complete.
	SHA256 string `json:"sha256,omitempty"`
	Bytes  int64  `json:"bytes"`
	// Reason says why a clip failed.
	Reason string `json:"reason,omitempty"`
	// Alarm is the time of the incident's first event.
	Alarm time.Time `json:"alarm"`
	// KeepUntil is set once the incident ended.
	KeepUntil time.Time `json:"keep_until,omitzero"`
}

// CameraStatus is one camera's recording state, for /api/cameras and
// metrics.
type CameraStatus struct {
	Camera string `json:"camera"`
	// Record and Stream are the camera's settings.
	Record string `json:"record"`
	Stream string `json:"stream"`
	// State is "recording", "waiting" (the camera is not delivering),
	// "stopped" (a disk fault or no space; Reason says which) or "off".
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	// Bytes and Segments are what is on disk for this camera now.
	Bytes    int64 `json:"bytes"`
	Segments int   `json:"segments"`
	// Oldest is the start of its oldest segment.
	Oldest time.Time `json:"oldest,omitzero"`
}

// Camera recording states.
const (
	StateOff       = "off"
	StateRecording = "recording"
	StateWaiting   = "waiting"
	StateStopped   = "stopped"
)

// NoticeKind tells what a Notice is about.
type NoticeKind string

// Notice kinds.
const (
	// NoticeClip: a clip is complete (Clip.SHA256 set) or failed.
	NoticeClip NoticeKind = "clip"
	// NoticeFault: a camera stopped recording (Reason says why).
	NoticeFault NoticeKind = "fault"
	// NoticeRecovered: a camera that had stopped records again.
	NoticeRecovered NoticeKind = "recovered"
)

// Notice is what the recorder tells the rest of the server: cmd/skywatch
// puts a clip's hash into its incident's timeline and raises a fault as a
// maintenance trouble.
type Notice struct {
	Kind   NoticeKind
	Camera string
	Reason string
	Clip   *Clip // NoticeClip only
	At     time.Time
}
