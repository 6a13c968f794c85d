package viewer

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" means valid
	}{
		{"defaults", DefaultConfig(), ""},
		{"zero value takes defaults", Config{}, ""},
		{"tcp off", Config{TCPAddress: ""}, ""},
		{"public ips", Config{PublicIPs: []string{"203.0.113.7", "2001:db8::1"}}, ""},
		{"http host name", Config{HTTPAddress: "localhost:8080"}, ""},
		{"http without port", Config{HTTPAddress: "127.0.0.1"}, "http.address:"},
		{"udp host name", Config{UDPAddress: "example.org:8189"}, "webrtc.udp_address:"},
		{"udp bad port", Config{UDPAddress: ":99999"}, "webrtc.udp_address:"},
		{"tcp garbage", Config{TCPAddress: "nope"}, "webrtc.tcp_address:"},
		{"bad public ip", Config{PublicIPs: []string{"203.0.113.7", "gateway"}}, "webrtc.public_ips[1]:"},
		{"negative login failures", Config{LoginFailures: -1}, "http.login_failures:"},
		{"short lockout", Config{LoginLockout: time.Millisecond}, "http.login_lockout:"},
		{"negative audit budget", Config{AuditUnauthPerAddr: -1}, "http.audit_unauthenticated_per_address:"},
		{"negative audit total", Config{AuditUnauthTotal: -5}, "http.audit_unauthenticated_total:"},
		{"negative video per user", Config{VideoSessionsPerUser: -1}, "webrtc.sessions_per_user:"},
		{"negative video per address", Config{VideoSessionsPerAddr: -1}, "webrtc.sessions_per_address:"},
		{"negative tcp connections", Config{TCPConnections: -1}, "webrtc.tcp_connections:"},
		{"negative tcp per address", Config{TCPConnectionsPerAddr: -2}, "webrtc.tcp_connections_per_address:"},
		{"short tcp handshake", Config{TCPHandshakeTimeout: time.Millisecond}, "webrtc.tcp_handshake_timeout:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one starting with %q", err, tt.wantErr)
			}
		})
	}
}

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dial rtsp://admin:pw@10.0.0.1:554/ch1: refused", "dial rtsp://10.0.0.1:554/ch1: refused"},
		{`"rtsps://u:p@host" and http://x:y@z/`, `"rtsps://host" and http://z/`},
		{"rtsp://a:b@c@host/x", "rtsp://host/x"},
		{"rtsp://host/path@thing", "rtsp://host/path@thing"},
		{"no url here", "no url here"},
		{"trailing ://", "trailing ://"},
	}
	for _, tt := range tests {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
