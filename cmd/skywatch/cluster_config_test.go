package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/cluster"
)

// The cluster: section: defaults, its keys checked, and refused without
// the Redis store or an external broker, each with the key to set.
func TestClusterKeys(t *testing.T) {
	const shared = "store:\n  redis_url: redis://127.0.0.1:6379/0\nmqtt:\n  url: tcp://127.0.0.1:1883\n"
	const node = "cluster:\n  node: sky-a\n  http_url: http://10.0.0.11:8080\n"
	for _, tc := range []struct {
		name, yaml string
		want       string // an error's text, "" when valid
		check      func(t *testing.T, c *cluster.Config)
	}{
		{"no cluster", shared, "", func(t *testing.T, c *cluster.Config) {
			if c != nil {
				t.Fatalf("cluster settings %+v without a cluster: section", c)
			}
		}},
		{"defaults", shared + node + "webrtc:\n  public_ips: [203.0.113.5]\n", "", func(t *testing.T, c *cluster.Config) {
			if c.Node != "sky-a" || c.Failover != 10*time.Second || !slices.Equal(c.WebRTCIPs, []string{"203.0.113.5"}) {
				t.Fatalf("cluster settings %+v", c)
			}
		}},
		{"all keys", shared + node + "  webrtc_ips: [10.0.0.11]\n  failover: 4s\nwebrtc:\n  public_ips: [203.0.113.5]\n", "", func(t *testing.T, c *cluster.Config) {
			if c.Failover != 4*time.Second || !slices.Equal(c.WebRTCIPs, []string{"10.0.0.11"}) {
				t.Fatalf("cluster settings %+v", c)
			}
		}},
		{"no redis", "mqtt:\n  url: tcp://127.0.0.1:1883\n" + node, "store.redis_url: required with cluster:", nil},
		{"embedded broker", "store:\n  redis_url: redis://127.0.0.1:6379/0\n" + node, "mqtt.url: required with cluster:", nil},
		{"bad node", shared + "cluster:\n  node: Sky_A\n  http_url: http://10.0.0.11:8080\n", "cluster.node: ", nil},
		{"no http_url", shared + "cluster:\n  node: sky-a\n", "cluster.http_url: required", nil},
		{"short failover", shared + node + "  failover: 500ms\n", "cluster.failover: ", nil},
		{"bad webrtc_ips", shared + node + "  webrtc_ips: [sky-a.local]\n", "cluster.webrtc_ips[0]: ", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, err := parseConfig([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			fc.Users = []accounts.UserConfig{{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: testPasswordHash(t, "x")}}
			s, err := buildSettings(fc)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			case tc.want == "":
				tc.check(t, s.cluster)
			}
		})
	}
	if _, err := parseConfig([]byte(node + "  nodes: 3\n")); err == nil {
		t.Fatal("an unknown key under cluster: was accepted")
	}
}

// check and serve refuse a cluster: section without the Redis store and an
// external broker, naming both keys; nothing is started.
func TestCheckAndServeRefuseClusterWithoutRedis(t *testing.T) {
	dir := t.TempDir()
	path := writeServeConfig(t, dir, "cluster:\n  node: sky-a\n  http_url: http://127.0.0.1:8080\n")
	for _, cmd := range []string{"check", "serve"} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{cmd, "-config", path}, &out, &errOut)
		if code != 1 {
			t.Fatalf("%s: exit %d, want 1\n%s%s", cmd, code, out.String(), errOut.String())
		}
		for _, want := range []string{"is not valid", "store.redis_url: required with cluster:", "mqtt.url: required with cluster:"} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, want, errOut.String())
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "alarms.db")); !os.IsNotExist(err) {
		t.Fatalf("serve opened the store: %v", err)
	}
}
