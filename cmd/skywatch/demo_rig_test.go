package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/skywatch/skywatch/hardware"
)

// demoDevices is how many alarm devices the tests' demo runs: demoFleet
// of it gives their credentials.
const demoDevices = 40

// demoRig is `skywatch demo` running in the test's process on ports the OS
// picks, and an administrator's session on its API.
type demoRig struct {
	base   string // http://127.0.0.1:port
	broker string // tcp://127.0.0.1:port
	out    *syncBuffer
	admin  *apiSession

	areas   map[string]string // area → parent
	devices []demoDeviceInfo
	cameras []demoCameraInfo
	used    map[string]bool // devices a test has published as
}

type demoDeviceInfo struct {
	ID, Area, Model string
}

type demoCameraInfo struct {
	ID, Area string
}

// startDemo runs the demo with extra flags until the test ends.
func startDemo(t *testing.T, extra ...string) *demoRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"demo", "-http", "127.0.0.1:0", "-webrtc-udp", "127.0.0.1:0", "-webrtc-tcp", "127.0.0.1:0",
		"-mqtt", "127.0.0.1:0", "-devices", fmt.Sprint(demoDevices)}, extra...)
	go func() { done <- run(ctx, args, out, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exited with %d", code)
			}
		case <-time.After(20 * time.Second):
			t.Error("demo did not stop within 20 s of its context ending")
		}
	})
	r := &demoRig{out: out, used: map[string]bool{}}
	consoleRE := regexp.MustCompile(`Console: (http://127\.0\.0\.1:\d+)/`)
	brokerRE := regexp.MustCompile(`on MQTT (127\.0\.0\.1:\d+)\.`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := out.String()
		c, b := consoleRE.FindStringSubmatch(s), brokerRE.FindStringSubmatch(s)
		if c != nil && b != nil {
			r.base, r.broker = c[1], "tcp://"+b[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d:\n%s", code, s)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no console and broker address:\n%s", s)
		}
	}
	r.admin = r.login(t, "admin")

	var areas []struct{ ID, Parent string }
	r.admin.getJSON(t, "/api/areas", &areas)
	r.areas = map[string]string{}
	for _, a := range areas {
		r.areas[a.ID] = a.Parent
	}
	r.admin.getJSON(t, "/api/devices", &r.devices)
	r.admin.getJSON(t, "/api/cameras", &r.cameras)
	return r
}

// within tells whether area is root or below it.
func (r *demoRig) within(area, root string) bool {
	for seen := 0; area != "" && seen <= len(r.areas); seen++ {
		if area == root {
			return true
		}
		area = r.areas[area]
	}
	return false
}

// camerasIn lists the IDs of the cameras in root's area, sorted.
func (r *demoRig) camerasIn(root string) []string {
	var ids []string
	for _, c := range r.cameras {
		if r.within(c.Area, root) {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// device picks a well-behaved Skywatch JSON device in root's area that no
// test has published as yet (misbehaving ones fall silent or drop their
// connection, which opens tickets of their own).
func (r *demoRig) device(t *testing.T, root string) hardware.SimDevice {
	t.Helper()
	fleet := demoFleet(demoDevices)
	for _, info := range r.devices {
		if r.used[info.ID] || !r.within(info.Area, root) {
			continue
		}
		for _, d := range fleet {
			if d.ID == info.ID && d.Format == hardware.FormatSkywatch && (d.Behaviour == "" || d.Behaviour == hardware.BehaviourNormal) {
				r.used[d.ID] = true
				return d
			}
		}
	}
	t.Fatalf("no unused Skywatch JSON device in area %s", root)
	return hardware.SimDevice{}
}

// connectDevice connects to the demo's broker as d, beside the simulator's
// own connection (a second clean session, "{id}:test"), so that a test publishes when it
// chooses.
func (r *demoRig) connectDevice(t *testing.T, d hardware.SimDevice) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(r.broker).SetClientID(d.ID + ":test").
		SetUsername(d.Username).SetPassword(d.Password).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as device %s: %v", d.ID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// publishEvent publishes one Skywatch JSON event of class as d and waits
// for the broker's PUBACK (the event is stored then).
func publishEvent(t *testing.T, c paho.Client, d hardware.SimDevice, class, code string) {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"id": fmt.Sprintf("test-%s-%d", d.ID, time.Now().UnixNano()), "ts": time.Now().UTC().Format(time.RFC3339Nano),
		"class": class, "qualifier": "new", "code": code, "zone": "1",
	})
	tok := c.Publish("skywatch/dev/"+d.ID+"/event", 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish as %s: %v", d.ID, tok.Error())
	}
}

// demoIncident is what the tests read of an incident.
type demoIncident struct {
	ID      string   `json:"id"`
	State   string   `json:"state"`
	Class   string   `json:"class"`
	Classes []string `json:"classes"`
	Device  string   `json:"device"`
	Area    string   `json:"area"`
	Unit    string   `json:"unit"`
	Cameras []struct {
		ID     string `json:"id"`
		Linked bool   `json:"linked"`
	} `json:"cameras"`
	Timeline []struct {
		Action string `json:"action"`
		Actor  string `json:"actor"`
		Unit   string `json:"unit"`
	} `json:"timeline"`
}

// openIncidents lists the open incidents, as the administrator sees them.
func (r *demoRig) openIncidents(t *testing.T) []demoIncident {
	t.Helper()
	var page struct {
		Incidents []demoIncident `json:"incidents"`
	}
	r.admin.getJSON(t, "/api/incidents?open=true&limit=1000", &page)
	return page.Incidents
}

// waitIncident waits for device's open incident and returns it in full.
func (r *demoRig) waitIncident(t *testing.T, device string) demoIncident {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, inc := range r.openIncidents(t) {
			if inc.Device == device {
				var full demoIncident
				r.admin.getJSON(t, "/api/incidents/"+inc.ID, &full)
				return full
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident for device %s within 15 s", device)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiSession is one operator's session on the console API.
type apiSession struct {
	base string
	c    *http.Client
	csrf string
}

// login logs user in with the demo's console password.
func (r *demoRig) login(t *testing.T, user string) *apiSession {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &apiSession{base: r.base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	status, body := s.do(t, http.MethodPost, "/api/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, demoConsolePassword))
	if status != http.StatusOK {
		t.Fatalf("login as %s: %d %s", user, status, body)
	}
	var me struct{ CSRF string }
	if err := json.Unmarshal(body, &me); err != nil || me.CSRF == "" {
		t.Fatalf("login as %s: no CSRF token in %s", user, body)
	}
	s.csrf = me.CSRF
	return s
}

// do sends a request with the session's CSRF token; a body starting with
// "v=0" goes as an SDP offer, any other as JSON.
func (s *apiSession) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return s.send(t, method, path, body, true)
}

func (s *apiSession) send(t *testing.T, method, path, body string, withCSRF bool) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		if strings.HasPrefix(body, "v=0") {
			req.Header.Set("Content-Type", "application/sdp")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if withCSRF && s.csrf != "" {
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b.Bytes()
}

// getJSON GETs path and decodes its 200 answer into out.
func (s *apiSession) getJSON(t *testing.T, path string, out any) {
	t.Helper()
	status, body := s.do(t, http.MethodGet, path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// auditRecord is one record of GET /api/audit.
type auditRecord struct {
	User    string `json:"user"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"`
}

// always says whether the demo pulls camera all the time (its first
// camera) rather than on demand.
func (r *demoRig) always(camera string) bool {
	return camera == demoCameras(1)[0].id
}
