package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/recorder"
)

// clipCalls records what the wiring asks of the recorder.
type clipCalls struct {
	calls   []string
	notices chan recorder.Notice
	unended []string
}

func (c *clipCalls) Unended() []string { return c.unended }

func (c *clipCalls) StartClips(id string, cams []string, alarm time.Time) {
	c.calls = append(c.calls, fmt.Sprintf("start %s %v %s", id, cams, alarm.Format("15:04:05")))
}
func (c *clipCalls) ExtendClips(id string, last time.Time) {
	c.calls = append(c.calls, fmt.Sprintf("extend %s %s", id, last.Format("15:04:05")))
}
func (c *clipCalls) EndIncident(id string, ended time.Time) {
	c.calls = append(c.calls, fmt.Sprintf("end %s %s", id, ended.Format("15:04:05")))
}
func (c *clipCalls) Notices() <-chan recorder.Notice { return c.notices }

// TestEvidenceFollowsIncidents: a new response incident opens clips on its
// cameras, a later event extends them, its end starts their keep clock;
// the same incident seen again (after a restart) is only asked again to
// open clips (which the recorder then keeps as they are).
func TestEvidenceFollowsIncidents(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	inc := func(id string, state alarms.IncidentState, last time.Duration, mod func(*alarms.Incident)) *alarms.Incident {
		i := &alarms.Incident{ID: id, Kind: alarms.KindResponse, State: state, First: t0, Last: t0.Add(last),
			Cameras: []alarms.IncidentCamera{{ID: "a"}, {ID: "b"}}}
		if mod != nil {
			mod(i)
		}
		return i
	}
	ch := func(i *alarms.Incident, action string, to alarms.IncidentState, at time.Duration) alarms.IncidentChange {
		return alarms.IncidentChange{Incident: i, Entry: alarms.TimelineEntry{Action: action, To: to, At: t0.Add(at)}}
	}
	rec := &clipCalls{}
	v := newIncidentEvidence(rec, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, c := range []alarms.IncidentChange{
		ch(inc("i1", alarms.StateNew, 0, nil), "opened", alarms.StateNew, 0),
		ch(inc("i1", alarms.StateAcknowledged, 0, nil), "acknowledge", alarms.StateAcknowledged, time.Second),
		ch(inc("i1", alarms.StateAcknowledged, 30*time.Second, nil), "joined", "", 30*time.Second),
		ch(inc("i1", alarms.StateResolved, 30*time.Second, nil), "resolve", alarms.StateResolved, time.Minute),
		ch(inc("i1", alarms.StateResolved, 30*time.Second, nil), "evidence", "", 2*time.Minute),
		ch(inc("i1", alarms.StateClosed, 30*time.Second, nil), "close", alarms.StateClosed, 3*time.Minute),
		// Seen first in a later state (after a restart, or the opening missed).
		ch(inc("i2", alarms.StateOffered, 10*time.Second, nil), "offer", alarms.StateOffered, 0),
		// Not: maintenance tickets, incidents without cameras, unit changes.
		ch(inc("m1", alarms.StateNew, 0, func(i *alarms.Incident) { i.Kind = alarms.KindMaintenance }), "opened", alarms.StateNew, 0),
		ch(inc("n1", alarms.StateNew, 0, func(i *alarms.Incident) { i.Cameras = nil }), "opened", alarms.StateNew, 0),
		{Units: []alarms.UnitView{{}}},
	} {
		v.take(c, t0)
	}
	want := []string{
		"start i1 [a b] 12:00:00",
		"extend i1 12:00:30",
		"end i1 12:01:00",
		"end i1 12:03:00",
		"start i2 [a b] 12:00:00",
		"extend i2 12:00:10",
	}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(rec.calls, "\n"), strings.Join(want, "\n"))
	}
	if len(v.seen) != 1 {
		t.Errorf("%d incidents remembered, want 1 (i2)", len(v.seen))
	}
}

// TestEvidenceEndToEnd runs serve with a simulated camera recorded for
// alarms only and a device linked to it: a panic published over MQTT
// opens an incident whose clip starts before the alarm, and the clip's
// SHA-256, which is its file's, reaches the incident's timeline. After a
// restart the incident keeps its one clip.
func TestEvidenceEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	cam := hardware.NewCamera(hardware.CameraConfig{Paths: []hardware.CameraPath{{Path: "/gate", Clip: hardware.ClipGOP1s}}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	dir := t.TempDir()
	recordings := filepath.Join(dir, "recordings")
	path := writeServeConfig(t, dir, fmt.Sprintf(`
recordings:
  path: %s
  pre_alarm: 3s
  post_alarm: 2s
  clip_max: 1m
areas:
  - id: county
    kind: county
cameras:
  - id: gate
    url: %s
    area: county
    lat: 30
    lon: 120
    record: alarms
devices:
  - id: panel-1
    password: panel-secret-1
    area: county
    lat: 30
    lon: 120
    cameras: [gate]
`, recordings, cam.URL("/gate")))
	serve := func() (base, broker string, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		logs := &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"serve", "-config", path}, logs, logs) }()
		base = waitForServeAddr(t, logs)
		m := regexp.MustCompile(`mqtt=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no broker address in the log:\n%s", logs)
		}
		return base, "tcp://" + m[1], func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exited %d\n%s", code, logs)
				}
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop within 20 s")
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs)
			}
		}
	}
	base, broker, stop := serve()
	get := loginGet(t, base, "admin", "serve-secret")

	// Let the ring fill past pre_alarm: the camera is pulled for it
	// though nobody watches and nothing is recorded continuously.
	time.Sleep(5 * time.Second)
	if entries, _ := os.ReadDir(filepath.Join(recordings, "segments", "gate")); len(entries) != 0 {
		t.Errorf("an alarms-only camera has %d segment files", len(entries))
	}

	o := paho.NewClientOptions().AddBroker(broker).SetClientID("panel-1:test").
		SetUsername("panel-1").SetPassword("panel-secret-1").SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as the device: %v", tok.Error())
	}
	defer dev.Disconnect(100)
	payload := `{"id":"e2e-1","class":"panic","qualifier":"new","code":"120","zone":"1"}`
	if tok := dev.Publish("skywatch/dev/panel-1/event", 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	type incident struct {
		ID       string    `json:"id"`
		First    time.Time `json:"first"`
		Timeline []struct {
			Action string `json:"action"`
			Reason string `json:"reason"`
		} `json:"timeline"`
	}
	readIncident := func(id string) incident {
		body, err := get(base + "/api/incidents/" + id)
		var inc incident
		if err != nil || json.Unmarshal([]byte(body), &inc) != nil {
			t.Fatalf("GET incident %s: %v %s", id, err, body)
		}
		return inc
	}
	var inc incident
	deadline := time.Now().Add(20 * time.Second)
	for inc.ID == "" {
		body, _ := get(base + "/api/incidents?open=true")
		var page struct{ Incidents []incident }
		if json.Unmarshal([]byte(body), &page) == nil && len(page.Incidents) > 0 {
			inc = page.Incidents[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	shaRE := regexp.MustCompile(`camera gate clip .* complete, \d+ bytes, sha256 ([0-9a-f]{64})`)
	evidence := func(inc incident) []string {
		var out []string
		for _, e := range inc.Timeline {
			if e.Action == "evidence" {
				out = append(out, e.Reason)
			}
		}
		return out
	}
	var lines []string
	deadline = time.Now().Add(60 * time.Second)
	for len(lines) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no evidence on the incident's timeline: %+v", readIncident(inc.ID))
		}
		time.Sleep(200 * time.Millisecond)
		lines = evidence(readIncident(inc.ID))
	}
	m := shaRE.FindStringSubmatch(lines[0])
	if len(lines) != 1 || m == nil {
		t.Fatalf("evidence entries %q", lines)
	}
	name := inc.ID // the engine's IDs need no escaping
	data, err := os.ReadFile(filepath.Join(recordings, "evidence", name, "gate.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m[1] {
		t.Errorf("the clip file hashes to %x, the timeline says %s", sum, m[1])
	}
	var sc recorder.Clip
	side, err := os.ReadFile(filepath.Join(recordings, "evidence", name, "gate.json"))
	if err != nil || json.Unmarshal(side, &sc) != nil {
		t.Fatalf("sidecar: %v %s", err, side)
	}
	if sc.SHA256 != m[1] || sc.Status != recorder.ClipComplete || !sc.Alarm.Equal(inc.First) {
		t.Errorf("sidecar %s, incident first %s", side, inc.First)
	}
	if lead := sc.Alarm.Sub(sc.Start); lead < 3*time.Second-100*time.Millisecond || lead > 5*time.Second {
		t.Errorf("the clip starts %s before the alarm, want 3 s (pre_alarm) to a GOP more", lead)
	}

	// A restart: the incident, seen again when another event joins it,
	// keeps its one clip, and no second evidence line comes.
	stop()
	base, broker, stop = serve()
	defer stop()
	get = loginGet(t, base, "admin", "serve-secret")
	o.Servers = nil
	o.AddBroker(broker)
	dev2 := paho.NewClient(o)
	if tok := dev2.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect again: %v", tok.Error())
	}
	defer dev2.Disconnect(100)
	payload = `{"id":"e2e-2","class":"panic","qualifier":"new","code":"120","zone":"2"}`
	if tok := dev2.Publish("skywatch/dev/panel-1/event", 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		again := readIncident(inc.ID)
		joined := slices.ContainsFunc(again.Timeline, func(e struct {
			Action string `json:"action"`
			Reason string `json:"reason"`
		}) bool {
			return e.Action == "joined"
		})
		if joined {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second event did not join: %+v", again)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a clip opened by mistake would end by now
	if lines := evidence(readIncident(inc.ID)); len(lines) != 1 {
		t.Errorf("evidence entries after a restart: %q", lines)
	}
	if files, _ := os.ReadDir(filepath.Join(recordings, "evidence", name)); len(files) != 2 {
		t.Errorf("%d files in the incident's evidence, want a clip and its sidecar", len(files))
	}
	after, _ := os.ReadFile(filepath.Join(recordings, "evidence", name, "gate.mp4"))
	if sum := sha256.Sum256(after); hex.EncodeToString(sum[:]) != m[1] {
		t.Error("the clip changed after the restart")
	}
}

// noteCalls records what the wiring asks of the engine; fail makes the
// next calls fail.
type noteCalls struct {
	calls []string
	fail  []error
	// incidents answer Incident; an id not in it is alarms.ErrNotFound.
	incidents map[string]alarms.Incident
}

func (n *noteCalls) Incident(_ context.Context, id string) (alarms.Incident, error) {
	if inc, ok := n.incidents[id]; ok {
		return inc, nil
	}
	return alarms.Incident{}, fmt.Errorf("incident %s: %w", id, alarms.ErrNotFound)
}

func (n *noteCalls) next(call string) (alarms.Incident, error) {
	n.calls = append(n.calls, call)
	if len(n.fail) > 0 {
		err := n.fail[0]
		n.fail = n.fail[1:]
		return alarms.Incident{}, err
	}
	return alarms.Incident{}, nil
}

func (n *noteCalls) SubscribeIncidents(context.Context) <-chan alarms.IncidentChange { return nil }
func (n *noteCalls) Note(_ context.Context, id, action, reason string) (alarms.Incident, error) {
	return n.next("note " + id + " " + action + ": " + reason)
}
func (n *noteCalls) CameraTrouble(_ context.Context, cam, reason string) (alarms.Incident, error) {
	return n.next("trouble " + cam + ": " + reason)
}
func (n *noteCalls) CameraRestored(_ context.Context, cam, reason string) (alarms.Incident, error) {
	return n.next("restored " + cam + ": " + reason)
}

// TestEvidenceReconcilesMissedEnds: clips whose incident ended without the
// wiring seeing it (a slow subscriber misses changes) get their keep clock
// from the incident's end; an incident still open is left alone, and one the
// engine no longer has ends now.
func TestEvidenceReconcilesMissedEnds(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	eng := &noteCalls{incidents: map[string]alarms.Incident{
		"open": {ID: "open", State: alarms.StateDispatched},
		"closed": {ID: "closed", State: alarms.StateClosed, Updated: t0.Add(time.Hour), Timeline: []alarms.TimelineEntry{
			{Action: "opened", To: alarms.StateNew, At: t0},
			{Action: "resolve", From: alarms.StateOnScene, To: alarms.StateResolved, At: t0.Add(20 * time.Minute)},
			{Action: "close", From: alarms.StateResolved, To: alarms.StateClosed, At: t0.Add(30 * time.Minute)},
			{Action: "evidence", At: t0.Add(40 * time.Minute)},
		}},
	}}
	rec := &clipCalls{unended: []string{"closed", "gone", "open"}}
	v := newIncidentEvidence(rec, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v.reconcile(context.Background())
	if len(rec.calls) != 2 || rec.calls[0] != "end closed 10:30:00" || !strings.HasPrefix(rec.calls[1], "end gone ") {
		t.Fatalf("calls %q, want the closed incident ended at its close and the gone one now", rec.calls)
	}
}

// TestEvidenceNotices: a clip's notice becomes a timeline line with its
// span and hash (or why it failed), a fault a camera trouble, a recovery a
// restore; a failing engine is asked again, a missing incident is not.
func TestEvidenceNotices(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	eng := &noteCalls{fail: []error{alarms.ErrEngineClosed}}
	v := newIncidentEvidence(&clipCalls{}, eng, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v.retryWait = time.Millisecond
	ctx := context.Background()
	complete := recorder.Clip{ID: "cam-1", Incident: "i1", Camera: "cam-1", Start: t0, End: t0.Add(90 * time.Second),
		Status: recorder.ClipComplete, SHA256: strings.Repeat("ab", 32), Bytes: 1234}
	failed := recorder.Clip{ID: "cam-2", Incident: "i1", Camera: "cam-2", Start: t0, End: t0.Add(time.Minute),
		Status: recorder.ClipFailed, Reason: "the camera delivered no video from 10:00:00 to 10:01:00"}
	v.notice(ctx, recorder.Notice{Kind: recorder.NoticeClip, Camera: "cam-1", Clip: &complete}) // closed engine: not again
	eng.fail = []error{errors.New("store away"), errors.New("store away")}
	v.notice(ctx, recorder.Notice{Kind: recorder.NoticeClip, Camera: "cam-1", Clip: &complete})
	v.notice(ctx, recorder.Notice{Kind: recorder.NoticeClip, Camera: "cam-2", Clip: &failed})
	v.notice(ctx, recorder.Notice{Kind: recorder.NoticeFault, Camera: "cam-1", Reason: "no space"})
	eng.fail = []error{fmt.Errorf("x: %w", alarms.ErrNotFound)}
	v.notice(ctx, recorder.Notice{Kind: recorder.NoticeRecovered, Camera: "cam-1", Reason: "space is back"})
	line := "note i1 evidence: camera cam-1 clip 10:00:00-10:01:30 UTC complete, 1234 bytes, sha256 " + strings.Repeat("ab", 32)
	want := []string{
		line,
		line, line, line,
		"note i1 evidence: camera cam-2 clip 10:00:00-10:01:00 UTC failed: the camera delivered no video from 10:00:00 to 10:01:00",
		"trouble cam-1: recording stopped: no space",
		"restored cam-1: recording again: space is back",
	}
	if !slices.Equal(eng.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(eng.calls, "\n"), strings.Join(want, "\n"))
	}
}
