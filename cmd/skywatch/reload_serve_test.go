package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A file that turns recording on for a server that started without
// recordings.path is applied but for the recording, which needs a restart:
// the answer says so, and nothing fails part way. Its log.level applies at
// once.
func TestReloadRecordingNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	camera := "\ncameras:\n  - {id: gate, url: \"rtsp://127.0.0.1:1/live\"}\n"
	path := writeServeConfig(t, dir, camera)
	logs := serveInBackground(t, path)
	base := waitForServeAddr(t, logs)
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(cfg), camera,
		"\ncameras:\n  - {id: gate, url: \"rtsp://127.0.0.1:1/live\", record: always}\n  - {id: yard, url: \"rtsp://127.0.0.1:1/yard\"}\n", 1) +
		"recordings:\n  path: " + filepath.Join(dir, "rec") + "\nlog:\n  level: error\n"
	if err := os.WriteFile(path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := consoleLoginAs(t, base, "admin", "serve-secret")
	code, body := admin.post(t, "/api/admin/reload")
	var res struct {
		Result       string   `json:"result"`
		NeedsRestart []string `json:"needs_restart"`
		Changes      struct {
			Cameras struct {
				Added []string `json:"added"`
			} `json:"cameras"`
			Recording *struct{} `json:"recording"`
			LogLevel  string    `json:"log_level"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusOK || res.Result != "applied" ||
		!slices.Equal(res.NeedsRestart, []string{"recordings.path"}) || !slices.Equal(res.Changes.Cameras.Added, []string{"yard"}) ||
		res.Changes.Recording != nil || res.Changes.LogLevel != "ERROR" {
		t.Fatalf("reload: %d %s\n%s", code, body, logs.String())
	}
	if code, body := admin.get(t, "/api/cameras/gate"); code != http.StatusOK || strings.Contains(body, `"recording"`) {
		t.Errorf("gate records after a reload that needs a restart for it: %d %s", code, body)
	}
	// log.level is live: a login's audit line (info) is no longer logged.
	before := strings.Count(logs.String(), "action=login ")
	consoleLoginAs(t, base, "admin", "serve-secret")
	if n := strings.Count(logs.String(), "action=login "); n != before || before == 0 {
		t.Errorf("%d login lines logged before log.level: error, %d after a login", before, n)
	}
}

// The reload path SIGHUP uses, called in process: turning on the warm-up
// of incidents' cameras and a camera's recording for alarms, both off at
// start, starts the warmer and the incidents' evidence clips.
func TestReloadStartsWarmerAndEvidence(t *testing.T) {
	dir := t.TempDir()
	rec := "recordings:\n  path: " + filepath.Join(dir, "rec") + "\ningest:\n  warm_on_alarm: 0s\n"
	camera := "cameras:\n  - {id: gate, url: \"rtsp://127.0.0.1:1/live\"}\n"
	path := writeServeConfig(t, dir, "\n"+rec+camera)
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := buildSettings(fc)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	level := new(slog.LevelVar)
	logger, _ := newLevelLogger(s.log, &logs, level)
	s.source = &configSource{path: path, file: fc, level: level}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, s, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		a.wait(ctx)
	}()
	if a.warmer != nil || a.evidence != nil {
		t.Fatal("warmer or evidence at start, with neither configured")
	}
	next := strings.Replace(strings.Replace(string(mustRead(t, path)), "warm_on_alarm: 0s", "warm_on_alarm: 1m", 1),
		`"rtsp://127.0.0.1:1/live"}`, `"rtsp://127.0.0.1:1/live", record: alarms}`, 1)
	if err := os.WriteFile(path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	res := a.reload(ctx)
	ch, _ := res.Changes.(reloadChanges)
	if !res.Applied || ch.WarmOnAlarm != "1m0s" || ch.Recording == nil || !slices.Equal(ch.Recording.Added, []string{"gate"}) ||
		len(res.NeedsRestart) != 0 {
		t.Fatalf("reload: %+v %+v", res, ch)
	}
	if a.warmer == nil || time.Duration(a.warmer.hold.Load()) != time.Minute || a.evidence == nil {
		t.Errorf("after the reload: warmer %v, evidence %v", a.warmer, a.evidence)
	}
	// Off again: the warmer stays, holding nothing.
	if err := os.WriteFile(path, []byte(strings.Replace(next, "warm_on_alarm: 1m", "warm_on_alarm: 0s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := a.reload(ctx); !res.Applied || a.warmer.hold.Load() != 0 {
		t.Errorf("warm-up off again: %+v, hold %v", res, time.Duration(a.warmer.hold.Load()))
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
