package viewer

import (
	"context"
	"io"
	"time"

	rec "github.com/skywatch/skywatch/recorder"
)

// Recordings is what the playback API needs of the recorder: a camera's
// recording status and spans, exports of a span as one MP4, and incidents'
// evidence clips. AdaptRecorder makes one of a *recorder.Recorder.
type Recordings interface {
	// Status is the camera's recording status, or recorder.ErrUnknownCamera
	// for a camera that does not record.
	Status(camera string) (rec.CameraStatus, error)
	// Spans lists the spans recorded in [from, to], oldest first.
	Spans(camera string, from, to time.Time) ([]rec.Span, error)
	// Export plans an export of [start, end]: recorder.ErrBadSpan,
	// ErrUnknownCamera or ErrNotRecorded when it cannot be made (then
	// nothing was read).
	Export(camera string, start, end time.Time) (ExportPlan, error)
	// Clips lists an incident's evidence clips.
	Clips(incident string) []rec.Clip
	// ClipFile opens a clip's MP4 (recorder.ErrUnknownClip when none).
	ClipFile(incident, clip string) (io.ReadSeekCloser, rec.Clip, error)
	// MaxExport is the longest span one export may ask for.
	MaxExport() time.Duration
}

// ExportPlan is a planned export of a span, as Recordings.Export gives it.
type ExportPlan struct {
	// Start is the keyframe at or before the asked start, End the end of
	// the last sample at or before the asked end.
	Start, End time.Time
	// Size is the MP4's length when known before writing, else -1.
	Size int64
	// WriteTo writes the MP4 to w, the same bytes each time for the same
	// recordings; it stops when ctx ends.
	WriteTo func(ctx context.Context, w io.Writer) (int64, error)
}

// recorderAPI is the part of *recorder.Recorder that AdaptRecorder uses.
type recorderAPI interface {
	Status(camera string) (rec.CameraStatus, error)
	Spans(camera string, from, to time.Time) ([]rec.Span, error)
	Export(camera string, start, end time.Time) (*rec.Export, error)
	Clips(incident string) []rec.Clip
	ClipFile(incident, clip string) (io.ReadSeekCloser, rec.Clip, error)
}

// AdaptRecorder turns a recorder into Recordings; maxExport is its
// recordings.max_export.
func AdaptRecorder(r recorderAPI, maxExport time.Duration) Recordings {
	return recorderAdapter{r: r, maxExport: maxExport}
}

type recorderAdapter struct {
	r         recorderAPI
	maxExport time.Duration
}

func (a recorderAdapter) Status(camera string) (rec.CameraStatus, error) {
	return a.r.Status(camera)
}

func (a recorderAdapter) Spans(camera string, from, to time.Time) ([]rec.Span, error) {
	return a.r.Spans(camera, from, to)
}

func (a recorderAdapter) Export(camera string, start, end time.Time) (ExportPlan, error) {
	e, err := a.r.Export(camera, start, end)
	if err != nil {
		return ExportPlan{}, err
	}
	return ExportPlan{Start: e.Start, End: e.End, Size: e.Size, WriteTo: e.WriteTo}, nil
}

func (a recorderAdapter) Clips(incident string) []rec.Clip { return a.r.Clips(incident) }

func (a recorderAdapter) ClipFile(incident, clip string) (io.ReadSeekCloser, rec.Clip, error) {
	return a.r.ClipFile(incident, clip)
}

func (a recorderAdapter) MaxExport() time.Duration { return a.maxExport }
