package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// evidence is the pre-alarm rings and the clips: one feed per camera that
// records (its own ingest reader, ring and open clips, owned by one
// goroutine), an index of every clip on disk, and the sweep that deletes
// clips past their keep_until.
type evidence struct {
	r       *Recorder
	root    string // {path}/evidence
	metrics *evidenceMetrics
	total   atomic.Int64 // bytes of clips on disk

	// retry is how long a feed waits before asking ingest again for a
	// camera that did not deliver; sweepEvery how often expired clips are
	// looked for; lateGrace how long after a clip's end its camera may
	// still deliver units of before it. Fields so that tests can shorten
	// them.
	retry      time.Duration
	sweepEvery time.Duration
	lateGrace  time.Duration
	now        func() time.Time

	feeds map[string]*feed // set by start, read-only after

	// mu guards the index and the sidecars' writes.
	mu      sync.Mutex
	started bool
	closed  bool
	index   map[string][]*clipRecord // by incident, in the order opened
	counts  map[ClipStatus]int
}

// clipRecord is one clip as the index knows it.
type clipRecord struct {
	Clip
	written time.Time // how far the file was flushed, while recording
	paths   clipPaths
}

func (c *clipRecord) sidecar() sidecar { return sidecar{Clip: c.Clip, Written: c.written} }

func newEvidence(r *Recorder, reg prometheus.Registerer) (*evidence, error) {
	e := &evidence{
		r:          r,
		root:       filepath.Join(r.cfg.Path, evidenceDir),
		retry:      3 * time.Second,
		sweepEvery: time.Minute,
		lateGrace:  3 * time.Second,
		now:        time.Now,
		index:      map[string][]*clipRecord{},
		counts:     map[ClipStatus]int{},
	}
	var err error
	if e.metrics, err = newEvidenceMetrics(reg, func() float64 { return float64(e.total.Load()) }); err != nil {
		return nil, fmt.Errorf("recorder metrics: %w", err)
	}
	return e, nil
}

// start loads the clips on disk (completing those a crash or a stop left
// recording), then starts a feed per camera and the sweep.
func (e *evidence) start(ctx context.Context) error {
	if err := os.MkdirAll(e.root, 0o750); err != nil {
		return fmt.Errorf("recordings.path: %w", err)
	}
	repaired, err := e.load()
	if err != nil {
		return err
	}
	e.feeds = make(map[string]*feed, len(e.r.cameras))
	for id, cam := range e.r.cameras {
		e.feeds[id] = newFeed(e, cam)
	}
	e.mu.Lock()
	e.started = true
	e.mu.Unlock()
	for _, f := range e.feeds {
		e.r.wg.Add(1)
		go func() {
			defer e.r.wg.Done()
			f.run(ctx)
		}()
	}
	e.r.wg.Add(1)
	go func() {
		defer e.r.wg.Done()
		// The notices of clips completed at start wait for the reader of
		// Notices, which starts after the recorder.
		for _, n := range repaired {
			e.r.notify(ctx, n)
		}
		e.sweepLoop(ctx)
	}()
	return nil
}

// close marks the evidence closed: no clip opens after it. The feeds stop
// with the recorder's context.
func (e *evidence) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

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
			if err == nil {
				var p clipPaths
				if p, err = e.paths(sc.Incident, sc.Camera); err == nil && p.sidecar != path {
					err = errors.New("not where its incident and camera put it")
				}
			}
			if err != nil {
				e.r.logger.Warn("evidence: sidecar skipped", "file", filepath.Join(d.Name(), name), "error", err)
				continue
			}
			rec := &clipRecord{Clip: sc.Clip, written: sc.Written}
			rec.paths, _ = e.paths(sc.Incident, sc.Camera)
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
// file is cut after the last complete fragment and hashed; its end is how
// far the sidecar last saw it written.
func (e *evidence) repair(rec *clipRecord, now time.Time) Notice {
	size, sum, err := repairClipFile(rec.paths.mp4)
	switch {
	case err == nil && !rec.written.IsZero():
		rec.Status, rec.SHA256, rec.Bytes = ClipComplete, sum, size
		rec.End = rec.written
		rec.Reason = "cut short by a stop of the server at " + clock(now)
	case err == nil || errors.Is(err, errNothingPlayable):
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

// startClips opens the incident's clips; see Recorder.StartClips.
func (e *evidence) startClips(incident string, cameras []string, alarm time.Time) {
	pre, post := e.r.cfg.PreAlarm, e.r.cfg.PostAlarm
	var runs []*clipRun
	e.mu.Lock()
	if !e.started || e.closed {
		e.mu.Unlock()
		return
	}
	recs := e.index[incident]
	for _, cam := range cameras {
		if len(recs) >= e.r.cfg.Evidence.CamerasPerIncident {
			break
		}
		if e.feeds[cam] == nil || slices.ContainsFunc(recs, func(r *clipRecord) bool { return r.Camera == cam }) {
			continue
		}
		p, err := e.paths(incident, cam)
		if err == nil {
			err = os.MkdirAll(p.dir, 0o750)
		}
		rec := &clipRecord{Clip: Clip{ID: cam, Incident: incident, Camera: cam, Start: alarm.Add(-pre),
			End: alarm.Add(post), Status: ClipRecording, Alarm: alarm}, paths: p}
		if err == nil {
			// Saved before anything is recorded, so that the incident
			// seen again after a restart does not open it twice.
			err = writeSidecar(p.sidecar, rec.sidecar(), true)
		}
		if err != nil {
			e.r.logger.Warn("evidence: clip not opened", "incident", incident, "camera", cam, "error", err)
			continue
		}
		recs = append(recs, rec)
		e.counts[ClipRecording]++
		runs = append(runs, newClipRun(rec, e.r.cfg.ClipMax))
	}
	if len(runs) > 0 {
		e.index[incident] = recs
		e.publishCounts()
	}
	e.mu.Unlock()
	for _, run := range runs {
		e.feeds[run.camera].send(feedReq{open: run})
	}
}

// extendClips moves the end of the incident's open clips.
func (e *evidence) extendClips(incident string, last time.Time) {
	e.mu.Lock()
	var cams []string
	for _, rec := range e.index[incident] {
		if rec.Status == ClipRecording {
			cams = append(cams, rec.Camera)
		}
	}
	e.mu.Unlock()
	for _, cam := range cams {
		if f := e.feeds[cam]; f != nil {
			f.send(feedReq{extend: incident, end: last.Add(e.r.cfg.PostAlarm)})
		}
	}
}

// endIncident sets keep_until on the incident's clips.
func (e *evidence) endIncident(incident string, ended time.Time) {
	until := ended.Add(e.r.cfg.Evidence.Keep)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rec := range e.index[incident] {
		if rec.KeepUntil.Equal(until) {
			continue
		}
		rec.KeepUntil = until
		if err := writeSidecar(rec.paths.sidecar, rec.sidecar(), true); err != nil {
			e.r.logger.Warn("evidence: keep_until not saved", "incident", incident, "camera", rec.Camera, "error", err)
		}
	}
}

// update changes a clip's record and saves its sidecar (synced when the
// change is final), keeping the counts and the byte total right.
func (e *evidence) update(rec *clipRecord, sync bool, fn func(c *clipRecord)) Clip {
	e.mu.Lock()
	defer e.mu.Unlock()
	status, bytes := rec.Status, rec.Bytes
	fn(rec)
	e.total.Add(rec.Bytes - bytes)
	if rec.Status != status {
		e.counts[status]--
		e.counts[rec.Status]++
		e.publishCounts()
	}
	if err := writeSidecar(rec.paths.sidecar, rec.sidecar(), sync); err != nil {
		e.r.logger.Warn("evidence: sidecar not saved", "incident", rec.Incident, "camera", rec.Camera, "error", err)
	}
	return rec.Clip
}

// clips returns copies of the incident's clips.
func (e *evidence) clips(incident string) []Clip {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Clip
	for _, rec := range e.index[incident] {
		out = append(out, rec.Clip)
	}
	return out
}

// clipFile opens a clip's MP4.
func (e *evidence) clipFile(incident, clipID string) (io.ReadSeekCloser, Clip, error) {
	e.mu.Lock()
	var rec *clipRecord
	for _, r := range e.index[incident] {
		if r.ID == clipID {
			rec = r
		}
	}
	var c Clip
	if rec != nil {
		c = rec.Clip
	}
	e.mu.Unlock()
	if rec == nil {
		return nil, Clip{}, fmt.Errorf("incident %q clip %q: %w", incident, clipID, ErrUnknownClip)
	}
	f, err := os.Open(rec.paths.mp4)
	if errors.Is(err, os.ErrNotExist) {
		return nil, c, fmt.Errorf("incident %s clip %s has no video: %w", incident, clipID, ErrNotRecorded)
	}
	if err != nil {
		return nil, c, fmt.Errorf("incident %s clip %s: %w", incident, clipID, err)
	}
	return f, c, nil
}

// bytes is what evidence holds on disk, which counts against max_bytes.
func (e *evidence) bytes() int64 { return e.total.Load() }

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
