package cluster

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"
)

func TestCameraClaimsOneHolderStickyAndLost(t *testing.T) {
	r := newRig(t)
	a, b := r.node("sky-a"), r.node("sky-b")
	ctx := context.Background()
	lostA := make(chan string, 10)
	a.OnCameraLost(func(cam string) { lostA <- cam })

	claim := func(n *node, cam string, want bool) {
		t.Helper()
		ok, err := n.ClaimCamera(ctx, cam)
		if err != nil || ok != want {
			t.Fatalf("%s claims %s: %v %v, want %v", n.Node(), cam, ok, err, want)
		}
	}
	owner := func(n *node, cam, want string) {
		t.Helper()
		got, err := n.CameraOwner(ctx, cam)
		if err != nil || got != want {
			t.Fatalf("%s: owner of %s = %q %v, want %q", n.Node(), cam, got, err, want)
		}
	}
	claim(a, "cam1", true)
	claim(b, "cam1", false)
	claim(a, "cam1", true) // already ours
	owner(b, "cam1", "sky-a")
	if !slices.Equal(a.Cameras(), []string{"cam1"}) || len(b.Cameras()) != 0 {
		t.Fatalf("cameras: a %v, b %v", a.Cameras(), b.Cameras())
	}
	// Sticky: renewed by the heartbeat past the failover time.
	time.Sleep(testFailover + a.interval)
	claim(b, "cam1", false)
	owner(b, "cam1", "sky-a")
	eventually(t, 2*a.interval, "sky-a's record lists cam1", func() bool {
		n, ok := b.NodeInfo("sky-a")
		return ok && slices.Equal(n.Cameras, []string{"cam1"})
	})

	// Released: another node may take it.
	if err := a.ReleaseCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	claim(b, "cam1", true)
	owner(a, "cam1", "sky-b")

	// Taken by another after its claim expired (here: deleted, as if
	// expired while sky-a was paused): sky-a's next renewal reports it lost.
	claim(a, "cam2", true)
	r.rdb.Del(ctx, r.prefix+"cluster:camera:cam2")
	claim(b, "cam2", true)
	select {
	case cam := <-lostA:
		if cam != "cam2" {
			t.Fatalf("lost %s, want cam2", cam)
		}
	case <-time.After(3 * a.interval):
		t.Fatal("sky-a not told it lost cam2")
	}
	if slices.Contains(a.Cameras(), "cam2") {
		t.Fatal("sky-a still lists cam2")
	}
	owner(a, "cam2", "sky-b")

	// Cut off from Redis: sky-a gives its claim up before it can expire.
	claim(a, "cam3", true)
	cutAt := time.Now()
	a.cut.cut.Store(true)
	select {
	case cam := <-lostA:
		if cam != "cam3" {
			t.Fatalf("lost %s, want cam3", cam)
		}
		if v := r.get(r.prefix + "cluster:camera:cam3"); v != "sky-a" {
			t.Fatalf("cam3's claim was %q when sky-a gave it up, want still sky-a's", v)
		}
		t.Logf("cut-off node gave its camera up after %s (failover %s)", time.Since(cutAt).Round(time.Millisecond), testFailover)
	case <-time.After(2 * testFailover):
		t.Fatal("sky-a not told it lost cam3")
	}
	eventually(t, testFailover, "cam3 free for sky-b", func() bool {
		ok, err := b.ClaimCamera(ctx, "cam3")
		return err == nil && ok
	})
	a.cut.cut.Store(false)

	// Camera ids become keys: bad ones are refused.
	for _, bad := range []string{"", "a b", "cam*", string(make([]byte, maxCameraID+1))} {
		if _, err := a.ClaimCamera(ctx, bad); err == nil {
			t.Errorf("claim of %q accepted", bad)
		}
	}
}

func TestRendezvousSpreadsAndMovesOnlyTheDeadNodesCameras(t *testing.T) {
	r := newRig(t)
	nodes := []*node{r.node("sky-a"), r.node("sky-b"), r.node("sky-c")}
	for _, n := range nodes {
		eventually(t, 2*testFailover, "three live nodes", func() bool { return len(n.Live()) == 3 })
	}
	ctx := context.Background()
	owners := func(n *node) map[string]string {
		out := map[string]string{}
		for i := range 300 {
			cam := fmt.Sprintf("cam-%03d", i)
			o, err := n.CameraOwner(ctx, cam)
			if err != nil {
				t.Fatal(err)
			}
			out[cam] = o
		}
		return out
	}
	before := owners(nodes[0])
	count := map[string]int{}
	for _, o := range before {
		count[o]++
	}
	t.Logf("300 cameras over 3 nodes: %v", count)
	for _, n := range nodes {
		if c := count[n.Node()]; c < 70 || c > 130 {
			t.Errorf("%s would pull %d of 300 cameras", n.Node(), c)
		}
	}
	// Every node computes the same owners.
	if other := owners(nodes[1]); !mapsEqual(other, before) {
		t.Fatal("nodes disagree on the rendezvous owners")
	}

	nodes[2].cut.cut.Store(true)
	eventually(t, 2*testFailover, "sky-c gone", func() bool { return len(nodes[0].Live()) == 2 })
	after := owners(nodes[0])
	moved := 0
	for cam, o := range before {
		switch {
		case o == "sky-c" && after[cam] == "sky-c":
			t.Fatalf("%s still goes to the dead node", cam)
		case o != "sky-c" && after[cam] != o:
			t.Fatalf("%s moved from live %s to %s", cam, o, after[cam])
		case o == "sky-c":
			moved++
		}
	}
	if moved != count["sky-c"] {
		t.Fatalf("%d moved, sky-c had %d", moved, count["sky-c"])
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRendezvousOwner(t *testing.T) {
	if got := RendezvousOwner("cam1", nil); got != "" {
		t.Fatalf("no nodes: %q", got)
	}
	if got := RendezvousOwner("cam1", []string{"sky-a"}); got != "sky-a" {
		t.Fatalf("one node: %q", got)
	}
	// The order of the nodes does not matter.
	for i := range 100 {
		cam := fmt.Sprint("c", i)
		if RendezvousOwner(cam, []string{"a", "b", "c"}) != RendezvousOwner(cam, []string{"c", "a", "b"}) {
			t.Fatalf("%s: owner depends on the order", cam)
		}
	}
}

func TestCloseReleasesClaimsAndIsIdempotent(t *testing.T) {
	r := newRig(t)
	a, b := r.node("sky-a"), r.node("sky-b")
	ctx := context.Background()
	for _, cam := range []string{"cam1", "cam2"} {
		if ok, err := a.ClaimCamera(ctx, cam); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, cam := range []string{"cam1", "cam2"} {
		if v := r.get(r.prefix + "cluster:camera:" + cam); v != "" {
			t.Fatalf("%s held by %q after Close", cam, v)
		}
		if ok, err := b.ClaimCamera(ctx, cam); !ok || err != nil {
			t.Fatalf("sky-b claims %s after sky-a closed: %v %v", cam, ok, err)
		}
	}
	if _, err := a.ClaimCamera(ctx, "cam3"); err != ErrClosed {
		t.Fatalf("claim after Close: %v", err)
	}
	if err := a.ReleaseCamera(ctx, "cam1"); err != nil {
		t.Fatalf("release after Close: %v", err)
	}
	if err := a.Start(ctx); err != ErrClosed {
		t.Fatalf("Start after Close: %v", err)
	}
}

// A node is not settled before Start, nor right after it (its first
// heartbeat may have missed nodes starting with it), and is once a later
// heartbeat has read the live set; two nodes started together both see
// each other by then. Cut off from Redis, a node settles after Failover/2.
func TestSettledAfterOneHeartbeat(t *testing.T) {
	r := newRig(t)
	a := r.newNode("a", io.Discard)
	if a.Settled() {
		t.Fatal("settled before Start")
	}
	b := r.newNode("b", io.Discard)
	for _, n := range []*node{a, b} {
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if a.Settled() {
		t.Fatal("a settled right after Start")
	}
	eventually(t, testFailover, "both settled", func() bool { return a.Settled() && b.Settled() })
	if got := ids(a.Live()); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a settled seeing %v", got)
	}

	c := r.newNode("c", io.Discard)
	c.cut.cut.Store(true)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, testFailover, "c settled without Redis", c.Settled)
}
