package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/internal/testredis"
)

// Three nodes started one after the other share eight always-on cameras.
// The first node takes them all; as each node joins, the holder hands
// over the cameras whose rendezvous winner is now the new node, except
// one that a WHEP viewer on the first node watches: it stays. At the end
// the cameras are spread by rendezvous, each camera moved at most once per
// node that joined, and the camera never saw two sessions of one stream.
func TestClusterVideoBalance(t *testing.T) {
	redisURL := testredis.URL(t)
	prefix := testredis.Prefix(t, redisURL, "skywatch-test-balance-")
	all := []string{"a", "b", "c"}
	var ids, paths []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("cam-%d", i))
		paths = append(paths, fmt.Sprintf("/cam%d", i))
	}
	// The watched camera: one that the rendezvous rule gives to another
	// node than a once all three are up.
	watched := ""
	for _, id := range ids {
		if cluster.RendezvousOwner(id, all) != "a" {
			watched = id
			break
		}
	}
	if watched == "" {
		t.Fatal("every camera goes to a")
	}

	var camPaths []hardware.CameraPath
	for _, p := range paths {
		camPaths = append(camPaths, hardware.CameraPath{Path: p, Clip: hardware.ClipGOP1s})
	}
	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0", Username: "admin", Password: "cam-secret-1", Paths: camPaths})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	var cams []ingest.CameraConfig
	for i, id := range ids {
		cams = append(cams, ingest.CameraConfig{ID: id, URL: cam.URL(paths[i]), Username: "admin", Password: "cam-secret-1", Mode: ingest.ModeAlways})
	}
	var logs syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()

	var mu sync.Mutex
	var nodes []*videoNode
	// pulledBy: per camera, the node it is online on now ("" when none).
	pulledBy := func(id string) string {
		mu.Lock()
		defer mu.Unlock()
		var by []string
		for _, n := range nodes {
			st, err := n.mgr.Camera(id)
			if err == nil && st.Status == ingest.StatusOnline {
				by = append(by, n.id)
			}
		}
		return strings.Join(by, "+")
	}

	// Sampled all along: never two sessions of one stream at the camera,
	// and each camera's moves from one node to another.
	most := 0
	moves := make(map[string]int)
	last := make(map[string]string)
	// The longest time a camera that had a node was pulled by none (the
	// gap in its recording a handover costs).
	gone := make(map[string]time.Time)
	var gap time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for i, p := range paths {
				if n := cam.Sessions(p); n > most {
					most = n
				}
				by := pulledBy(ids[i])
				if by == "" && last[ids[i]] != "" && gone[ids[i]].IsZero() {
					gone[ids[i]] = time.Now()
				}
				if by != "" && !strings.Contains(by, "+") {
					if prev := last[ids[i]]; prev != "" && prev != by {
						moves[ids[i]]++
					}
					last[ids[i]] = by
					if at := gone[ids[i]]; !at.IsZero() {
						gap = max(gap, time.Since(at))
						gone[ids[i]] = time.Time{}
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	stopSampling := func() {
		close(stop)
		wg.Wait()
	}

	spread := func() map[string]int {
		out := make(map[string]int)
		for _, id := range ids {
			out[pulledBy(id)]++
		}
		return out
	}
	settled := func(live []string, keep map[string]string) func() bool {
		return func() bool {
			for _, id := range ids {
				want := cluster.RendezvousOwner(id, live)
				if k, ok := keep[id]; ok {
					want = k
				}
				if pulledBy(id) != want {
					return false
				}
			}
			return true
		}
	}

	a := startVideoNode(t, "a", redisURL, prefix, cams, &logs)
	mu.Lock()
	nodes = append(nodes, a)
	mu.Unlock()
	waitUntil(t, "a pulls every camera", settled([]string{"a"}, nil))
	t.Logf("spread with a alone: %v", spread())

	peer := newTokenPeer(t)
	code, answer := peer.offerLocation(t, a.base+"/whep/"+watched)
	if code != http.StatusCreated {
		t.Fatalf("offer to a: %d %s", code, answer.body)
	}
	if !peer.keyframe(t) {
		t.Fatal("no keyframe from a")
	}

	keep := map[string]string{watched: "a"}
	for i, id := range all[1:] {
		n := startVideoNode(t, id, redisURL, prefix, cams, &logs)
		mu.Lock()
		nodes = append(nodes, n)
		mu.Unlock()
		live := all[:i+2]
		waitUntil(t, fmt.Sprintf("the cameras spread over %v", live), settled(live, keep))
		t.Logf("spread with %v: %v (watched %s stays on a)", live, spread(), watched)
	}
	// A further pass of every node's claim loop changes nothing.
	time.Sleep(2 * videoFailover)
	if !settled(all, keep)() {
		t.Errorf("the cameras moved again: %v", spread())
	}
	stopSampling()

	if most > 1 {
		t.Errorf("the camera saw %d sessions of one stream at once", most)
	}
	for _, id := range ids {
		if moves[id] > len(all)-1 {
			t.Errorf("camera %s moved %d times for %d joins", id, moves[id], len(all)-1)
		}
	}
	if moves[watched] != 0 {
		t.Errorf("the watched camera %s moved %d times", watched, moves[watched])
	}
	moved := make([]string, 0, len(moves))
	for id, n := range moves {
		moved = append(moved, fmt.Sprintf("%s:%d", id, n))
	}
	slices.Sort(moved)
	t.Logf("moves: %v; longest time a camera was pulled by no node: %v (renew interval %v)", moved, gap.Round(time.Millisecond), videoFailover/4)
}
