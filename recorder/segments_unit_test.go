package recorder

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/ingest"
)

// deadSource is a camera source whose cameras never deliver.
type deadSource struct{}

func (deadSource) AddReader(ctx context.Context, id string) (*ingest.Reader, error) {
	return nil, errors.New("camera unavailable")
}

func (deadSource) AddSubReader(ctx context.Context, id string) (*ingest.Reader, error) {
	return nil, ingest.ErrNoSubStream
}

// noticeLog drains a recorder's notices.
type noticeLog struct {
	mu  sync.Mutex
	all []Notice
}

func (l *noticeLog) count(kind NoticeKind, camera string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.all {
		if x.Kind == kind && x.Camera == camera {
			n++
		}
	}
	return n
}

func testConfig(dir string, cams ...string) Config {
	cfg := Config{Path: dir, Segment: 2 * time.Second}
	for _, c := range cams {
		cfg.Cameras = append(cfg.Cameras, CameraConfig{ID: c, Record: RecordAlways})
	}
	cfg.SetDefaults()
	cfg.MinFree = 1 << 20
	return cfg
}

// newTestRecorder builds a recorder; tweak may change its segments before
// Start. The recorder is closed at the end of the test.
func newTestRecorder(t *testing.T, cfg Config, src Source, reg prometheus.Registerer, tweak func(*segments)) (*Recorder, *noticeLog) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, src, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := r.segments
	s.readerRetry, s.faultRetry, s.retentionEvery = 50*time.Millisecond, 300*time.Millisecond, 50*time.Millisecond
	if tweak != nil {
		tweak(s)
	}
	log := &noticeLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := range r.Notices() {
			log.mu.Lock()
			log.all = append(log.all, n)
			log.mu.Unlock()
		}
	}()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		close(r.notices)
		<-done
	})
	return r, log
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedReader hands out a unit feed's units, changed by edit, then ends.
type feedReader struct {
	t      *testing.T
	feed   *unitFeed
	tracks []ingest.Track
	frames int
	edit   func(u *ingest.Unit)
}

func (f *feedReader) Tracks() []ingest.Track { return f.tracks }

func (f *feedReader) Read(ctx context.Context) (*ingest.Unit, error) {
	if f.feed.frame >= f.frames && len(f.feed.pending) == 0 {
		return nil, ingest.ErrReaderClosed
	}
	u := f.feed.next(f.t)
	if f.edit != nil {
		f.edit(u)
	}
	return u, nil
}

// segmentFiles lists a camera's segment files, oldest first.
func segmentFiles(t *testing.T, dir, cam string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "segments", cam, "*", "*.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestRecordSegmentsAtKeyframesParamsAndEpochs(t *testing.T) {
	dir := t.TempDir()
	r, _ := newTestRecorder(t, testConfig(dir, "cam1"), deadSource{}, nil, nil)
	s := r.segments
	clip := loadTestClip(t, "gop1s")
	feed := newUnitFeed(t, clip, testBase, true)
	sps := clip.otherHeightSPS(t) // the camera changes its resolution at 7 s
	rd := &feedReader{t: t, feed: feed, tracks: clip.tracks(true), frames: 400, edit: func(u *ingest.Unit) {
		f := feed.frame - 1
		if u.Track == 0 && f >= 175 && u.Keyframe {
			au := append([][]byte{sps}, clip.aus[f%len(clip.aus)][1:]...)
			u.Packets, _ = feed.enc.Encode(au)
			for _, p := range u.Packets {
				p.Timestamp = feed.tsBase + uint32(f*3600)
			}
		}
		if f >= 300 {
			// A reconnect 20 s later.
			u.Epoch = 2
			u.Received = u.Received.Add(20 * time.Second)
		}
	}}
	cr := newCamRecorder(s, CameraConfig{ID: "cam1", Record: RecordAlways})
	if err := cr.record(context.Background(), rd); !errors.Is(err, ingest.ErrReaderClosed) {
		t.Fatal(err)
	}
	// Segments of 2 s (keyframes every 25 frames = 1 s): 0-2, 2-4, 4-6,
	// 6-7 cut by the new SPS at 7 s, 7-9, 9-11, 11-12 cut by the reconnect,
	// whose units are stamped 20 s later: 32-34, 34-36.
	wantStarts := []time.Duration{0, 2, 4, 6, 7, 9, 11, 32, 34}
	files := segmentFiles(t, dir, "cam1")
	if len(files) != len(wantStarts) {
		t.Fatalf("%d files: %v", len(files), files)
	}
	var inits [][]byte
	for i, f := range files {
		start, length, ok := parseSegmentName(filepath.Base(f))
		want := testBase.Add(wantStarts[i] * time.Second)
		if !ok || !start.Equal(want) || length <= 0 {
			t.Errorf("file %d: %s, want start %v", i, filepath.Base(f), want)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		scan, err := scanFile(bytes.NewReader(b), int64(len(b)))
		if err != nil || scan.valid != int64(len(b)) || !scan.frags[0].track(1).sync {
			t.Errorf("file %d: scan %v, valid %d of %d", i, err, scan.valid, len(b))
			continue
		}
		inits = append(inits, b[:scan.initSize])
	}
	if !bytes.Equal(inits[2], inits[3]) || bytes.Equal(inits[3], inits[4]) || !bytes.Equal(inits[4], inits[5]) {
		t.Error("the SPS change did not start a segment with its own init")
	}
	for i, want := range map[int]int{3: 360, 4: 362} {
		var ini fmp4.Init
		if err := ini.Unmarshal(bytes.NewReader(inits[i])); err != nil {
			t.Fatal(err)
		}
		var sps h264.SPS
		if err := sps.Unmarshal(ini.Tracks[0].Codec.(*mp4.CodecH264).SPS); err != nil || sps.Height() != want {
			t.Errorf("segment %d: height %d, want %d (%v)", i, sps.Height(), want, err)
		}
	}
	spans, err := r.Spans("cam1", testBase.Add(-time.Hour), testBase.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 || !spans[0].Start.Equal(testBase) || !spans[0].End.Equal(testBase.Add(12*time.Second)) ||
		!spans[1].Start.Equal(testBase.Add(32*time.Second)) || !spans[1].End.Equal(testBase.Add(36*time.Second)) {
		t.Errorf("spans %v", spans)
	}

	// An export across the SPS change stops at it; one across the gap at
	// the gap.
	e, err := r.Export("cam1", testBase.Add(6500*time.Millisecond), testBase.Add(9*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Start.Equal(testBase.Add(6*time.Second)) || !e.End.Equal(testBase.Add(7*time.Second)) {
		t.Errorf("export across the SPS change: %v to %v", e.Start, e.End)
	}
	e, err = r.Export("cam1", testBase.Add(11500*time.Millisecond), testBase.Add(40*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Start.Equal(testBase.Add(11*time.Second)) || !e.End.Equal(testBase.Add(12*time.Second)) {
		t.Errorf("export across the gap: %v to %v", e.Start, e.End)
	}
}

func TestExportRetimesTrimsAndIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	r, _ := newTestRecorder(t, testConfig(dir, "cam1"), deadSource{}, nil, nil)
	clip := loadTestClip(t, "gop4s")
	feed := newUnitFeed(t, clip, testBase, true)
	rd := &feedReader{t: t, feed: feed, tracks: clip.tracks(true), frames: 500}
	cr := newCamRecorder(r.segments, CameraConfig{ID: "cam1", Record: RecordAlways})
	if err := cr.record(context.Background(), rd); !errors.Is(err, ingest.ErrReaderClosed) {
		t.Fatal(err)
	}
	// Keyframes at 0, 4, 8, ... s; segments 0-4, 4-8, ... (2 s segments end
	// at the next keyframe).
	start, end := testBase.Add(5300*time.Millisecond), testBase.Add(13700*time.Millisecond)
	e, err := r.Export("cam1", start, end)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Start.Equal(testBase.Add(4*time.Second)) || !e.End.Equal(end) {
		t.Fatalf("export %v to %v", e.Start, e.End)
	}
	var a, b bytes.Buffer
	if _, err := e.WriteTo(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	e2, _ := r.Export("cam1", start, end)
	if _, err := e2.WriteTo(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two exports of the same span differ")
	}
	checkExport(t, a.Bytes(), e.End.Sub(e.Start), 2)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.WriteTo(ctx, &b); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled export: %v", err)
	}
}

// checkExport parses an exported MP4: one init, then fragments numbered
// from 1 on one timeline from 0, starting with a keyframe, lasting about
// length.
func checkExport(t *testing.T, b []byte, length time.Duration, tracks int) {
	t.Helper()
	var ini fmp4.Init
	if err := ini.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatalf("export init: %v", err)
	}
	if len(ini.Tracks) != tracks {
		t.Errorf("export has %d tracks, want %d", len(ini.Tracks), tracks)
	}
	scan, err := scanFile(bytes.NewReader(b), int64(len(b)))
	if err != nil || scan.valid != int64(len(b)) {
		t.Fatalf("export scan: %v, valid %d of %d", err, scan.valid, len(b))
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b[scan.initSize:]); err != nil {
		t.Fatalf("export parts: %v", err)
	}
	if parts[0].Tracks[0].ID != 1 || parts[0].Tracks[0].BaseTime != 0 || parts[0].Tracks[0].Samples[0].IsNonSyncSample {
		t.Errorf("export does not start with a keyframe at 0: %+v", parts[0].Tracks[0])
	}
	next := uint64(0)
	for i, p := range parts {
		if p.SequenceNumber != uint32(i+1) {
			t.Errorf("fragment %d numbered %d", i, p.SequenceNumber)
		}
		for _, pt := range p.Tracks {
			if pt.ID != 1 {
				continue
			}
			if pt.BaseTime < next || pt.BaseTime > next+uint64(durationToTicks(spanGap, videoTimescale)) {
				t.Errorf("fragment %d at %d, after %d", i, pt.BaseTime, next)
			}
			next = pt.BaseTime
			for _, s := range pt.Samples {
				next += uint64(s.Duration)
			}
		}
	}
	got := ticksToDuration(int64(next), videoTimescale)
	if d := got - length; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("export lasts %v, want about %v", got, length)
	}
}

func TestSpanAndExportErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "cam1")
	cfg.MaxExport = time.Minute
	r, _ := newTestRecorder(t, cfg, deadSource{}, nil, nil)
	clip := loadTestClip(t, "gop1s")
	rd := &feedReader{t: t, feed: newUnitFeed(t, clip, testBase, false), tracks: clip.tracks(false), frames: 100}
	cr := newCamRecorder(r.segments, CameraConfig{ID: "cam1", Record: RecordAlways})
	_ = cr.record(context.Background(), rd)

	for _, tc := range []struct {
		name       string
		cam        string
		start, end time.Time
		want       error
	}{
		{"unknown camera", "nope", testBase, testBase.Add(time.Second), ErrUnknownCamera},
		{"reversed", "cam1", testBase.Add(time.Second), testBase, ErrBadSpan},
		{"empty", "cam1", testBase, testBase, ErrBadSpan},
		{"too long", "cam1", testBase, testBase.Add(time.Hour), ErrBadSpan},
		{"huge", "cam1", time.Time{}, time.Unix(1<<40, 0), ErrBadSpan},
		{"before", "cam1", testBase.Add(-time.Minute), testBase.Add(-time.Second), ErrNotRecorded},
		{"after", "cam1", testBase.Add(time.Hour), testBase.Add(time.Hour + time.Second), ErrNotRecorded},
	} {
		if _, err := r.Export(tc.cam, tc.start, tc.end); !errors.Is(err, tc.want) {
			t.Errorf("export %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := r.Spans("cam1", testBase, testBase.Add(-time.Second)); !errors.Is(err, ErrBadSpan) {
		t.Errorf("reversed spans: %v", err)
	}
	if _, err := r.Spans("nope", testBase, testBase.Add(time.Second)); !errors.Is(err, ErrUnknownCamera) {
		t.Errorf("unknown camera spans: %v", err)
	}
	if sp, err := r.Spans("cam1", testBase.Add(time.Hour), testBase.Add(2*time.Hour)); err != nil || len(sp) != 0 {
		t.Errorf("spans outside: %v %v", sp, err)
	}
	// A start inside a gap (here before the first recording) exports from
	// the first keyframe after it.
	e, err := r.Export("cam1", testBase.Add(-10*time.Second), testBase.Add(1500*time.Millisecond))
	if err != nil || !e.Start.Equal(testBase) || !e.End.Equal(testBase.Add(1500*time.Millisecond)) {
		t.Errorf("export from a gap: %v %v", e, err)
	}
}

// writeTestSegment writes a closed segment of frames frames of gop1s
// starting at start, and returns its path and size.
func writeTestSegment(t *testing.T, dir, cam string, start time.Time, frames int, live bool) (string, int64) {
	t.Helper()
	data, w := writeClipAt(t, loadTestClip(t, "gop1s"), start, frames, false)
	length := w.end().Sub(start)
	if live {
		length = -1
	}
	name := filepath.Join(dir, "segments", cam, start.UTC().Format("2006-01-02"), segmentName(start, length))
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return name, int64(len(data))
}

func TestStartRepairsOrSkipsDamagedSegments(t *testing.T) {
	dir := t.TempDir()
	whole, _ := writeTestSegment(t, dir, "cam1", testBase, 100, false)
	cut, size := writeTestSegment(t, dir, "cam1", testBase.Add(4*time.Second), 100, true)
	// A crash in the middle of the last fragment: half of it is on disk.
	b, _ := os.ReadFile(cut)
	scan, _ := scanFile(bytes.NewReader(b), size)
	last := scan.frags[len(scan.frags)-1]
	if err := os.Truncate(cut, last.off+last.size/2); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(filepath.Dir(cut), segmentName(testBase.Add(8*time.Second), -1))
	if err := os.WriteFile(garbage, []byte("not an mp4 at all"), 0o640); err != nil {
		t.Fatal(err)
	}
	initOnly := filepath.Join(filepath.Dir(cut), segmentName(testBase.Add(9*time.Second), -1))
	if err := os.WriteFile(initOnly, b[:scan.initSize+10], 0o640); err != nil {
		t.Fatal(err)
	}
	stranger := filepath.Join(filepath.Dir(cut), "notes.txt")
	if err := os.WriteFile(stranger, []byte("kept"), 0o640); err != nil {
		t.Fatal(err)
	}

	r, _ := newTestRecorder(t, testConfig(dir, "cam1"), deadSource{}, nil, nil)
	files := segmentFiles(t, dir, "cam1")
	repaired := filepath.Join(filepath.Dir(cut), segmentName(testBase.Add(4*time.Second), 3*time.Second)) // its last second was cut
	if len(files) != 2 || files[0] != whole || files[1] != repaired {
		t.Fatalf("files after start: %v", files)
	}
	if fi, _ := os.Stat(repaired); fi.Size() != last.off {
		t.Errorf("repaired size %d, want %d", fi.Size(), last.off)
	}
	if _, err := os.Stat(stranger); err != nil {
		t.Errorf("a file that is not a segment was touched: %v", err)
	}
	spans, _ := r.Spans("cam1", testBase, testBase.Add(time.Minute))
	if len(spans) != 1 || !spans[0].End.Equal(testBase.Add(7*time.Second)) {
		t.Errorf("spans %v", spans)
	}
	e, err := r.Export("cam1", testBase.Add(5*time.Second), testBase.Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := e.WriteTo(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	checkExport(t, out.Bytes(), e.End.Sub(e.Start), 1)
}

func TestRetentionByAgeAndSize(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old1, _ := writeTestSegment(t, dir, "cam1", now.Add(-40*24*time.Hour), 50, false)
	old2, _ := writeTestSegment(t, dir, "cam2", now.Add(-31*24*time.Hour), 50, false)
	// Big (sparse) segments: the index counts their length.
	var big []string
	for i := range 3 {
		p, _ := writeTestSegment(t, dir, []string{"cam1", "cam2", "cam1"}[i], now.Add(time.Duration(i-10)*time.Hour), 50, false)
		if err := os.Truncate(p, 30<<20); err != nil {
			t.Fatal(err)
		}
		big = append(big, p)
	}
	cfg := testConfig(dir, "cam1", "cam2")
	cfg.MaxBytes = 64 << 20
	reg := prometheus.NewRegistry()
	r, _ := newTestRecorder(t, cfg, deadSource{}, reg, nil)
	for _, p := range []string{old1, old2, big[0]} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not deleted: %v", p, err)
		}
	}
	for _, p := range big[1:] {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s deleted: %v", p, err)
		}
	}
	st, _ := r.Status("cam1")
	if st.Segments != 1 || st.Bytes != 30<<20 {
		t.Errorf("cam1 status %+v", st)
	}
	got := gatherValues(t, reg, "skywatch_recording_deleted_segments_total")
	want := map[string]float64{"cam1/age": 1, "cam1/space": 1, "cam2/age": 1, "cam2/space": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("deleted %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// gatherValues returns the values of a metric by its label values joined
// with "/".
func gatherValues(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				key = append(key, l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[strings.Join(key, "/")] = v
		}
	}
	return out
}

func TestNoSpaceStopsWhenOnlyEvidenceIsLeft(t *testing.T) {
	dir := t.TempDir()
	seg, _ := writeTestSegment(t, dir, "cam1", time.Now().Add(-time.Hour), 50, false)
	var mu sync.Mutex
	evidence := int64(0)
	free := uint64(10 << 30)
	cfg := testConfig(dir, "cam1")
	cfg.MaxBytes = 100 << 20
	r, log := newTestRecorder(t, cfg, deadSource{}, nil, func(s *segments) {
		s.evidenceBytes = func() int64 { mu.Lock(); defer mu.Unlock(); return evidence }
		s.statfs = func(string) (uint64, uint64, error) { mu.Lock(); defer mu.Unlock(); return free, 20 << 30, nil }
	})
	set := func(ev int64, fr uint64) { mu.Lock(); evidence, free = ev, fr; mu.Unlock() }
	waitUntil(t, "waiting", func() bool { st, _ := r.Status("cam1"); return st.State == StateWaiting })

	set(200<<20, 10<<30) // evidence alone is over max_bytes
	waitUntil(t, "stopped for space", func() bool {
		st, _ := r.Status("cam1")
		return st.State == StateStopped && st.Reason == "no space" && log.count(NoticeFault, "cam1") == 1
	})
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Errorf("the segment was kept: %v", err)
	}
	set(0, 10<<30)
	waitUntil(t, "resumed", func() bool {
		st, _ := r.Status("cam1")
		return st.State == StateWaiting && log.count(NoticeRecovered, "cam1") == 1
	})
	set(0, 512<<10) // below min_free, nothing to delete
	waitUntil(t, "stopped again", func() bool { return log.count(NoticeFault, "cam1") == 2 })
}

func TestTimestampJumpStartsANewSegment(t *testing.T) {
	dir := t.TempDir()
	r, _ := newTestRecorder(t, testConfig(dir, "cam1"), deadSource{}, nil, nil)
	clip := loadTestClip(t, "gop1s")
	feed := newUnitFeed(t, clip, testBase, true)
	rd := &feedReader{t: t, feed: feed, tracks: clip.tracks(true), frames: 200, edit: func(u *ingest.Unit) {
		if u.Track == 0 && feed.frame-1 >= 110 {
			for _, p := range u.Packets {
				p.Timestamp += 3600 * 90000 // an hour ahead, in the middle of a GOP
			}
		}
	}}
	cr := newCamRecorder(r.segments, CameraConfig{ID: "cam1", Record: RecordAlways})
	if err := cr.record(context.Background(), rd); !errors.Is(err, ingest.ErrReaderClosed) {
		t.Fatal(err)
	}
	spans, _ := r.Spans("cam1", testBase.Add(-time.Hour), testBase.Add(2*time.Hour))
	if len(spans) != 1 || !spans[0].Start.Equal(testBase) || !spans[0].End.Equal(testBase.Add(8*time.Second)) {
		t.Errorf("spans %v", spans)
	}
	var starts []string
	for _, f := range segmentFiles(t, dir, "cam1") {
		starts = append(starts, filepath.Base(f)[9:15])
	}
	if strings.Join(starts, " ") != "100000 100002 100004 100005 100007" {
		t.Errorf("segments start at %v", starts)
	}
}
