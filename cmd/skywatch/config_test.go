package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

func TestExampleConfigIsValid(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"check", "-config", "../../skywatch.example.yaml"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("check of the example config: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "is valid: 3 cameras") {
		t.Fatalf("check output = %q", out.String())
	}
}

func TestCheckPrintsEveryProblemWithItsKey(t *testing.T) {
	cfg := `
log:
  level: loud
http:
  address: "not-an-address"
ingest:
  warm_on_alarm: -1s
cameras:
  - id: cam1
    url: http://192.0.2.1/stream
  - id: cam1
    vendor: axis
    host: 192.0.2.2
  - id: cam3
    vendor: hikvision
    host: 192.0.2.3
    stream: tertiary
  - id: cam4
    url: rtsp://admin:secret-pass@192.0.2.4/live
  - id: cam5
    url: rtsp://192.0.2.5/live
    transport: carrier-pigeon
    area: nowhere
  - id: cam6
    url: rtsp://192.0.2.6/main
    sub_url: http://192.0.2.6/sub
  - id: cam7
    vendor: dahua
    host: 192.0.2.7
    sub_url: rtsp://192.0.2.7/sub
areas:
  - id: county
    kind: county
devices:
  - id: panel-1
    password: x
    area: county
    cameras: [no-such-camera]
`
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check", "-config", path}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, out.String())
	}
	msg := errOut.String()
	for _, want := range []string{
		"log.level",
		"http.address",
		"cameras[0].url",
		"cameras[1].id",
		"cameras[1].vendor",
		"cameras[2].stream",
		"cameras[3].url",
		"cameras[4].transport",
		"cameras[4].area",
		"cameras[5].sub_url: scheme",
		"cameras[6].sub_url: only with url",
		"devices[0].cameras[0]",
		"ingest.warm_on_alarm",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("check output lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "secret-pass") {
		t.Errorf("check output shows a password:\n%s", msg)
	}
}

func TestCameraSubStreams(t *testing.T) {
	cfg, err := parseConfig([]byte(`
cameras:
  - id: by-url
    url: rtsp://192.0.2.1/main
    sub_url: rtsp://192.0.2.1/sub
  - id: main-only
    url: rtsp://192.0.2.2/main
  - id: hik
    vendor: hikvision
    host: 192.0.2.3
    channel: 2
  - id: dahua
    vendor: Dahua
    host: 192.0.2.4
  - id: uniview
    vendor: uniview
    host: 192.0.2.5
    port: 8554
  - id: dahua-sub-only
    vendor: dahua
    host: 192.0.2.6
    stream: sub
  - id: generic
    vendor: generic
    host: 192.0.2.7
    path: /live/ch0
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []accounts.UserConfig{{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: testPasswordHash(t, "x")}}
	s, err := buildSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"by-url":         {"rtsp://192.0.2.1/main", "rtsp://192.0.2.1/sub"},
		"main-only":      {"rtsp://192.0.2.2/main", ""},
		"hik":            {"rtsp://192.0.2.3:554/Streaming/Channels/201", "rtsp://192.0.2.3:554/Streaming/Channels/202"},
		"dahua":          {"rtsp://192.0.2.4:554/cam/realmonitor?channel=1&subtype=0", "rtsp://192.0.2.4:554/cam/realmonitor?channel=1&subtype=1"},
		"uniview":        {"rtsp://192.0.2.5:8554/unicast/c1/s0/live", "rtsp://192.0.2.5:8554/unicast/c1/s1/live"},
		"dahua-sub-only": {"rtsp://192.0.2.6:554/cam/realmonitor?channel=1&subtype=1", ""},
		"generic":        {"rtsp://192.0.2.7:554/live/ch0", ""},
	}
	if len(s.ingest.Cameras) != len(want) {
		t.Fatalf("%d cameras, want %d", len(s.ingest.Cameras), len(want))
	}
	for _, cc := range s.ingest.Cameras {
		if got := [2]string{cc.URL, cc.SubURL}; got != want[cc.ID] {
			t.Errorf("%s: url %q, sub_url %q; want %q", cc.ID, cc.URL, cc.SubURL, want[cc.ID])
		}
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	_, err := parseConfig([]byte("cameras:\n  - id: a\n    pasword: x\n"))
	if err == nil || !strings.Contains(err.Error(), "pasword") {
		t.Fatalf("err = %v, want an error naming the unknown key", err)
	}
}

func TestEnvironmentOverridesSecrets(t *testing.T) {
	cfg, err := parseConfig([]byte("cameras:\n  - id: gate-north.1\n    username: u\n    password: from-file\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SKYWATCH_CAMERA_GATE_NORTH_1_PASSWORD": "from-env"}
	cfg.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if got := cfg.Cameras[0].Password; got != "from-env" {
		t.Fatalf("password = %q, want the environment's", got)
	}
	if got := cfg.Cameras[0].Username; got != "u" {
		t.Fatalf("username = %q, want the file's", got)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "unknown command") {
		t.Fatalf("stderr = %q", errOut.String())
	}
}

func TestWarmOnAlarm(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"", defaultWarmOnAlarm},
		{"ingest:\n  warm_on_alarm: 45s\n", 45 * time.Second},
		{"ingest:\n  warm_on_alarm: 0s\n", 0},
	} {
		cfg, err := parseConfig([]byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Users = []accounts.UserConfig{{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: testPasswordHash(t, "x")}}
		s, err := buildSettings(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.warm != tc.want {
			t.Errorf("%q: warm-up %v, want %v", tc.yaml, s.warm, tc.want)
		}
	}
}

// The login, audit budget and video session limits reach the viewer's
// config, and a bad one is reported with its key.
func TestLoginAndVideoLimitKeys(t *testing.T) {
	cfg, err := parseConfig([]byte(`
http:
  login_failures: 7
  login_lockout: 10m
  audit_unauthenticated_per_address: 3
  audit_unauthenticated_total: 30
webrtc:
  sessions_per_user: 20
  sessions_per_address: 40
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []accounts.UserConfig{{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: testPasswordHash(t, "x")}}
	s, err := buildSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := s.viewer
	if v.LoginFailures != 7 || v.LoginLockout != 10*time.Minute || v.AuditUnauthPerAddr != 3 || v.AuditUnauthTotal != 30 ||
		v.VideoSessionsPerUser != 20 || v.VideoSessionsPerAddr != 40 {
		t.Errorf("viewer config %+v", v)
	}
	cfg.WebRTC.SessionsPerUser = -1
	if _, err := buildSettings(cfg); err == nil || !strings.Contains(err.Error(), "webrtc.sessions_per_user") {
		t.Errorf("negative sessions_per_user: %v", err)
	}
}

// The tokens: section reaches the viewer as hashed tokens with their
// expiry; the token keys are checked against the areas and cameras, and
// the token itself in place of its SHA-256 is refused.
func TestTokenKeys(t *testing.T) {
	tok, sum := accounts.NewToken()
	cfg, err := parseConfig([]byte(`
http:
  max_tokens: 2
  token_audit_interval: 5m
areas:
  - id: c
    name: County
    kind: county
cameras:
  - id: gate
    url: rtsp://192.0.2.1/live
    area: c
tokens:
  - name: wall-1
    role: viewer
    area: c
    cameras: [gate]
    expires: 2027-01-01T00:00:00+08:00
    token_sha256: ` + sum + `
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Users = []accounts.UserConfig{{Username: "admin", Role: accounts.RoleAdmin, PasswordHash: testPasswordHash(t, "x")}}
	s, err := buildSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.tokens) != 1 || s.tokens[0].SHA256 != sum || !s.tokens[0].Configured ||
		!s.tokens[0].Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.FixedZone("", 8*3600))) ||
		s.viewer.MaxTokens != 2 || s.viewer.TokenAuditInterval != 5*time.Minute {
		t.Errorf("tokens %+v, viewer %+v", s.tokens, s.viewer)
	}
	cfg.Tokens[0].TokenSHA256 = tok
	cfg.Tokens[0].Cameras = []string{"moon"}
	cfg.Tokens = append(cfg.Tokens, cfg.Tokens[0], cfg.Tokens[0])
	_, err = buildSettings(cfg)
	for _, want := range []string{"tokens[0].token_sha256: this is a token", "tokens[0].cameras[0]: unknown camera \"moon\"",
		"tokens[1].name: duplicate", "tokens: 3 tokens, more than http.max_tokens (2)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}
