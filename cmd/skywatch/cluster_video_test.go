package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/internal/testproxy"
	"github.com/skywatch/skywatch/internal/testredis"
	"github.com/skywatch/skywatch/viewer"
)

// videoNode is one node of a two-node cluster in one process: its camera
// manager, web server and cluster membership, which reaches Redis through
// a proxy that the test can cut (the node's death for the others).
type videoNode struct {
	id    string
	mgr   *ingest.Manager
	srv   *viewer.Server
	c     *cluster.Cluster
	redis *testproxy.Proxy
	base  string
}

const videoFailover = 2 * time.Second

func startVideoNode(t *testing.T, id, redisURL, prefix string, cams []ingest.CameraConfig, logs *syncBuffer) *videoNode {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id)
	cfg := ingest.Config{Cameras: cams, Linger: time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := &videoNode{id: id, mgr: ingest.NewManager(cfg, logger.With("component", "ingest"))}
	t.Cleanup(n.mgr.Close)

	var pinned []string
	for _, c := range cams {
		if c.Mode == ingest.ModeAlways {
			pinned = append(pinned, c.ID)
		}
	}
	video := newClusterVideo(nil, pinned)
	// The API shows each camera as the node that pulls it sees it.
	states := &clusterCameras{CameraSource: watchCameras(video, viewer.Adapt[*ingest.Reader](n.mgr)), logger: logger}
	srv, err := viewer.New(viewer.Config{
		HTTPAddress: "127.0.0.1:0", UDPAddress: "127.0.0.1:0", TCPAddress: "127.0.0.1:0",
	}, viewer.Deps{
		Cameras:  states,
		Registry: prometheus.NewRegistry(),
		Peers:    video,
	}, logger.With("component", "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	t.Cleanup(func() { _ = srv.Close() })
	n.base = "http://" + srv.Addr().String()

	// The node's Redis connection goes through a proxy: stopping it is the
	// node's death as far as the cluster can tell.
	target := strings.TrimPrefix(strings.TrimSuffix(redisURL, "/0"), "redis://")
	n.redis = testproxy.Start(t, "127.0.0.1:0", target, nil)
	c, err := cluster.New(cluster.Config{Node: id, HTTPURL: n.base, Failover: videoFailover},
		"redis://"+n.redis.Addr()+"/0", prefix, time.Second, logger.With("component", "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	n.c = c
	t.Cleanup(func() { _ = c.Close() })
	video.c = c
	video.attach(n.mgr)
	states.c = c
	c.PublishCameraStates(func(cams []string) map[string][]byte { return encodeCameraStates(n.mgr, cams, logger) })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.mgr.Start()
	return n
}

// die takes the node away: its web server stops (its viewers' media and
// signalling with it) and its cluster membership can no longer reach
// Redis. Its camera manager stays, as in a partition: it must stop pulling
// by itself when its camera leases cannot be renewed.
func (n *videoNode) die(t *testing.T) {
	start := time.Now()
	n.redis.Stop()
	_ = n.srv.Close()
	t.Logf("node %s died in %v", n.id, time.Since(start).Round(time.Millisecond))
}

// cameraFor returns an id among candidates that the rendezvous rule gives
// to node among nodes.
func cameraFor(t *testing.T, node string, nodes []string, prefix string) string {
	for i := range 100 {
		id := prefix + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		if cluster.RendezvousOwner(id, nodes) == node {
			return id
		}
	}
	t.Fatal("no camera id for", node)
	return ""
}

// Two nodes on one Redis prefix, one camera on demand and one always on,
// both owned by node a by the rendezvous rule. A WHEP offer to node b is
// proxied to a, which pulls the camera and holds the session; the camera
// sees one RTSP session per stream however many nodes there are. Then a
// dies: b pulls the always-on camera, and a player that asks b again (as
// the console does) plays within the failover time and a margin, from
// b's own pull; a stops pulling by itself once its leases cannot be
// renewed, so that the camera never sees two sessions of one stream.
func TestClusterVideoFailover(t *testing.T) {
	redisURL := testredis.URL(t)
	prefix := testredis.Prefix(t, redisURL, "skywatch-test-video-")
	nodes := []string{"a", "b"}
	onDemand := cameraFor(t, "a", nodes, "door-")
	always := cameraFor(t, "a", nodes, "yard-")

	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0", Username: "admin", Password: "cam-secret-1",
		Paths: []hardware.CameraPath{{Path: "/door", Clip: hardware.ClipGOP1s}, {Path: "/yard", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	cams := []ingest.CameraConfig{
		{ID: onDemand, URL: cam.URL("/door"), Username: "admin", Password: "cam-secret-1"},
		{ID: always, URL: cam.URL("/yard"), Username: "admin", Password: "cam-secret-1", Mode: ingest.ModeAlways},
	}
	var logs syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	a := startVideoNode(t, "a", redisURL, prefix, cams, &logs)
	b := startVideoNode(t, "b", redisURL, prefix, cams, &logs)

	// Never two RTSP sessions of one stream at the camera, sampled all
	// along.
	var most atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			for _, p := range []string{"/door", "/yard"} {
				if n := int32(cam.Sessions(p)); n > most.Load() {
					most.Store(n)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
		if n := most.Load(); n > 1 {
			t.Errorf("the camera saw %d sessions of one stream at once", n)
		}
	}()

	status := func(n *videoNode, id string) ingest.Status {
		st, err := n.mgr.Camera(id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}
	waitUntil(t, "a pulls the always-on camera", func() bool { return status(a, always) == ingest.StatusOnline })

	peer := newTokenPeer(t)
	code, answer := peer.offerLocation(t, b.base+"/whep/"+onDemand)
	if code != http.StatusCreated {
		t.Fatalf("offer to b: %d %s", code, answer.body)
	}
	if !strings.Contains(answer.location, "/a.") {
		t.Fatalf("session %q is not a's", answer.location)
	}
	if !peer.keyframe(t) {
		t.Fatal("no keyframe through the non-owner")
	}
	if status(a, onDemand) != ingest.StatusOnline || status(b, onDemand) != ingest.StatusOffline {
		t.Fatalf("on-demand camera: a %s, b %s; want a online, b offline", status(a, onDemand), status(b, onDemand))
	}
	if status(b, always) != ingest.StatusOffline {
		t.Fatalf("b pulls the always-on camera too: %s", status(b, always))
	}
	if n := cam.Sessions("/door") + cam.Sessions("/yard"); n != 2 {
		t.Fatalf("camera sessions: %d, want 2 (one per stream)", n)
	}

	died := time.Now()
	a.die(t)
	waitUntil(t, "b pulls the always-on camera", func() bool { return status(b, always) == ingest.StatusOnline })
	t.Logf("always-on camera pulled by b %v after a died (failover %v)", time.Since(died).Round(time.Millisecond), videoFailover)

	// The player asks b again, with backoff, as the console does.
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		p := newTokenPeer(t)
		code, answer := p.offerLocation(t, b.base+"/whep/"+onDemand)
		if code == http.StatusCreated {
			if !strings.Contains(answer.location, "/b.") {
				t.Fatalf("session %q after a died is not b's", answer.location)
			}
			if !p.keyframe(t) {
				t.Fatal("no keyframe from b")
			}
			took := time.Since(died)
			t.Logf("playing again through b %v after a died, attempt %d", took.Round(time.Millisecond), attempt)
			if limit := videoFailover + 10*time.Second; took > limit {
				t.Errorf("playing again took %v, more than the failover time and a margin (%v)", took, limit)
			}
			break
		}
		if time.Since(died) > 30*time.Second {
			t.Fatalf("b still refuses after 30 s: %d %s", code, answer.body)
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
	waitUntil(t, "a stops pulling", func() bool {
		return status(a, onDemand) == ingest.StatusOffline && status(a, always) == ingest.StatusOffline
	})
}

// whepAnswer is what an offer got back.
type whepAnswer struct{ body, location string }

// offerLocation is offer without a token, keeping the Location too.
func (p *tokenPeer) offerLocation(t *testing.T, url string) (int, whepAnswer) {
	t.Helper()
	var loc string
	code, body := p.offerWith(t, url, "", func(r *http.Response) { loc = r.Header.Get("Location") })
	return code, whepAnswer{body: body, location: loc}
}

// waitUntil polls cond until it holds, failing after 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
