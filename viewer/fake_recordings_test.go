package viewer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	rec "github.com/skywatch/skywatch/recorder"
)

// fakeRecordings is a recorder whose behaviour the test sets: camera yard
// and gate record, each from t0 for an hour with a gap at 30 min; an
// export's bytes are derived from its span; incident in1 has a clip of
// each camera and in2 one of gate.
type fakeRecordings struct {
	t0        time.Time
	maxExport time.Duration
	// block, when set, holds every export's write until it is closed or
	// the request ends.
	block chan struct{}
	// fail, when set, is what Export returns.
	fail error

	mu      sync.Mutex
	exports []string // cameras asked for, in order
	writing int      // exports being written now
}

func newFakeRecordings() *fakeRecordings {
	return &fakeRecordings{t0: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC), maxExport: 30 * time.Minute}
}

func (f *fakeRecordings) records(camera string) bool { return camera == "yard" || camera == "gate" }

func (f *fakeRecordings) Status(camera string) (rec.CameraStatus, error) {
	if !f.records(camera) {
		return rec.CameraStatus{}, rec.ErrUnknownCamera
	}
	st := rec.CameraStatus{Camera: camera, Record: rec.RecordAlways, State: rec.StateRecording, Oldest: f.t0}
	if camera == "gate" {
		st.State, st.Reason = rec.StateStopped, "no space left on device"
	}
	return st, nil
}

func (f *fakeRecordings) Spans(camera string, from, to time.Time) ([]rec.Span, error) {
	if !f.records(camera) {
		return nil, fmt.Errorf("spans of %s: %w", camera, rec.ErrUnknownCamera)
	}
	var out []rec.Span
	for _, sp := range []rec.Span{{Start: f.t0, End: f.t0.Add(30 * time.Minute)}, {Start: f.t0.Add(31 * time.Minute), End: f.t0.Add(time.Hour)}} {
		if sp.End.Before(from) || sp.Start.After(to) {
			continue
		}
		sp.Start, sp.End = maxTime(sp.Start, from), minTime(sp.End, to)
		out = append(out, sp)
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// exportBytes are the bytes of an export of camera from start to end.
func exportBytes(camera string, start, end time.Time) []byte {
	return bytes.Repeat([]byte(camera+start.Format(time.RFC3339)+end.Format(time.RFC3339)), 2000)
}

func (f *fakeRecordings) Export(camera string, start, end time.Time) (ExportPlan, error) {
	f.mu.Lock()
	f.exports = append(f.exports, camera)
	f.mu.Unlock()
	switch {
	case f.fail != nil:
		return ExportPlan{}, f.fail
	case !f.records(camera):
		return ExportPlan{}, rec.ErrUnknownCamera
	case !end.After(start) || end.Sub(start) > f.maxExport:
		return ExportPlan{}, rec.ErrBadSpan
	case end.Before(f.t0) || start.After(f.t0.Add(time.Hour)):
		return ExportPlan{}, fmt.Errorf("%s: %w", camera, rec.ErrNotRecorded)
	}
	// The keyframe at or before start: whole seconds.
	start = maxTime(start.Truncate(time.Second), f.t0)
	end = minTime(end, f.t0.Add(time.Hour))
	data := exportBytes(camera, start, end)
	return ExportPlan{Start: start, End: end, Size: int64(len(data)), WriteTo: func(ctx context.Context, w io.Writer) (int64, error) {
		f.mu.Lock()
		f.writing++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.writing--
			f.mu.Unlock()
		}()
		var n int64
		for chunk := range slices.Chunk(data, 4096) {
			if f.block != nil {
				select {
				case <-f.block:
				case <-ctx.Done():
					return n, ctx.Err()
				}
			}
			if err := ctx.Err(); err != nil {
				return n, err
			}
			k, err := w.Write(chunk)
			n += int64(k)
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}}, nil
}

func (f *fakeRecordings) writingNow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writing
}

// clipData are the bytes of the clip files; "tampered" has a recorded
// hash that its bytes do not match.
func clipData(id string) []byte { return bytes.Repeat([]byte("clip "+id+" "), 5000) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (f *fakeRecordings) clipList(incident string) []rec.Clip {
	mk := func(id, camera string, status rec.ClipStatus) rec.Clip {
		c := rec.Clip{ID: id, Incident: incident, Camera: camera, Start: f.t0, End: f.t0.Add(90 * time.Second),
			Alarm: f.t0.Add(30 * time.Second), Status: status, Bytes: int64(len(clipData(id)))}
		if status == rec.ClipComplete {
			c.SHA256 = sha256Hex(clipData(id))
			if id == "tampered" {
				c.SHA256 = sha256Hex([]byte("what was recorded"))
			}
		}
		return c
	}
	switch incident {
	case "in1":
		return []rec.Clip{mk("c1", "yard", rec.ClipComplete), mk("c2", "gate", rec.ClipRecording), mk("tampered", "yard", rec.ClipComplete)}
	case "in2":
		return []rec.Clip{mk("c3", "gate", rec.ClipComplete)}
	}
	return nil
}

func (f *fakeRecordings) Clips(incident string) []rec.Clip { return f.clipList(incident) }

func (f *fakeRecordings) ClipFile(incident, clip string) (io.ReadSeekCloser, rec.Clip, error) {
	for _, c := range f.clipList(incident) {
		if c.ID == clip {
			return nopCloser{bytes.NewReader(clipData(clip))}, c, nil
		}
	}
	return nil, rec.Clip{}, fmt.Errorf("clip %s of %s: %w", clip, incident, rec.ErrUnknownClip)
}

func (f *fakeRecordings) MaxExport() time.Duration { return f.maxExport }

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }
