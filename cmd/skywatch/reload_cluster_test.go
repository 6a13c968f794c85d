package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/hardware"
)

// A cluster node reloads its own file: a camera added with mode always is
// claimed and pulled by the node (the only one, so its owner), the answer
// names the node, and a changed cluster key needs a restart.
func TestClusterNodeReload(t *testing.T) {
	s := serveClusterNode(t, "sky-r")
	cam := hardware.NewCamera(hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/live", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	cfg, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(cfg), "failover: 2s", "failover: 3s", 1) +
		fmt.Sprintf("cameras:\n  - {id: yard, url: %q, mode: always, transport: tcp}\n", cam.URL("/live"))
	if err := os.WriteFile(s.path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := consoleLoginAs(t, s.base, "admin", "serve-secret")
	code, body := admin.post(t, "/api/admin/reload")
	var res struct {
		Node    string `json:"node"`
		Changes struct {
			Cameras struct {
				Added []string `json:"added"`
			} `json:"cameras"`
		} `json:"changes"`
		NeedsRestart []string `json:"needs_restart"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusOK || res.Node != "sky-r" ||
		!slices.Equal(res.Changes.Cameras.Added, []string{"yard"}) || !slices.Equal(res.NeedsRestart, []string{"cluster.failover"}) {
		t.Fatalf("reload: %d %s", code, body)
	}
	waitUntil(t, "the node to pull the added camera", func() bool { return cam.Sessions("/live") == 1 })
	if code, body := admin.get(t, "/api/cameras/yard"); code != http.StatusOK || !strings.Contains(body, `"node": "sky-r"`) {
		t.Errorf("the added camera: %d %s", code, body)
	}
	s.stop(t)
}
