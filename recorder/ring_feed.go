package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/ingest"
)

// feed is one camera's evidence: its own ingest reader (which keeps the
// camera pulled), its pre-alarm ring and its open clips. One goroutine
// (run) owns all three; StartClips and ExtendClips reach it through reqs.
type feed struct {
	e    *evidence
	cam  CameraConfig
	reqs chan feedReq
	done chan struct{} // closed when run returns
	// quit is closed by retire, with why said before: Apply stops the
	// feed for good.
	quit     chan struct{}
	quitWhy  string
	quitOnce sync.Once
	// pulling tells whether the pump holds a reader: in a cluster, only
	// then does this node pull the camera and open its clips.
	pulling atomic.Bool

	// Owned by run.
	ring      *ring
	gen       uint64 // of the reader the ring's units came from
	tracks    []ingest.Track
	clips     []*clipRun
	ringBytes prometheus.Gauge
	// lastUnit is when the latest unit was taken, by e.now.
	lastUnit time.Time
}

// evidenceClockSkew is how far a unit's time from RTP timestamps may be
// from its arrival before the feed re-anchors its clock. It is tighter than
// the segments' (which must start a new file to re-anchor): a camera whose
// clock runs slow, or that sends late, would otherwise label a clip's
// pictures seconds earlier than they were taken, and the clip would wait
// in vain for a picture past its end.
const evidenceClockSkew = 2 * time.Second

// feedReq asks the feed to open a clip, or to move the end of an
// incident's clips.
type feedReq struct {
	open   *clipRun
	extend string // incident
	end    time.Time
}

// feedUnit is a unit from the pump, with its wall-clock time and the
// reader (generation) it came from.
type feedUnit struct {
	u      *ingest.Unit
	at     time.Time
	gen    uint64
	tracks []ingest.Track
}

// feedRequests bounds the requests waiting for a feed; StartClips waits
// when it is full.
const feedRequests = 64

func newFeed(e *evidence, cam CameraConfig) *feed {
	return &feed{
		e:         e,
		cam:       cam,
		reqs:      make(chan feedReq, feedRequests),
		done:      make(chan struct{}),
		quit:      make(chan struct{}),
		ring:      newRing(e.r.cfg.PreAlarm, int64(e.r.cfg.PreAlarmMaxBytes)),
		ringBytes: e.metrics.ring.WithLabelValues(cam.ID),
	}
}

// send hands a request to the feed; it is dropped if the feed has
// stopped.
func (f *feed) send(req feedReq) {
	select {
	case f.reqs <- req:
	case <-f.done:
	}
}

// retire stops the feed for good (see evidence.stopFeed) and waits for it.
func (f *feed) retire(why string) {
	f.quitOnce.Do(func() {
		f.quitWhy = why
		close(f.quit)
	})
	<-f.done
}

// run is the feed's goroutine.
func (f *feed) run(ctx context.Context) {
	defer close(f.done)
	units := make(chan feedUnit, 8)
	pumpDone := make(chan struct{})
	pumpCtx, stopPump := context.WithCancel(ctx)
	defer stopPump()
	go func() {
		defer close(pumpDone)
		f.pump(pumpCtx, units)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-pumpDone
			f.stop()
			f.ring.reset()
			f.ringBytes.Set(0)
			return
		case <-f.quit:
			stopPump()
			<-pumpDone
			why := f.quitWhy + " at " + clock(f.e.now())
			for _, c := range f.running() {
				if c.started {
					f.finish(ctx, c, why)
				} else {
					f.fail(ctx, c, why, false)
				}
			}
			// Clips asked for meanwhile would otherwise stay recording
			// until the next start completes them.
			for {
				select {
				case req := <-f.reqs:
					if req.open != nil {
						f.fail(ctx, req.open, why, false)
					}
					continue
				default:
				}
				break
			}
			f.ring.reset()
			f.e.metrics.ring.DeleteLabelValues(f.cam.ID)
			return
		case req := <-f.reqs:
			f.serve(ctx, req)
		case fu := <-units:
			f.take(ctx, fu)
		case <-tick.C:
			f.tick(ctx, f.e.now())
		}
	}
}

// pump reads the camera's units and hands them to run. It holds a reader
// as long as the camera delivers, adds one again when it is closed (the
// camera came back with other tracks), and retries every e.retry while the
// camera cannot deliver.
func (f *feed) pump(ctx context.Context, out chan<- feedUnit) {
	var gen uint64
	failing := false
	for ctx.Err() == nil {
		rd, err := f.e.r.addReader(ctx, f.cam)
		if err != nil {
			if errors.Is(err, ingest.ErrManagerClosed) || ctx.Err() != nil {
				return
			}
			// In a cluster another node pulling the camera is the normal
			// case, not a fault.
			if !failing && !errors.Is(err, ingest.ErrPulledElsewhere) {
				f.e.r.logger.Warn("evidence: camera not delivering; retrying", "camera", f.cam.ID, "error", err)
			}
			failing = true
			sleep(ctx, f.e.retry)
			continue
		}
		if failing {
			f.e.r.logger.Info("evidence: camera delivering again", "camera", f.cam.ID)
		}
		failing = false
		f.pulling.Store(true)
		gen++
		tracks := rd.Tracks()
		var clock unitClock
		for {
			u, err := rd.Read(ctx)
			if err != nil {
				break
			}
			at, _ := clock.anchoredAt(u, tracks, evidenceClockSkew)
			select {
			case out <- feedUnit{u: u, at: at, gen: gen, tracks: tracks}:
			case <-ctx.Done():
			}
		}
		rd.Close()
		f.pulling.Store(false)
	}
}

// take puts a unit into the ring and into every open clip.
func (f *feed) take(ctx context.Context, fu feedUnit) {
	if fu.gen != f.gen {
		// Another reader: the tracks may differ, and the ring's units and
		// the clips' files are of the old ones.
		f.gen, f.tracks = fu.gen, fu.tracks
		f.ring.reset()
		for _, c := range f.running() {
			if c.started {
				f.finish(ctx, c, "the camera's stream changed at "+clock(fu.at))
			}
		}
	}
	f.lastUnit = f.e.now()
	ru := ringUnit{u: fu.u, at: fu.at, video: f.tracks[fu.u.Track].Kind == ingest.KindVideo, size: unitSize(fu.u)}
	f.ring.push(ru)
	f.ringBytes.Set(float64(f.ring.bytes))
	for _, c := range f.running() {
		f.feedClip(ctx, c, ru)
	}
}

// running returns a copy of the open clips, which finish and fail remove
// from f.clips.
func (f *feed) running() []*clipRun { return append([]*clipRun(nil), f.clips...) }

// serve opens a clip or moves clips' ends.
func (f *feed) serve(ctx context.Context, req feedReq) {
	if c := req.open; c != nil {
		if max := f.e.r.cfg.Evidence.MaxOpenClips; len(f.clips) >= max {
			f.fail(ctx, c, fmt.Sprintf("the camera already writes %d clips (evidence.max_open_clips)", max), false)
			return
		}
		f.clips = append(f.clips, c)
		units := f.ring.from(c.from)
		if len(units) == 0 {
			return // it starts at the camera's next keyframe
		}
		if !units[0].at.Before(c.end) {
			f.fail(ctx, c, "the pre-alarm ring no longer holds video from "+clock(c.from)+" to "+clock(c.end), false)
			return
		}
		for _, ru := range units {
			if !f.feedClip(ctx, c, ru) {
				return
			}
		}
		return
	}
	for _, c := range f.clips {
		if c.rec.Incident == req.extend {
			f.extend(c, req.end)
		}
	}
}

// tick flushes what clips hold and ends the clips past their end whose
// camera stopped delivering.
func (f *feed) tick(ctx context.Context, now time.Time) {
	for _, c := range f.running() {
		// A camera still delivering, whose pictures are labelled a little
		// behind our clock, gets until its skew bound to pass the end.
		delivering := now.Sub(f.lastUnit) < f.e.lateGrace && now.Before(c.end.Add(evidenceClockSkew+f.e.lateGrace))
		if now.Before(c.end.Add(f.e.lateGrace)) || delivering {
			f.flush(ctx, c, now)
			continue
		}
		if !c.started {
			f.fail(ctx, c, "the camera delivered no video from "+clock(c.from)+" to "+clock(c.end), false)
			continue
		}
		f.finish(ctx, c, "the camera stopped delivering at "+clock(c.lastAt))
	}
}

// stop leaves the open clips playable, still recording: the next start
// completes them.
func (f *feed) stop() {
	for _, c := range f.clips {
		f.suspend(c)
	}
	f.clips = nil
}

// remove forgets an open clip.
func (f *feed) remove(c *clipRun) {
	for i, x := range f.clips {
		if x == c {
			f.clips = append(f.clips[:i], f.clips[i+1:]...)
			return
		}
	}
}
