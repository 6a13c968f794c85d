package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// applyCamera is one camera on the shared test camera server's path.
func applyCamera(cam *hardware.Camera, id, path, mode string) ingest.CameraConfig {
	return ingest.CameraConfig{ID: id, URL: cam.URL(path), Username: camUser, Password: camPass,
		Transport: ingest.TransportTCP, Mode: mode}
}

// applyServer is a camera server with a path for every camera of the
// apply tests.
func applyServer(t *testing.T, paths ...string) *hardware.Camera {
	t.Helper()
	var ps []hardware.CameraPath
	for _, p := range paths {
		ps = append(ps, hardware.CameraPath{Path: p, Clip: hardware.ClipGOP1s})
	}
	return startCamera(t, hardware.CameraConfig{Paths: ps})
}

func newApplyManager(t *testing.T, cfg ingest.Config) *ingest.Manager {
	t.Helper()
	ingest.SetMinBackoff(&cfg, 100*time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger, _ := testLogger(t)
	m := ingest.NewManager(cfg, logger)
	t.Cleanup(m.Close)
	return m
}

func apply(t *testing.T, m *ingest.Manager, cfg ingest.Config) ingest.CameraChanges {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ch, err := m.Apply(cfg)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return ch
}

func addReaderOf(t *testing.T, m *ingest.Manager, id string, sub bool) *ingest.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	add := m.AddReader
	if sub {
		add = m.AddSubReader
	}
	r, err := add(ctx, id)
	if err != nil {
		t.Fatalf("AddReader(%s): %v", id, err)
	}
	t.Cleanup(r.Close)
	return r
}

// readEnd reads r until it fails and returns the error.
func readEnd(t *testing.T, r *ingest.Reader) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	for {
		if _, err := r.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("reader did not end: %v", err)
			}
			return err
		}
	}
}

// seriesOf lists the cameras that have metric series.
func seriesOf(t *testing.T, m *ingest.Manager) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var cams []string
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "camera" && !slices.Contains(cams, l.GetValue()) {
					cams = append(cams, l.GetValue())
				}
			}
		}
	}
	slices.Sort(cams)
	return cams
}

// Apply with four cameras: a keeps its session and its reader (only its
// name changes), b is removed, c's URL changes, d is added.
func TestApplyAddChangeRemove(t *testing.T) {
	verifyNoLeaks(t)
	cam := applyServer(t, "/a", "/b", "/c", "/c2", "/d")
	a := applyCamera(cam, "a", "/a", ingest.ModeOnDemand)
	b := applyCamera(cam, "b", "/b", ingest.ModeAlways)
	c := applyCamera(cam, "c", "/c", ingest.ModeOnDemand)
	m := newApplyManager(t, ingest.Config{Cameras: []ingest.CameraConfig{a, b, c}})
	m.Start()

	ra, rb, rc := addReaderOf(t, m, "a", false), addReaderOf(t, m, "b", false), addReaderOf(t, m, "c", false)
	ua := read(t, ra)
	read(t, rb)
	read(t, rc)
	if n := cam.PlayCount("/a"); n != 1 {
		t.Fatalf("a: %d sessions played before Apply, want 1", n)
	}

	a.Name = "Gate A"
	c.URL = cam.URL("/c2")
	d := applyCamera(cam, "d", "/d", ingest.ModeAlways)
	began := time.Now()
	ch := apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{d, c, a}})
	t.Logf("Apply took %v (it returns once b's and c's old sessions are closed)", time.Since(began).Round(time.Microsecond))
	want := ingest.CameraChanges{Added: []string{"d"}, Changed: []string{"c"}, Removed: []string{"b"}, Renamed: []string{"a"}}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Errorf("changes %+v, want %+v", ch, want)
	}

	// a: the same session, the same reader, the same epoch, the new name.
	for range 50 { // 2 s of video and sound
		if u := read(t, ra); u.Epoch != ua.Epoch {
			t.Fatalf("a's reader moved from epoch %d to %d: a new session", ua.Epoch, u.Epoch)
		}
	}
	if n := cam.PlayCount("/a"); n != 1 {
		t.Errorf("a: %d sessions played, want 1 (its session kept)", n)
	}
	if n := cam.Sessions("/a"); n != 1 {
		t.Errorf("a: %d sessions, want 1", n)
	}
	if st, err := m.Camera("a"); err != nil || st.Name != "Gate A" || st.Viewers != 1 || st.Status != ingest.StatusOnline {
		t.Errorf("a's state %+v %v, want the new name, online, 1 viewer", st, err)
	}

	// b: its reader ends with the reason, its session is closed (Apply
	// waited for it), it is unknown with the reason, its series are gone.
	if err := readEnd(t, rb); !errors.Is(err, ingest.ErrCameraRemoved) || !errors.Is(err, ingest.ErrReaderClosed) {
		t.Errorf("b's reader ended with %v, want ErrCameraRemoved and ErrReaderClosed", err)
	}
	waitFor(t, "b's session to close on the camera", func() bool { return cam.Sessions("/b") == 0 })
	_, err := m.AddReader(context.Background(), "b")
	if !errors.Is(err, ingest.ErrUnknownCamera) || !errors.Is(err, ingest.ErrCameraRemoved) {
		t.Errorf("AddReader(b) = %v, want ErrUnknownCamera and ErrCameraRemoved", err)
	}
	if _, err := m.Camera("b"); !errors.Is(err, ingest.ErrCameraRemoved) {
		t.Errorf("Camera(b) = %v", err)
	}
	if err := m.Hold("b", false, time.Now().Add(time.Minute)); !errors.Is(err, ingest.ErrUnknownCamera) {
		t.Errorf("Hold(b) = %v", err)
	}

	// c: its reader ends with the reason; the new URL is pulled.
	if err := readEnd(t, rc); !errors.Is(err, ingest.ErrCameraChanged) {
		t.Errorf("c's reader ended with %v, want ErrCameraChanged", err)
	}
	waitFor(t, "c's old session to close", func() bool { return cam.Sessions("/c") == 0 })
	rc2 := addReaderOf(t, m, "c", false)
	read(t, rc2)
	if cam.Sessions("/c2") != 1 || cam.PlayCount("/c") != 1 {
		t.Errorf("c: %d sessions on the new URL, %d ever on the old one; want 1 and 1", cam.Sessions("/c2"), cam.PlayCount("/c"))
	}

	// d: always on, so pulled without a reader; it can be read.
	waitFor(t, "d to be pulled", func() bool { return cam.Sessions("/d") == 1 })
	read(t, addReaderOf(t, m, "d", false))

	var ids []string
	for _, st := range m.Cameras() {
		ids = append(ids, st.ID)
	}
	if fmt.Sprint(ids) != "[a c d]" {
		t.Errorf("Cameras() %v, want [a c d]", ids)
	}
	if got := seriesOf(t, m); fmt.Sprint(got) != "[a c d]" {
		t.Errorf("metric series of %v, want [a c d]", got)
	}

	// b again: a camera added back is pulled again.
	ch = apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{a, b, c, d}})
	if fmt.Sprint(ch.Added) != "[b]" || len(ch.Changed)+len(ch.Removed)+len(ch.Renamed) != 0 {
		t.Errorf("changes %+v, want b added only", ch)
	}
	read(t, addReaderOf(t, m, "b", false))
	if n := cam.PlayCount("/a"); n != 1 {
		t.Errorf("a: %d sessions played after the second Apply, want 1", n)
	}
}

// A change of the sub URL restarts the sub stream only: the main stream's
// reader goes on. A change of the credentials restarts both.
func TestApplySubStream(t *testing.T) {
	verifyNoLeaks(t)
	cam := applyServer(t, "/main", "/sub", "/sub2")
	c := applyCamera(cam, "c", "/main", ingest.ModeOnDemand)
	c.SubURL = cam.URL("/sub")
	m := newApplyManager(t, ingest.Config{Cameras: []ingest.CameraConfig{c}})
	m.Start()
	main, sub := addReaderOf(t, m, "c", false), addReaderOf(t, m, "c", true)
	um := read(t, main)
	read(t, sub)

	c.SubURL = cam.URL("/sub2")
	if ch := apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{c}}); fmt.Sprint(ch.Changed) != "[c]" {
		t.Errorf("changes %+v, want c changed", ch)
	}
	if err := readEnd(t, sub); !errors.Is(err, ingest.ErrCameraChanged) {
		t.Errorf("sub reader ended with %v", err)
	}
	for range 25 {
		if u := read(t, main); u.Epoch != um.Epoch {
			t.Fatalf("main reader moved to a new session")
		}
	}
	read(t, addReaderOf(t, m, "c", true))
	if cam.PlayCount("/main") != 1 || cam.Sessions("/sub2") != 1 {
		t.Errorf("main played %d times, sub2 has %d sessions; want 1 and 1", cam.PlayCount("/main"), cam.Sessions("/sub2"))
	}

	// Without a sub stream now: AddSubReader says so.
	c.SubURL = ""
	apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{c}})
	if _, err := m.AddSubReader(context.Background(), "c"); !errors.Is(err, ingest.ErrNoSubStream) {
		t.Errorf("AddSubReader after the sub URL went = %v", err)
	}

	c.Password = "N3w-pass"
	apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{c}})
	if err := readEnd(t, main); !errors.Is(err, ingest.ErrCameraChanged) {
		t.Errorf("main reader after a password change ended with %v", err)
	}
}

// Manager-wide settings are reported as restart-only and not applied;
// Apply after Close fails.
func TestApplyRestartOnlyAndClosed(t *testing.T) {
	verifyNoLeaks(t)
	cam := applyServer(t, "/a")
	a := applyCamera(cam, "a", "/a", ingest.ModeOnDemand)
	m := newApplyManager(t, ingest.Config{Cameras: []ingest.CameraConfig{a}})
	ch := apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{a}, Linger: time.Minute, QueueSize: 64})
	if fmt.Sprint(ch.RestartOnly) != "[ingest.linger ingest.queue_size]" {
		t.Errorf("restart-only %v", ch.RestartOnly)
	}
	if ch := apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{a}, Linger: ingest.DefaultLinger}); len(ch.RestartOnly) != 0 {
		t.Errorf("restart-only %v for the defaults written out", ch.RestartOnly)
	}
	m.Close()
	if _, err := m.Apply(ingest.Config{}); !errors.Is(err, ingest.ErrManagerClosed) {
		t.Errorf("Apply after Close = %v", err)
	}
}

// With a Gate: a removed camera's lease is released once its session is
// closed, an added always-on camera is claimed and pulled, and a changed
// one keeps its lease.
func TestApplyWithGate(t *testing.T) {
	verifyNoLeaks(t)
	cam := applyServer(t, "/a", "/b", "/b2", "/c")
	g := newFakeGate()
	a := applyCamera(cam, "a", "/a", ingest.ModeAlways)
	b := applyCamera(cam, "b", "/b", ingest.ModeAlways)
	cfg := ingest.Config{Cameras: []ingest.CameraConfig{a, b}, Linger: 200 * time.Millisecond}
	ingest.SetMinBackoff(&cfg, 100*time.Millisecond)
	logger, _ := testLogger(t)
	m := ingest.NewManager(cfg, logger)
	m.UseGate(gateNode{g, "n1"}, time.Hour) // claims come from Start and Apply only
	m.Start()
	t.Cleanup(m.Close)
	waitFor(t, "a and b pulled", func() bool { return cam.Sessions("/a") == 1 && cam.Sessions("/b") == 1 })
	ra, rb := addReaderOf(t, m, "a", false), addReaderOf(t, m, "b", false)
	read(t, ra)
	read(t, rb)

	b.URL = cam.URL("/b2")
	c := applyCamera(cam, "c", "/c", ingest.ModeAlways)
	ch := apply(t, m, ingest.Config{Cameras: []ingest.CameraConfig{b, c}})
	if fmt.Sprint(ch.Added, ch.Changed, ch.Removed) != "[c] [b] [a]" {
		t.Errorf("changes %+v", ch)
	}
	if err := readEnd(t, ra); !errors.Is(err, ingest.ErrCameraRemoved) {
		t.Errorf("a's reader ended with %v", err)
	}
	if h := g.holder("a"); h != "" {
		t.Errorf("a's lease is held by %q after Apply returned", h)
	}
	if err := readEnd(t, rb); !errors.Is(err, ingest.ErrCameraChanged) {
		t.Errorf("b's reader ended with %v", err)
	}
	waitFor(t, "b's new URL and c pulled", func() bool {
		return cam.Sessions("/b2") == 1 && cam.Sessions("/c") == 1 && cam.Sessions("/b") == 0
	})
	if g.holder("b") != "n1" || g.holder("c") != "n1" {
		t.Errorf("holders b=%q c=%q, want n1", g.holder("b"), g.holder("c"))
	}
	// Another node's LeaseLost and Handover reach the new cameras.
	if !m.Handover("c") {
		t.Errorf("Handover(c) = false")
	}
	waitFor(t, "c's lease released after the handover", func() bool { return g.holder("c") == "" && cam.Sessions("/c") == 0 })
}

// Readers come and go while Apply adds, changes and removes their cameras:
// every AddReader either reads or fails with one of the documented errors,
// every reader ends, and once all is closed no session is left. Run with
// -race.
func TestApplyConcurrentWithReaders(t *testing.T) {
	verifyNoLeaks(t)
	cam := applyServer(t, "/a", "/b", "/c", "/c2")
	base := []ingest.CameraConfig{
		applyCamera(cam, "a", "/a", ingest.ModeOnDemand),
		applyCamera(cam, "b", "/b", ingest.ModeAlways),
		applyCamera(cam, "c", "/c", ingest.ModeOnDemand),
	}
	m := newApplyManager(t, ingest.Config{Cameras: base, Linger: 50 * time.Millisecond})
	m.Start()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	count := func(what string) {
		mu.Lock()
		outcomes[what]++
		mu.Unlock()
	}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := []string{"a", "b", "c"}[i%3]
			for ctx.Err() == nil {
				actx, acancel := context.WithTimeout(ctx, 5*time.Second)
				var r *ingest.Reader
				var err error
				if i%2 == 0 {
					r, err = m.AddReader(actx, id)
				} else {
					r, err = m.AddSubReader(actx, id)
				}
				acancel()
				var unavailable *ingest.UnavailableError
				switch {
				case err == nil:
				case errors.Is(err, ingest.ErrCameraRemoved) && errors.Is(err, ingest.ErrUnknownCamera):
					count("removed")
					time.Sleep(5 * time.Millisecond)
					continue
				case errors.Is(err, ingest.ErrNoSubStream):
					count("no sub")
					time.Sleep(5 * time.Millisecond)
					continue
				case errors.As(err, &unavailable), errors.Is(err, ingest.ErrCameraChanged), ctx.Err() != nil:
					count("unavailable or changed")
					continue
				default:
					t.Errorf("AddReader(%s): unexpected %v", id, err)
					return
				}
				count("read")
				for range rand.IntN(20) {
					if _, err := r.Read(ctx); err != nil {
						if !errors.Is(err, ingest.ErrReaderClosed) && ctx.Err() == nil {
							t.Errorf("Read: %v", err)
						}
						break
					}
				}
				r.Close()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = m.Cameras()
			_ = seriesOf(t, m)
			time.Sleep(time.Millisecond)
		}
	}()

	variants := []func() []ingest.CameraConfig{
		func() []ingest.CameraConfig { return base },
		func() []ingest.CameraConfig { return base[1:] }, // a removed
		func() []ingest.CameraConfig { // c moved, b renamed
			cs := slices.Clone(base)
			cs[2].URL = cam.URL("/c2")
			cs[1].Name = "B " + time.Now().Format("15:04:05.000")
			return cs
		},
		func() []ingest.CameraConfig { // b with the sub stream on c2
			cs := slices.Clone(base)
			cs[1].SubURL = cam.URL("/c2")
			return cs
		},
	}
	const applies = 40
	for i := range applies {
		if _, err := m.Apply(ingest.Config{Cameras: variants[i%len(variants)](), Linger: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("%d applies; AddReader outcomes: %v", applies, outcomes)
	if outcomes["read"] == 0 {
		t.Errorf("no reader ever read")
	}
	// Back to on-demand cameras only: every session ends after the linger.
	onDemand := slices.Clone(base)
	onDemand[1].Mode = ingest.ModeOnDemand
	apply(t, m, ingest.Config{Cameras: onDemand, Linger: 50 * time.Millisecond})
	waitFor(t, "every session to end", func() bool { return cam.TotalSessions() == 0 })
	if s := fmt.Sprint(m.Cameras()); strings.Contains(s, "online") {
		t.Errorf("a camera is online with no reader: %s", s)
	}
}
