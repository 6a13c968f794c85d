package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// fakeGate is a lease table shared by the managers of one test, as a
// cluster's Redis would be: a camera is held by at most one node.
type fakeGate struct {
	mu      sync.Mutex
	holders map[string]string // camera -> node
	// prefer, when set, is the node that always-on cameras belong to.
	prefer string
}

func newFakeGate() *fakeGate { return &fakeGate{holders: map[string]string{}} }

// node is one node's view of the table.
type gateNode struct {
	g    *fakeGate
	name string
}

func (n gateNode) Claim(_ context.Context, camera string) (bool, error) {
	n.g.mu.Lock()
	defer n.g.mu.Unlock()
	if n.g.prefer != "" && n.g.prefer != n.name {
		return false, nil
	}
	h, ok := n.g.holders[camera]
	if ok && h != n.name {
		return false, nil
	}
	n.g.holders[camera] = n.name
	return true, nil
}

func (n gateNode) Release(_ context.Context, camera string) error {
	n.g.mu.Lock()
	defer n.g.mu.Unlock()
	if n.g.holders[camera] == n.name {
		delete(n.g.holders, camera)
	}
	return nil
}

func (g *fakeGate) holder(camera string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holders[camera]
}

// steal gives the camera's lease to another node, as an expiry and another
// node's claim would.
func (g *fakeGate) steal(camera, node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holders[camera] = node
}

func gatedManager(t *testing.T, cam *hardware.Camera, gate ingest.Gate, cc ingest.CameraConfig) *ingest.Manager {
	t.Helper()
	cc.ID = "cam1"
	cc.URL = cam.URL("/cam1")
	cc.Username, cc.Password = camUser, camPass
	cfg := ingest.Config{Cameras: []ingest.CameraConfig{cc}, Linger: 200 * time.Millisecond}
	ingest.SetMinBackoff(&cfg, 100*time.Millisecond)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logger, _ := testLogger(t)
	m := ingest.NewManager(cfg, logger)
	m.UseGate(gate, 50*time.Millisecond)
	m.Start()
	t.Cleanup(m.Close)
	return m
}

// Two managers of one on-demand camera behind one lease table: the first
// asked pulls it, the other refuses with ErrPulledElsewhere and never
// connects; when the first stops (linger), the lease is released and the
// second may pull it.
func TestGateOnDemandOneNodeAtATime(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{})
	g := newFakeGate()
	a := gatedManager(t, cam, gateNode{g, "a"}, ingest.CameraConfig{})
	b := gatedManager(t, cam, gateNode{g, "b"}, ingest.CameraConfig{})

	ra := addReader(t, a)
	read(t, ra)
	if h := g.holder("cam1"); h != "a" {
		t.Fatalf("holder %q, want a", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	_, err := b.AddReader(ctx, "cam1")
	var unavailable *ingest.UnavailableError
	if !errors.Is(err, ingest.ErrPulledElsewhere) || !errors.As(err, &unavailable) {
		t.Fatalf("second node's AddReader: %v, want an UnavailableError wrapping ErrPulledElsewhere", err)
	}
	if n := cam.Sessions("/cam1"); n != 1 {
		t.Fatalf("camera has %d sessions, want 1", n)
	}
	if err := b.Hold("cam1", false, time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("Hold on the other node: %v", err)
	}
	if st, _ := b.Camera("cam1"); st.Status != ingest.StatusOffline || !st.Held.IsZero() {
		t.Fatalf("other node after Hold: %s, held %v; want offline, not held", st.Status, st.Held)
	}

	ra.Close()
	waitFor(t, "the lease's release after the linger", func() bool { return g.holder("cam1") == "" })
	rb, err := b.AddReader(ctx, "cam1")
	if err != nil {
		t.Fatalf("AddReader after release: %v", err)
	}
	defer rb.Close()
	read(t, rb)
	if h := g.holder("cam1"); h != "b" {
		t.Fatalf("holder %q, want b", h)
	}
}

// A lost lease stops the camera at once and closes its readers; an
// always-on camera is claimed and pulled again by the node the gate
// prefers, and comes back to the first when the lease does.
func TestGateAlwaysFailover(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{})
	g := newFakeGate()
	g.prefer = "a"
	a := gatedManager(t, cam, gateNode{g, "a"}, ingest.CameraConfig{Mode: ingest.ModeAlways})
	b := gatedManager(t, cam, gateNode{g, "b"}, ingest.CameraConfig{Mode: ingest.ModeAlways})

	online := func(m *ingest.Manager) func() bool {
		return func() bool { st, _ := m.Camera("cam1"); return st.Status == ingest.StatusOnline }
	}
	waitFor(t, "a pulling", online(a))
	r := addReader(t, a)
	read(t, r)
	if st, _ := b.Camera("cam1"); st.Status != ingest.StatusOffline {
		t.Fatalf("b: %s, want offline", st.Status)
	}

	// a's lease goes to b (a's node "died" for the cluster).
	g.mu.Lock()
	g.prefer = "b"
	g.mu.Unlock()
	g.steal("cam1", "b")
	a.LeaseLost("cam1")
	waitReaderClosed(t, r, "the lease was lost")
	if st, _ := a.Camera("cam1"); st.Status != ingest.StatusOffline {
		t.Fatalf("a after LeaseLost: %s, want offline", st.Status)
	}
	b.Rebalance()
	waitFor(t, "b pulling", online(b))
	waitFor(t, "one session at the camera", func() bool { return cam.Sessions("/cam1") == 1 })
	if h := g.holder("cam1"); h != "b" {
		t.Fatalf("holder %q, want b", h)
	}
}

// releaseWatch is a node's view of the table that counts its releases.
type releaseWatch struct {
	gateNode
	mu       sync.Mutex
	released int
}

func (n *releaseWatch) Release(ctx context.Context, camera string) error {
	n.mu.Lock()
	n.released++
	n.mu.Unlock()
	return n.gateNode.Release(ctx, camera)
}

// Handover stops an always-on camera and closes its readers, releases its
// lease only once its session is closed (never two sessions at the
// camera), does not claim it again meanwhile, and lets the other node
// pull it.
func TestGateHandover(t *testing.T) {
	verifyNoLeaks(t)
	cam := startCamera(t, hardware.CameraConfig{})
	g := newFakeGate()
	g.prefer = "a"
	wa := &releaseWatch{gateNode: gateNode{g, "a"}}
	a := gatedManager(t, cam, wa, ingest.CameraConfig{Mode: ingest.ModeAlways})
	b := gatedManager(t, cam, gateNode{g, "b"}, ingest.CameraConfig{Mode: ingest.ModeAlways})
	online := func(m *ingest.Manager) func() bool {
		return func() bool { st, _ := m.Camera("cam1"); return st.Status == ingest.StatusOnline }
	}
	waitFor(t, "a pulling", online(a))
	r := addReader(t, a)
	read(t, r)

	// Never two sessions at the camera, sampled all along.
	most := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			most = max(most, cam.Sessions("/cam1"))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	g.mu.Lock()
	g.prefer = "b"
	g.mu.Unlock()
	if !a.Handover("cam1") {
		t.Fatal("Handover of a held camera: false")
	}
	if a.Handover("cam1") {
		t.Fatal("second Handover: true")
	}
	waitReaderClosed(t, r, "the handover")
	waitFor(t, "a's release", func() bool { return g.holder("cam1") == "" || g.holder("cam1") == "b" })
	b.Rebalance()
	waitFor(t, "b pulling", online(b))
	if h := g.holder("cam1"); h != "b" {
		t.Fatalf("holder %q, want b", h)
	}
	if st, _ := a.Camera("cam1"); st.Status != ingest.StatusOffline {
		t.Fatalf("a after the handover: %s, want offline", st.Status)
	}
	if n := cam.Sessions("/cam1"); n != 1 {
		t.Fatalf("camera sessions %d, want 1", n)
	}
	close(stop)
	wg.Wait()
	if most > 1 {
		t.Fatalf("the camera saw %d sessions at once", most)
	}
	wa.mu.Lock()
	defer wa.mu.Unlock()
	if wa.released != 1 {
		t.Fatalf("a released its lease %d times, want 1", wa.released)
	}
}

// waitReaderClosed reads r until it ends, failing unless it ends with
// ErrReaderClosed within failAfter.
func waitReaderClosed(t *testing.T, r *ingest.Reader, after string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	for {
		if _, err := r.Read(ctx); err != nil {
			if !errors.Is(err, ingest.ErrReaderClosed) {
				t.Fatalf("reader after %s: %v, want ErrReaderClosed", after, err)
			}
			return
		}
	}
}
