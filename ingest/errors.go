package ingest

import (
	"errors"
	"fmt"
)

// ErrUnknownCamera is returned for a camera ID that is not configured.
var ErrUnknownCamera = errors.New("unknown camera")

// ErrReaderClosed is returned by Reader.Read after Close, and when the
// camera's stream ended for good: the manager was closed, or the camera came
// back with a different set of tracks and the reader must be added again.
var ErrReaderClosed = errors.New("reader closed")

// ErrManagerClosed is returned by AddReader after Manager.Close.
var ErrManagerClosed = errors.New("manager closed")

// UnavailableError tells that a camera could not deliver a stream: it is
// retrying after a failure, or it did not become ready in time. State says
// why (Status, LastError).
type UnavailableError struct {
	State CameraState
	// Err is the cause on the caller's side, such as context.DeadlineExceeded
	// when the camera did not become ready in time; nil otherwise.
	Err error
}

// Error implements error.
func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("camera %s unavailable (%s)", e.State.ID, e.State.Status)
	if e.State.LastError != "" {
		msg += ": " + e.State.LastError
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause on the caller's side, if any.
func (e *UnavailableError) Unwrap() error { return e.Err }
