package recorder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// load reads every sidecar under root into the index. A clip left
// recording is completed from what its file holds, or failed if nothing
// in it plays; the notices of those are returned.
func (e *evidence) load() ([]Notice, error) {
	dirs, err := os.ReadDir(e.root)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	var notices []Notice
	now := e.now()
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(e.root, d.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			e.r.logger.Warn("evidence: cannot read a directory", "dir", d.Name(), "error", err)
			continue
		}
		for _, f := range files {
			name := f.Name()
			if strings.HasSuffix(name, ".json.tmp") {
				_ = os.Remove(filepath.Join(dir, name)) // a sidecar write a crash interrupted
				continue
			}
			if !strings.HasSuffix(name, ".json") {
				continue
			}
			path := filepath.Join(dir, name)
			sc, err := readSidecar(path)
			var p clipPaths
			if err == nil {
				if p, err = e.paths(sc.Incident, sc.Camera); err == nil && p.sidecar != path {
					err = errors.New("not where its incident and camera put it")
				}
			}
			if err != nil {
				e.r.logger.Warn("evidence: sidecar skipped", "file", filepath.Join(d.Name(), name), "error", err)
				continue
			}
			if sc.Node != "" && sc.Node != e.r.cfg.Node {
				// Another node's clip on a shared directory: it keeps it
				// (and repairs it); this node only reads it (foreignClips).
				continue
			}
			rec := &clipRecord{Clip: sc.Clip, written: sc.Written, paths: p, node: sc.Node}
			if rec.Status == ClipRecording {
				notices = append(notices, e.repair(rec, now))
			}
			if st, err := os.Stat(rec.paths.mp4); err == nil {
				rec.Bytes = st.Size()
			} else {
				rec.Bytes = 0
			}
			e.index[rec.Incident] = append(e.index[rec.Incident], rec)
			e.counts[rec.Status]++
			e.total.Add(rec.Bytes)
		}
	}
	for _, recs := range e.index {
		// Opened order: by start, then camera (several open at once).
		sort.SliceStable(recs, func(i, j int) bool {
			if !recs[i].Start.Equal(recs[j].Start) {
				return recs[i].Start.Before(recs[j].Start)
			}
			return recs[i].Camera < recs[j].Camera
		})
	}
	e.publishCounts()
	return notices, nil
}

// repair completes a clip that was recording when the server stopped: its
// file is cut after the last complete fragment and hashed; it ends where
// that fragment ends.
func (e *evidence) repair(rec *clipRecord, now time.Time) Notice {
	size, sum, length, err := repairClipFile(rec.paths.mp4)
	switch {
	case err == nil:
		rec.Status, rec.SHA256, rec.Bytes = ClipComplete, sum, size
		rec.End = rec.Start.Add(length)
		rec.Reason = "cut short by a stop of the server (completed at " + clock(now) + ")"
	case errors.Is(err, errNothingPlayable):
		rec.Status, rec.Reason = ClipFailed, "nothing playable was written before a stop of the server"
	default:
		rec.Status, rec.Reason = ClipFailed, "repair after a stop of the server: "+err.Error()
	}
	if err := writeSidecar(rec.paths.sidecar, rec.sidecar(), true); err != nil {
		e.r.logger.Warn("evidence: repaired clip's sidecar not saved", "incident", rec.Incident, "camera", rec.Camera, "error", err)
	}
	e.r.logger.Info("evidence: clip left recording completed", "incident", rec.Incident, "camera", rec.Camera,
		"status", rec.Status, "reason", rec.Reason)
	c := rec.Clip
	return Notice{Kind: NoticeClip, Camera: rec.Camera, Clip: &c, At: now}
}

// clock formats a time for a reason or a log line.
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

func (e *evidence) publishCounts() {
	for _, s := range []ClipStatus{ClipRecording, ClipComplete, ClipFailed} {
		e.metrics.clips.WithLabelValues(string(s)).Set(float64(e.counts[s]))
	}
}
