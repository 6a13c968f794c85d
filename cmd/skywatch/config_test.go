package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		"devices[0].cameras[0]",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("check output lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "secret-pass") {
		t.Errorf("check output shows a password:\n%s", msg)
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
