package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/internal/testredis"
)

// apiCamera is the part of GET /api/cameras these tests read.
type apiCamera struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Node        string  `json:"node"`
	FrameRate   float64 `json:"frame_rate"`
	BitrateKbps float64 `json:"bitrate_kbps"`
	Tracks      []struct {
		Codec string `json:"codec"`
	} `json:"tracks"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

func camerasOf(t *testing.T, n *videoNode) map[string]apiCamera {
	t.Helper()
	var list []apiCamera
	getJSON(t, n.base+"/api/cameras", &list)
	out := map[string]apiCamera{}
	for _, c := range list {
		out[c.ID] = c
	}
	return out
}

// Two nodes; an always-on camera owned (and pulled) by a, an on-demand one
// nobody pulls. b's manager has the always-on camera offline (b does not
// pull it), yet b's API shows it online with a's state and names a; the
// on-demand camera is offline on both, with no node. When a dies, b pulls
// the camera and shows its own state.
func TestClusterCameraStatesFromOwner(t *testing.T) {
	redisURL := testredis.URL(t)
	prefix := testredis.Prefix(t, redisURL, "skywatch-test-camstate-")
	nodes := []string{"a", "b"}
	idle := cameraFor(t, "a", nodes, "door-")
	always := cameraFor(t, "a", nodes, "yard-")

	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0",
		Paths: []hardware.CameraPath{{Path: "/door", Clip: hardware.ClipGOP1s}, {Path: "/yard", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	cams := []ingest.CameraConfig{
		{ID: idle, URL: cam.URL("/door")},
		{ID: always, URL: cam.URL("/yard"), Mode: ingest.ModeAlways},
	}
	var logs syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	a := startVideoNode(t, "a", redisURL, prefix, cams, &logs)
	b := startVideoNode(t, "b", redisURL, prefix, cams, &logs)

	waitUntil(t, "a's API shows the always-on camera online", func() bool {
		c := camerasOf(t, a)[always]
		return c.Status == string(ingest.StatusOnline) && c.Node == "a"
	})
	waitUntil(t, "b's API shows the always-on camera online on a", func() bool {
		c := camerasOf(t, b)[always]
		return c.Status == string(ingest.StatusOnline) && c.Node == "a" && len(c.Tracks) > 0
	})
	if st, _ := b.mgr.Camera(always); st.Status != ingest.StatusOffline {
		t.Fatalf("b's own manager pulls the camera: %s", st.Status)
	}
	var one apiCamera
	getJSON(t, b.base+"/api/cameras/"+always, &one)
	if one.Status != string(ingest.StatusOnline) || one.Node != "a" {
		t.Fatalf("b's GET /api/cameras/%s: %+v, want online on a", always, one)
	}
	for _, n := range []*videoNode{a, b} {
		if c := camerasOf(t, n)[idle]; c.Status != string(ingest.StatusOffline) || c.Node != "" {
			t.Fatalf("node %s shows the camera nobody pulls as %+v, want offline on no node", n.id, c)
		}
	}

	a.die(t)
	waitUntil(t, "b's API shows the always-on camera online on b", func() bool {
		c := camerasOf(t, b)[always]
		return c.Status == string(ingest.StatusOnline) && c.Node == "b"
	})
}

// An incident's camera is seen by every node's warmer; only its owner
// warms it: one node holds it, the camera sees one session, and the API of
// both nodes shows it held on that node.
func TestClusterWarmerOnOwnerOnly(t *testing.T) {
	redisURL := testredis.URL(t)
	prefix := testredis.Prefix(t, redisURL, "skywatch-test-camwarm-")
	nodes := []string{"a", "b"}
	door := cameraFor(t, "b", nodes, "door-")

	cam := hardware.NewCamera(hardware.CameraConfig{Address: "127.0.0.1:0",
		Paths: []hardware.CameraPath{{Path: "/door", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	cams := []ingest.CameraConfig{{ID: door, URL: cam.URL("/door")}}
	var logs syncBuffer
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	a := startVideoNode(t, "a", redisURL, prefix, cams, &logs)
	b := startVideoNode(t, "b", redisURL, prefix, cams, &logs)
	waitUntil(t, "both nodes see each other", func() bool { return len(a.c.Live()) == 2 && len(b.c.Live()) == 2 })

	now := time.Now()
	inc := &alarms.Incident{ID: "i1", Kind: alarms.KindResponse, State: alarms.StateNew, Created: now,
		Cameras: []alarms.IncidentCamera{{ID: door}}}
	change := alarms.IncidentChange{Incident: inc, Entry: alarms.TimelineEntry{Action: "opened"}}
	quiet := slog.New(slog.DiscardHandler)
	// a first: the node that is not the owner must not take the camera.
	for _, n := range []*videoNode{a, b} {
		newIncidentWarmer(newOwnedHolder(n.mgr, n.c), time.Minute, quiet).take(change, now)
	}
	held := func(n *videoNode) bool {
		st, err := n.mgr.Camera(door)
		if err != nil {
			t.Fatal(err)
		}
		return st.Held.After(time.Now())
	}
	if held(a) || !held(b) {
		t.Fatalf("held on a %v, on b %v; want only on b, the owner", held(a), held(b))
	}
	waitUntil(t, "b pulls the warmed camera", func() bool {
		st, _ := b.mgr.Camera(door)
		return st.Status == ingest.StatusOnline
	})
	if n := cam.Sessions("/door"); n != 1 {
		t.Fatalf("camera sessions: %d, want 1", n)
	}
	waitUntil(t, "a's API shows the warmed camera online on b", func() bool {
		c := camerasOf(t, a)[door]
		return c.Status == string(ingest.StatusOnline) && c.Node == "b"
	})
}
