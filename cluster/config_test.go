package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Node: "sky-a", HTTPURL: "http://10.0.0.11:8080", WebRTCIPs: []string{"10.0.0.11"}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" when valid
	}{
		{"good", func(*Config) {}, ""},
		{"https and defaults", func(c *Config) { c.HTTPURL = "https://sky-a.example:8443"; c.WebRTCIPs = nil }, ""},
		{"min failover", func(c *Config) { c.Failover = 2 * time.Second }, ""},
		{"no node", func(c *Config) { c.Node = "" }, "cluster.node: required"},
		{"upper-case node", func(c *Config) { c.Node = "Sky-A" }, "cluster.node: "},
		{"node starts with -", func(c *Config) { c.Node = "-a" }, "cluster.node: "},
		{"node too long", func(c *Config) { c.Node = strings.Repeat("a", 33) }, "cluster.node: "},
		{"node with a colon", func(c *Config) { c.Node = "a:b" }, "cluster.node: "},
		{"no http_url", func(c *Config) { c.HTTPURL = "" }, "cluster.http_url: required"},
		{"http_url scheme", func(c *Config) { c.HTTPURL = "tcp://10.0.0.11:8080" }, "cluster.http_url: "},
		{"http_url without host", func(c *Config) { c.HTTPURL = "http://" }, "cluster.http_url: "},
		{"http_url with a path", func(c *Config) { c.HTTPURL = "http://10.0.0.11:8080/api" }, "cluster.http_url: "},
		{"http_url with a password", func(c *Config) { c.HTTPURL = "http://u:p@10.0.0.11:8080" }, "cluster.http_url: "},
		{"webrtc_ips not an IP", func(c *Config) { c.WebRTCIPs = []string{"10.0.0.11", "sky-a"} }, "cluster.webrtc_ips[1]: "},
		{"too many webrtc_ips", func(c *Config) { c.WebRTCIPs = make([]string, MaxWebRTCIPs+1) }, "cluster.webrtc_ips: "},
		{"failover too short", func(c *Config) { c.Failover = time.Second }, "cluster.failover: "},
		{"failover negative", func(c *Config) { c.Failover = -time.Second }, "cluster.failover: "},
		{"failover too long", func(c *Config) { c.Failover = time.Hour }, "cluster.failover: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.WebRTCIPs = append([]string(nil), good.WebRTCIPs...)
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	c := good
	c.SetDefaults()
	if c.Failover != DefaultFailover || c.RenewInterval() != DefaultFailover/4 {
		t.Fatalf("defaults: failover %s, renew %s", c.Failover, c.RenewInterval())
	}
	if _, err := New(Config{Node: "BAD"}, "redis://127.0.0.1:6379/0", "p:", 0, nil); err == nil {
		t.Fatal("New accepted a bad config")
	}
	if _, err := New(good, "http://127.0.0.1:6379", "p:", 0, nil); err == nil || !strings.Contains(err.Error(), "store.redis_url") {
		t.Fatalf("New with a bad Redis URL: %v", err)
	}
}
