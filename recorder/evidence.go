package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

	// mu guards feeds, the index and the sidecars' writes.
	mu      sync.Mutex
	feeds   map[string]*feed // one per recording camera, from start on
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
	node    string // the writer's node (Config.Node)
}

func (c *clipRecord) sidecar() sidecar {
	return sidecar{Clip: c.Clip, Written: c.written, Node: c.node}
}

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
	e.r.camMu.RLock()
	cams := slices.Collect(maps.Values(e.r.cameras))
	e.r.camMu.RUnlock()
	e.mu.Lock()
	e.feeds = make(map[string]*feed, len(cams))
	e.started = true
	e.mu.Unlock()
	for _, cam := range cams {
		e.startFeed(ctx, cam)
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

// startFeed starts a camera's feed (its ring and clips).
func (e *evidence) startFeed(ctx context.Context, cam CameraConfig) {
	f := newFeed(e, cam)
	e.mu.Lock()
	e.feeds[cam.ID] = f
	e.mu.Unlock()
	e.r.wg.Add(1)
	go func() {
		defer e.r.wg.Done()
		f.run(ctx)
	}()
}

// stopFeed stops a camera's feed because Apply turned its recording off
// (or changed its stream): its open clips are completed as far as they
// were recorded, with why, and its ring is dropped. It waits for the
// feed's goroutine.
func (e *evidence) stopFeed(id, why string) {
	e.mu.Lock()
	f := e.feeds[id]
	delete(e.feeds, id)
	e.mu.Unlock()
	if f == nil {
		return
	}
	f.retire(why)
}

// close marks the evidence closed: no clip opens after it. The feeds stop
// with the recorder's context.
func (e *evidence) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

// startClips opens the incident's clips; see Recorder.StartClips.
func (e *evidence) startClips(incident string, cameras []string, alarm time.Time) {
	pre, post := e.r.cfg.PreAlarm, e.r.cfg.PostAlarm
	var runs []*clipRun
	var feeds []*feed // of runs
	e.mu.Lock()
	if !e.started || e.closed {
		e.mu.Unlock()
		return
	}
	if e.now().After(alarm.Add(post + e.lateGrace)) {
		// The clip would have ended already (an incident seen first after
		// a restart): the ring no longer holds its video.
		e.mu.Unlock()
		return
	}
	recs := e.index[incident]
	for _, cam := range cameras {
		if len(recs) >= e.r.cfg.Evidence.CamerasPerIncident {
			break
		}
		f := e.feeds[cam]
		if f == nil || slices.ContainsFunc(recs, func(r *clipRecord) bool { return r.Camera == cam }) {
			continue
		}
		if e.r.cfg.Node != "" && !f.pulling.Load() {
			// In a cluster the node that pulls the camera has its ring
			// and opens its clip; another one would write over it.
			continue
		}
		p, err := e.paths(incident, cam)
		if err == nil {
			err = os.MkdirAll(p.dir, 0o750)
		}
		rec := &clipRecord{Clip: Clip{ID: cam, Incident: incident, Camera: cam, Start: alarm.Add(-pre),
			End: alarm.Add(post), Status: ClipRecording, Alarm: alarm}, paths: p, node: e.r.cfg.Node}
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
		feeds = append(feeds, f)
	}
	if len(runs) > 0 {
		e.index[incident] = recs
		e.publishCounts()
	}
	e.mu.Unlock()
	for i, run := range runs {
		feeds[i].send(feedReq{open: run})
	}
}

// extendClips moves the end of the incident's open clips.
func (e *evidence) extendClips(incident string, last time.Time) {
	e.mu.Lock()
	if !e.started || e.closed {
		e.mu.Unlock()
		return
	}
	var feeds []*feed
	for _, rec := range e.index[incident] {
		if f := e.feeds[rec.Camera]; rec.Status == ClipRecording && f != nil {
			feeds = append(feeds, f)
		}
	}
	e.mu.Unlock()
	for _, f := range feeds {
		f.send(feedReq{extend: incident, end: last.Add(e.r.cfg.PostAlarm)})
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

// unended lists the incidents with a clip whose keep clock has not
// started, sorted.
func (e *evidence) unended() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for id, recs := range e.index {
		if slices.ContainsFunc(recs, func(rec *clipRecord) bool { return rec.KeepUntil.IsZero() }) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
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

// clips returns copies of the incident's clips: in a cluster, with those
// other nodes wrote (read from their sidecars).
func (e *evidence) clips(incident string) []Clip {
	e.mu.Lock()
	var out []Clip
	for _, rec := range e.index[incident] {
		out = append(out, rec.Clip)
	}
	e.mu.Unlock()
	if e.r.cfg.Node == "" {
		return out
	}
	for _, rec := range e.foreignClips(incident) {
		if !slices.ContainsFunc(out, func(c Clip) bool { return c.ID == rec.ID }) {
			out = append(out, rec.Clip)
		}
	}
	slices.SortStableFunc(out, func(a, b Clip) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.Camera, b.Camera)
	})
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
	if rec == nil && e.r.cfg.Node != "" {
		for _, r := range e.foreignClips(incident) {
			if r.ID == clipID {
				rec, c = r, r.Clip
			}
		}
	}
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
