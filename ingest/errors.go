package ingest

import (
	"errors"
	"fmt"
)

// ErrUnknownCamera is returned for a camera ID that is not configured.
var ErrUnknownCamera = errors.New("unknown camera")

// ErrNoSubStream is returned by AddSubReader (and Hold) for a camera that
// has no sub stream; its main stream is the one to read.
var ErrNoSubStream = errors.New("no sub stream")

// ErrReaderClosed is returned by Reader.Read after Close, and when the
// camera's stream ended for good: the manager was closed, the camera came
// back with a different set of tracks and the reader must be added again,
// or Manager.Apply removed or changed the camera (the error then wraps
// ErrCameraRemoved or ErrCameraChanged too).
var ErrReaderClosed = errors.New("reader closed")

// ErrManagerClosed is returned by AddReader, AddSubReader and Hold after
// Manager.Close.
var ErrManagerClosed = errors.New("manager closed")

// UnavailableError tells that a camera's stream could not be delivered: it
// is retrying after a failure, or it did not become ready in time.
// StreamState says why (Status, LastError).
type UnavailableError struct {
	// State is the camera's state: its main stream's, and in State.Sub its
	// sub stream's.
	State CameraState
	// Sub tells that the sub stream failed (AddSubReader), not the main one.
	Sub bool
	// Err is the cause on the caller's side, such as context.DeadlineExceeded
	// when the camera did not become ready in time; nil otherwise.
	Err error
}

// StreamState returns the state of the stream that failed.
func (e *UnavailableError) StreamState() StreamState {
	if e.Sub && e.State.Sub != nil {
		return *e.State.Sub
	}
	return e.State.Main()
}

// Error implements error.
func (e *UnavailableError) Error() string {
	st := e.StreamState()
	what := "camera " + e.State.ID
	if e.Sub {
		what += " sub stream"
	}
	msg := fmt.Sprintf("%s unavailable (%s)", what, st.Status)
	if st.LastError != "" {
		msg += ": " + st.LastError
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause on the caller's side, if any.
func (e *UnavailableError) Unwrap() error { return e.Err }
