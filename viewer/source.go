package viewer

import (
	"context"
	"errors"

	"github.com/skywatch/skywatch/ingest"
)

// MediaReader is one viewer's read position in a camera's stream, as ingest
// provides it. Read returns the next unit; the first units are the latest
// keyframe group. Read fails with ingest.ErrReaderClosed when the stream
// ended for good.
type MediaReader interface {
	Tracks() []ingest.Track
	Read(ctx context.Context) (*ingest.Unit, error)
	Close()
}

// CameraSource is what viewer needs from ingest: readers of a camera's
// streams and the cameras' state.
//
// OpenReader reads the camera's sub (low resolution) stream when sub is
// true and the camera has one, and its main stream otherwise. It fails with
// an error matching ingest.ErrUnknownCamera (errors.Is) for an unknown
// camera, and with *ingest.UnavailableError (errors.As) when the stream
// cannot be delivered now. Camera fails with ingest.ErrUnknownCamera.
type CameraSource interface {
	OpenReader(ctx context.Context, cameraID string, sub bool) (MediaReader, error)
	Cameras() []ingest.CameraState
	Camera(id string) (ingest.CameraState, error)
}

// CameraManager is the shape of ingest's Manager: AddReader and
// AddSubReader return its own concrete reader type R, which is why it needs
// Adapt to be a CameraSource.
type CameraManager[R MediaReader] interface {
	AddReader(ctx context.Context, cameraID string) (R, error)
	AddSubReader(ctx context.Context, cameraID string) (R, error)
	Cameras() []ingest.CameraState
	Camera(id string) (ingest.CameraState, error)
}

// Adapt turns a camera manager into a CameraSource:
//
//	viewer.Adapt[*ingest.Reader](manager)
func Adapt[R MediaReader](m CameraManager[R]) CameraSource {
	return managerSource[R]{m: m}
}

type managerSource[R MediaReader] struct {
	m CameraManager[R]
}

func (s managerSource[R]) OpenReader(ctx context.Context, cameraID string, sub bool) (MediaReader, error) {
	var r R
	var err error
	if sub {
		r, err = s.m.AddSubReader(ctx, cameraID)
	}
	if !sub || errors.Is(err, ingest.ErrNoSubStream) {
		r, err = s.m.AddReader(ctx, cameraID)
	}
	if err != nil {
		// Never return a typed nil inside a non-nil interface.
		return nil, err
	}
	return r, nil
}

func (s managerSource[R]) Cameras() []ingest.CameraState { return s.m.Cameras() }

func (s managerSource[R]) Camera(id string) (ingest.CameraState, error) { return s.m.Camera(id) }
