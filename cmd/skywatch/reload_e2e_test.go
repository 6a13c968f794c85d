package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/hardware"
)

// The reload the issue asks for, end to end: `skywatch serve` runs as a
// process of its own on loopback ports, with three cameras (a simulated
// RTSP camera serving their paths) watched by pion WHEP viewers, two alarm
// devices and two patrol units on the embedded broker, two operators
// logged in and an incident offered to a unit. The config file is then
// rewritten (camera a unchanged, b removed, c pointed elsewhere, d added;
// device x's password changed; operator p's role changed; unit u2 removed
// and u3 added, u1 holding the offer) and the process gets SIGHUP. Then
// the HTTP endpoint: an admin's reload (200, a restart-only key named),
// an operator's (403), an invalid file (422 with the key; the old config
// stays in force; the metrics say so).
func TestReloadEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Skywatch, a camera, devices, units and viewers")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cam := hardware.NewCamera(hardware.CameraConfig{Username: "cam", Password: "cam-Secret-9", Paths: []hardware.CameraPath{
		{Path: "/a", Clip: hardware.ClipGOP1s}, {Path: "/b", Clip: hardware.ClipGOP1s},
		{Path: "/c", Clip: hardware.ClipGOP1s}, {Path: "/c2", Clip: hardware.ClipGOP1s},
		{Path: "/d", Clip: hardware.ClipGOP1s},
	}})
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	defer cam.Close()

	dir := t.TempDir()
	rc := reloadConfig{dir: dir, camera: cam.Addr(), cameras: []string{"a:/a", "b:/b", "c:/c"},
		xPassword: "x-old-Pass", units: []string{"u1", "u2"}, pRole: "operator",
		hash: map[string]string{}}
	path := filepath.Join(dir, "skywatch.yaml")
	rc.write(t, path)

	t.Setenv(asMainEnv, "1") // for the server process only: this one is past TestMain
	var logs syncBuffer
	cmd := exec.Command(exe, "serve", "-config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("skywatch's log:\n%s", logs.String())
		}
	}()
	base := waitForServeAddr(t, &logs)
	broker := "tcp://" + logField(t, &logs, "mqtt")

	// Two devices and two units on the embedded broker.
	devX, devY := startDevice(t, ctx, broker, "x", rc.xPassword), startDevice(t, ctx, broker, "y", "y-Pass")
	units := hardware.NewUnitSim(hardware.UnitSimConfig{Broker: broker, Seed: 3, PositionEvery: 500 * time.Millisecond,
		IgnoreRatio: 1, Units: []hardware.SimUnit{
			{ID: "u1", Username: "u1", Password: "unit-Pass", HomeLat: reloadLat, HomeLon: reloadLon, RadiusM: 1},
			{ID: "u2", Username: "u2", Password: "unit-Pass", HomeLat: reloadLat + 0.02, HomeLon: reloadLon, RadiusM: 1},
		}})
	unitsCtx, stopUnits := context.WithCancel(ctx)
	unitsDone := make(chan struct{})
	go func() { defer close(unitsDone); _ = units.Run(unitsCtx) }()
	defer func() { stopUnits(); <-unitsDone }()
	waitUntil(t, "devices and units connected", func() bool {
		return devX.Stats().Connected == 1 && devY.Stats().Connected == 1 && units.Stats().Connected == 2
	})

	// Two operators and an admin; viewers of a, b and c.
	admin, p, q := consoleLogin(t, base, "admin"), consoleLogin(t, base, "p"), consoleLogin(t, base, "q")
	va, vb, vc := watchCamera(t, ctx, q, "a"), watchCamera(t, ctx, q, "b"), watchCamera(t, ctx, q, "c")
	vpa := watchCamera(t, ctx, p, "a") // p's own viewer of a ends with p's session
	for _, v := range []*reloadViewer{va, vb, vc, vpa} {
		v.waitPackets(t, 30)
	}

	// The patrol page, logged in as u1 (kept) and u2 (removed).
	patrolU1, patrolU2 := patrolLogin(t, base, "u1"), patrolLogin(t, base, "u2")

	// An incident offered to u1, the unit nearest to y.
	alarm := fmt.Sprintf(`{"id":"ev-reload-1","seq":1,"ts":%q,"class":"panic","qualifier":"new","zone":"1"}`,
		time.Now().UTC().Format(time.RFC3339))
	if err := devY.PublishEvent(ctx, "y", []byte(alarm)); err != nil {
		t.Fatal(err)
	}
	var offered incidentJSON
	waitUntil(t, "the incident offered to u1", func() bool {
		list := admin.incidents(t)
		if len(list) == 1 && list[0].State == "offered" && list[0].Offer != nil {
			offered = list[0]
			return offered.Offer.Unit == "u1"
		}
		return false
	})
	playsA := cam.PlayCount("/a")

	// The new file, then SIGHUP.
	rc.cameras = []string{"a:/a", "c:/c2", "d:/d"}
	rc.xPassword, rc.pRole, rc.units = "x-new-Pass", "viewer", []string{"u1", "u3"}
	rc.write(t, path)
	reloads := strings.Count(logs.String(), `msg="config reloaded"`)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reload's log line", func() bool { return strings.Count(logs.String(), `msg="config reloaded"`) > reloads })
	line := lastLine(logs.String(), `msg="config reloaded"`)
	t.Logf("SIGHUP reload: %s", line)
	for _, want := range []string{"cameras +1 ~1 -1", "devices ~1 (1 disconnected)", "units +1 -1 (1 disconnected)", "users ~1 (1 sessions ended)"} {
		if !strings.Contains(line, want) {
			t.Errorf("the reload's line lacks %q", want)
		}
	}

	// b's viewer ends, c's too (its camera changed); a's goes on, on
	// the same RTSP session.
	vb.waitEnded(t)
	endB := time.Since(sent)
	vc.waitEnded(t)
	before := va.count()
	va.waitPackets(t, before+30)
	if n := cam.PlayCount("/a"); n != playsA {
		t.Errorf("camera a: %d RTSP sessions started playing, %d before the reload: its session was not kept", n, playsA)
	}
	gapA, steadyA := va.maxGap(sent, time.Now()), va.maxGap(time.Time{}, sent)
	// Their players learn why from the session's URL.
	for v, want := range map[*reloadViewer]string{vb: "camera_removed", vc: "camera_changed"} {
		waitUntil(t, "410 "+want+" at "+v.location, func() bool {
			code, body := q.get(t, v.location)
			return code == http.StatusGone && strings.Contains(body, `"code": "`+want+`"`)
		})
	}
	if code, _ := q.get(t, "/api/cameras/b"); code != http.StatusNotFound {
		t.Errorf("GET /api/cameras/b after its removal: %d", code)
	}
	vd := watchCamera(t, ctx, q, "d")
	vd.waitPackets(t, 30)
	vc2 := watchCamera(t, ctx, q, "c")
	vc2.waitPackets(t, 30)
	waitUntil(t, "camera sessions: none of /b and /c, one of /c2", func() bool {
		return cam.Sessions("/c2") == 1 && cam.Sessions("/c") == 0 && cam.Sessions("/b") == 0
	})

	// x is disconnected and refused with its old password; y is not.
	waitUntil(t, "x disconnected", func() bool { return devX.Stats().Connected == 0 })
	if st := devY.Stats(); st.Connected != 1 || st.Connects != 1 {
		t.Errorf("y: %d connected, %d connections, want 1 and 1", st.Connected, st.Connects)
	}

	// p's session is refused, with its video; q's is valid.
	vpa.waitEnded(t)
	if code, _ := p.get(t, "/api/me"); code != http.StatusUnauthorized {
		t.Errorf("p (role changed) after the reload: %d", code)
	}
	if code, _ := q.get(t, "/api/me"); code != http.StatusOK {
		t.Errorf("q after the reload: %d", code)
	}

	// u2's patrol page is logged out, u1's is not.
	if code := patrolU2(); code != http.StatusUnauthorized {
		t.Errorf("u2 (removed) on the patrol page: %d", code)
	}
	if code := patrolU1(); code != http.StatusOK {
		t.Errorf("u1 (kept) on the patrol page: %d", code)
	}

	// The incident is still offered to u1, the same offer.
	after := admin.incident(t, offered.ID)
	if after.State != "offered" || after.Offer == nil || after.Offer.Unit != "u1" || !after.Offer.Sent.Equal(offered.Offer.Sent) {
		t.Errorf("incident after the reload: %+v, before %+v", after, offered)
	}

	// The endpoint: an operator may not, an admin may; a restart-only
	// key is named, and nothing else changed.
	if code, _ := q.post(t, "/api/admin/reload"); code != http.StatusForbidden {
		t.Errorf("an operator's reload: %d", code)
	}
	rc.httpAddress = "127.0.0.1:1"
	rc.write(t, path)
	code, body := admin.post(t, "/api/admin/reload")
	var res struct {
		Result       string          `json:"result"`
		Applied      bool            `json:"applied"`
		Changes      json.RawMessage `json:"changes"`
		NeedsRestart []string        `json:"needs_restart"`
		Errors       []string        `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusOK || !res.Applied ||
		strings.Join(res.NeedsRestart, ",") != "http.address" || string(res.Changes) != "{}" {
		t.Errorf("admin's reload with http.address changed: %d %s", code, body)
	}

	// An invalid file: 422 with the key, the old config kept.
	rc.badCamera = true
	rc.write(t, path)
	code, body = admin.post(t, "/api/admin/reload")
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusUnprocessableEntity || res.Applied ||
		len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], "cameras[3].url") {
		t.Errorf("invalid file: %d %s", code, body)
	}
	if code, body := q.get(t, "/api/cameras"); code != http.StatusOK || !strings.Contains(body, `"id": "d"`) ||
		strings.Contains(body, `"id": "e"`) {
		t.Errorf("cameras after an invalid file: %d %s", code, body)
	}
	_, metrics := admin.get(t, "/metrics")
	for _, want := range []string{`skywatch_config_reloads_total{result="applied"} 2`, `skywatch_config_reloads_total{result="invalid"} 1`,
		"skywatch_config_last_reload_successful 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(logs.String(), `msg="config reload: the file is not valid; the running config is kept"`) {
		t.Error("the invalid file was not logged")
	}
	if code, body := admin.get(t, "/api/audit?action=config_reload"); code != http.StatusOK || strings.Count(body, `"outcome": "applied"`) != 2 ||
		strings.Count(body, `"outcome": "invalid"`) != 1 || !strings.Contains(body, `"user": "system"`) {
		t.Errorf("config_reload audit records: %d %s", code, body)
	}
	if strings.Contains(logs.String(), "cam-Secret-9") {
		t.Error("the log holds a camera password")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second SIGHUP's invalid reload", func() bool {
		return strings.Count(logs.String(), `msg="config reload: the file is not valid; the running config is kept"`) == 2
	})
	select {
	case err := <-exited:
		t.Fatalf("skywatch exited after SIGHUP: %v", err)
	default:
	}
	took := regexp.MustCompile(`took=(\S+)`).FindStringSubmatch(line)
	t.Logf("figures: reload took %s (its log line); a's viewer: largest gap between packets from SIGHUP on %s (before it: %s), %d packets; "+
		"b's viewer ended %s after SIGHUP; x disconnected, y kept its one connection",
		strings.Join(took[1:], ""), gapA.Round(time.Millisecond), steadyA.Round(time.Millisecond), va.count(), endB.Round(time.Millisecond))
}

// Where the test's devices and units are.
const (
	reloadLat = 30.25
	reloadLon = 120.15
)

// reloadConfig writes the test's config file.
type reloadConfig struct {
	dir, camera string
	// cameras are "id:path" on the simulated camera.
	cameras     []string
	xPassword   string
	units       []string
	pRole       string
	httpAddress string
	badCamera   bool
	// hash keeps one bcrypt hash per password, so that a file written
	// again holds the same hash for an unchanged password.
	hash map[string]string
}

func (c *reloadConfig) h(t *testing.T, password string) string {
	if c.hash[password] == "" {
		c.hash[password] = testPasswordHash(t, password)
	}
	return c.hash[password]
}

func (c *reloadConfig) write(t *testing.T, path string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `http:
  address: %s
webrtc:
  udp_address: 127.0.0.1:0
  tcp_address: "off"
ingest:
  warm_on_alarm: 0s
mqtt:
  address: 127.0.0.1:0
store:
  path: %s
routing:
  offer_timeout: 10m
areas:
  - {id: county, kind: county}
  - {id: v1, kind: village, parent: county}
users:
  - {username: admin, role: admin, password_hash: %q}
  - {username: p, role: %s, password_hash: %q}
  - {username: q, role: operator, password_hash: %q}
cameras:
`, cmpOr(c.httpAddress, "127.0.0.1:0"), filepath.Join(c.dir, "alarms.db"), c.h(t, "admin-Pass"), c.pRole,
		c.h(t, "p-Pass"), c.h(t, "q-Pass"))
	for _, cp := range c.cameras {
		id, p, _ := strings.Cut(cp, ":")
		fmt.Fprintf(&b, "  - {id: %s, area: v1, url: \"rtsp://%s%s\", username: cam, password: cam-Secret-9, transport: tcp}\n",
			id, c.camera, p)
	}
	if c.badCamera {
		b.WriteString("  - {id: e, url: \"http://example/e\"}\n")
	}
	fmt.Fprintf(&b, `devices:
  - {id: x, area: v1, lat: %f, lon: %f, username: x, password_hash: %q}
  - {id: y, area: v1, lat: %f, lon: %f, username: y, password_hash: %q}
units:
`, reloadLat, reloadLon, c.h(t, c.xPassword), reloadLat, reloadLon, c.h(t, "y-Pass"))
	for i, u := range c.units {
		fmt.Fprintf(&b, "  - {id: %s, area: v1, lat: %f, lon: %f, username: %s, password_hash: %q}\n",
			u, reloadLat+float64(i)*0.02, reloadLon, u, c.h(t, "unit-Pass"))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// logField reads key=value from the serving line of the log.
func logField(t *testing.T, logs *syncBuffer, key string) string {
	t.Helper()
	line := lastLine(logs.String(), `msg="skywatch serving"`)
	m := regexp.MustCompile(`\b` + key + `=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s in %q", key, line)
	}
	return m[1]
}

// lastLine is the last line of s that contains substr, "" if none.
func lastLine(s, substr string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

// startDevice runs one simulated device until the test ends.
func startDevice(t *testing.T, ctx context.Context, broker, id, password string) *hardware.DeviceSim {
	t.Helper()
	sim := hardware.NewDeviceSim(hardware.DeviceSimConfig{Broker: broker, Heartbeat: time.Second, Seed: 1,
		AlarmEvery: time.Hour, Devices: []hardware.SimDevice{{ID: id, Username: id, Password: password, Format: hardware.FormatSkywatch}}})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sim.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("device %s: %v", id, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return sim
}

// console is a logged-in browser: its cookie jar and CSRF token.
type console struct {
	base, csrf string
	c          *http.Client
}

func consoleLogin(t *testing.T, base, user string) *console {
	t.Helper()
	return consoleLoginAs(t, base, user, user+"-Pass")
}

func consoleLoginAs(t *testing.T, base, user, password string) *console {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &console{base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	resp, err := c.c.Post(base+"/api/login", "application/json",
		strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		CSRF string `json:"csrf"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: %s %v", user, resp.Status, err)
	}
	c.csrf = me.CSRF
	return c
}

func (c *console) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-CSRF-Token", c.csrf)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *console) get(t *testing.T, path string) (int, string) { return c.do(t, http.MethodGet, path) }
func (c *console) post(t *testing.T, path string) (int, string) {
	return c.do(t, http.MethodPost, path)
}

// patrolLogin logs unit in to the patrol page and returns a GET of
// /patrol/api/me with its session, which answers the status.
func patrolLogin(t *testing.T, base, unit string) func() int {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Post(base+"/patrol/api/login", "application/json",
		strings.NewReader(`{"username":"`+unit+`","password":"unit-Pass"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("patrol login as %s: %s", unit, resp.Status)
	}
	return func() int {
		resp, err := c.Get(base + "/patrol/api/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
}

// incidentJSON is what the test reads of an incident.
type incidentJSON struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Offer *struct {
		Unit string    `json:"unit"`
		Sent time.Time `json:"sent"`
	} `json:"offer"`
}

func (c *console) incidents(t *testing.T) []incidentJSON {
	t.Helper()
	code, body := c.get(t, "/api/incidents")
	var page struct {
		Incidents []incidentJSON `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || code != http.StatusOK {
		t.Fatalf("incidents: %d %s %v", code, body, err)
	}
	return page.Incidents
}

func (c *console) incident(t *testing.T, id string) incidentJSON {
	t.Helper()
	code, body := c.get(t, "/api/incidents/"+id)
	var inc incidentJSON
	if err := json.Unmarshal([]byte(body), &inc); err != nil || code != http.StatusOK {
		t.Fatalf("incident %s: %d %s %v", id, code, body, err)
	}
	return inc
}

// reloadViewer is a pion WHEP viewer that notes when its video packets
// arrive.
type reloadViewer struct {
	pc *webrtc.PeerConnection
	// location is the session's URL.
	location string
	ended    chan struct{}

	mu      sync.Mutex
	arrived []time.Time
}

func watchCamera(t *testing.T, ctx context.Context, c *console, camera string) *reloadViewer {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	v := &reloadViewer{pc: pc, ended: make(chan struct{})}
	var once sync.Once
	end := func() { once.Do(func() { close(v.ended) }) }
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected {
			end()
		}
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				end()
				return
			}
			v.mu.Lock()
			v.arrived = append(v.arrived, time.Now())
			v.mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	answer, location, err := postOffer(ctx, whepTarget{url: c.base + "/whep/" + camera, client: c.c,
		header: http.Header{"X-Csrf-Token": {c.csrf}}}, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatalf("watch %s: %v", camera, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	v.location = location
	return v
}

func (v *reloadViewer) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.arrived)
}

func (v *reloadViewer) waitPackets(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d video packets", n), func() bool { return v.count() >= n })
}

func (v *reloadViewer) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-v.ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the viewer did not end")
	}
}

// maxGap is the largest time between two packets, the second of which
// arrived between from and to.
func (v *reloadViewer) maxGap(from, to time.Time) time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(v.arrived); i++ {
		if v.arrived[i].After(from) && v.arrived[i].Before(to) {
			gap = max(gap, v.arrived[i].Sub(v.arrived[i-1]))
		}
	}
	return gap
}
