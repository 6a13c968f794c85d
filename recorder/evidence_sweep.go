package recorder

import (
	"context"
	"errors"
	"os"
	"time"
)

// sweepLoop deletes expired clips every sweepEvery until ctx ends.
func (e *evidence) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.sweepEvery)
	defer t.Stop()
	for {
		e.sweep()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep deletes the clips whose keep_until has passed: the only way
// evidence leaves the disk.
func (e *evidence) sweep() {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for incident, recs := range e.index {
		kept := recs[:0]
		for _, rec := range recs {
			if rec.KeepUntil.IsZero() || now.Before(rec.KeepUntil) || rec.Status == ClipRecording {
				kept = append(kept, rec)
				continue
			}
			err := os.Remove(rec.paths.mp4)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				err = os.Remove(rec.paths.sidecar)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				e.r.logger.Warn("evidence: expired clip not deleted", "incident", incident, "camera", rec.Camera, "error", err)
				kept = append(kept, rec)
				continue
			}
			e.r.logger.Info("evidence: expired clip deleted", "incident", incident, "camera", rec.Camera,
				"keep_until", rec.KeepUntil.UTC().Format(time.RFC3339))
			e.total.Add(-rec.Bytes)
			e.counts[rec.Status]--
		}
		if len(kept) == 0 {
			delete(e.index, incident)
			if len(recs) > 0 {
				_ = os.Remove(recs[0].paths.dir) // only if empty
			}
			continue
		}
		clear(recs[len(kept):])
		e.index[incident] = kept
	}
	e.publishCounts()
}
