package recorder

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// Deletion reasons, as the metrics label them.
const (
	deletedAge   = "age"
	deletedSpace = "space"
)

// runRetention deletes by age and space every retentionEvery, and in a
// cluster rescans every rescanEvery, until ctx ends.
func (s *segments) runRetention(ctx context.Context) {
	t := time.NewTicker(s.retentionEvery)
	defer t.Stop()
	var rescan <-chan time.Time
	if s.r.cfg.Node != "" {
		// In a cluster, also look for the segments other nodes closed.
		rt := time.NewTicker(s.rescanEvery)
		defer rt.Stop()
		rescan = rt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.retain(ctx)
		case <-rescan:
			s.rescan()
		}
	}
}

// retain deletes segments older than recordings.keep, then the oldest
// segments across cameras while segments and evidence exceed max_bytes or
// the disk has less than min_free. Evidence is never deleted here. When no
// segment is left to delete and space is still short, recording stops
// until there is resumeRoom to spare again.
func (s *segments) retain(ctx context.Context) {
	cfg := &s.r.cfg
	cutoff := s.now().Add(-cfg.Keep)
	for {
		seg, cam := s.oldest()
		if seg == nil || !seg.end.Before(cutoff) {
			break
		}
		s.delete(cam, seg, deletedAge)
	}
	for {
		short, room := s.shortOfSpace()
		if !short {
			if s.noSpace.Load() && room >= s.resumeRoom {
				s.r.logger.Info("space is back, recording resumes")
				s.setNoSpace(false)
			}
			return
		}
		seg, cam := s.oldest()
		if seg == nil {
			if !s.noSpace.Load() {
				s.r.logger.Warn("no space for recordings and no segment left to delete: recording stops",
					"evidence_bytes", s.evidenceBytes())
				s.setNoSpace(true)
			}
			return
		}
		s.delete(cam, seg, deletedSpace)
	}
}

// shortOfSpace tells whether max_bytes is exceeded or min_free not met,
// and otherwise how much room is left before either would be.
func (s *segments) shortOfSpace() (short bool, room int64) {
	cfg := &s.r.cfg
	room = 1 << 62
	if cfg.MaxBytes > 0 {
		used := s.totalBytes() + s.evidenceBytes()
		room = min(room, int64(cfg.MaxBytes)-used)
	}
	free, _, err := s.statfs(cfg.Path)
	if err == nil {
		room = min(room, int64(free)-int64(cfg.MinFree))
	} else {
		s.r.logger.Warn("cannot read free space", "error", err)
	}
	return room < 0, room
}

func (s *segments) totalBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, ci := range s.index {
		n += ci.bytes
	}
	return n
}

// oldest returns the oldest segment that is not being written, across
// cameras.
func (s *segments) oldest() (*segment, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *segment
	var cam string
	for id, ci := range s.index {
		for _, seg := range ci.segs {
			if seg.live {
				continue
			}
			if best == nil || seg.start.Before(best.start) || (seg.start.Equal(best.start) && id < cam) {
				best, cam = seg, id
			}
			break
		}
	}
	return best, cam
}

// delete removes seg of camera from the disk and the index. A file that
// cannot be removed leaves the index all the same, so that retention moves
// on to the next; the next start finds it again.
func (s *segments) delete(cam string, seg *segment, reason string) {
	err := os.Remove(seg.path)
	if err != nil && !os.IsNotExist(err) {
		s.r.logger.Warn("cannot delete a segment", "camera", cam, "error", err)
	}
	_ = os.Remove(filepath.Dir(seg.path)) // the day's directory, once empty
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := s.index[cam]
	for i, x := range ci.segs {
		if x == seg {
			ci.segs = append(ci.segs[:i], ci.segs[i+1:]...)
			ci.bytes -= seg.bytes
			break
		}
	}
	if reason == deletedAge {
		ci.deletedAge.Add(1)
	} else {
		ci.deletedSpace.Add(1)
	}
}
