package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fanoutServer is a relay under measurement: it pulls the bench camera
// over RTSP and serves it to WHEP viewers. Each is its own process.
type fanoutServer interface {
	name() string
	// start writes the server's config under dir and starts it.
	start(dir, cameraURL string, viewers int) (*skywatchProc, error)
	// waitReady waits until the server is pulling the camera.
	waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error
	// whep returns where viewers post their offers (logging in first
	// where the server needs it).
	whep(ctx context.Context) (whepTarget, error)
}

// fanoutCamera is the camera's path on the bench camera and the name the
// servers give it.
const fanoutCamera = "cam"

// freeUDP returns a loopback UDP address that was free a moment ago, for
// a server's ICE port.
func freeUDP() (string, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// freeTCPs returns n free loopback TCP addresses.
func freeTCPs(n int) ([]string, error) {
	var out []string
	for range n {
		a, err := freeTCP()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// skywatchFanout is `skywatch serve` with one camera pulled always, its
// WHEP behind the bench admin's login.
type skywatchFanout struct {
	binary string
	base   string
	client *http.Client
}

func (t *skywatchFanout) name() string { return "skywatch" }

func (t *skywatchFanout) start(dir, cameraURL string, viewers int) (*skywatchProc, error) {
	addrs, err := freeTCPs(2)
	if err != nil {
		return nil, err
	}
	users, err := benchUsersYAML()
	if err != nil {
		return nil, err
	}
	// A viewer slot for every viewer, all from one user and address.
	cfg := fmt.Sprintf(`log: {level: warn}
http: {address: %q}
webrtc: {udp_address: "127.0.0.1:0", tcp_address: "off", sessions_per_user: %d, sessions_per_address: %d}
mqtt: {address: %q}
store: {path: %q, records_dir: %q}
%scameras:
  - {id: %s, url: %q, transport: tcp, mode: always}
`, addrs[0], viewers+10, viewers+10, addrs[1], filepath.Join(dir, "alarms.db"), filepath.Join(dir, "records"), users, fanoutCamera, cameraURL)
	path := filepath.Join(dir, "skywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	t.base = "http://" + addrs[0]
	jar, _ := cookiejar.New(nil)
	t.client = &http.Client{Jar: jar}
	return startBenchProc(filepath.Join(dir, "skywatch.log"), t.binary, "serve", "-config", path)
}

func (t *skywatchFanout) waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error {
	if err := waitHealthy(ctx, t.base, exited, wait); err != nil {
		return err
	}
	return waitCamerasOnline(ctx, t.base+"/metrics", map[string]int{"main": 1}, exited, wait)
}

func (t *skywatchFanout) whep(ctx context.Context) (whepTarget, error) {
	csrf, err := benchLogin(ctx, t.client, t.base)
	if err != nil {
		return whepTarget{}, err
	}
	return whepTarget{url: t.base + "/whep/" + fanoutCamera, header: http.Header{"X-Csrf-Token": {csrf}}, client: t.client}, nil
}

// mediaMTXFanout is MediaMTX with the camera as an always-on RTSP source
// and WebRTC on loopback only; every other server is off.
type mediaMTXFanout struct {
	binary           string
	apiBase, webBase string
	client           *http.Client
}

func (t *mediaMTXFanout) name() string { return "mediamtx" }

func (t *mediaMTXFanout) start(dir, cameraURL string, _ int) (*skywatchProc, error) {
	addrs, err := freeTCPs(2)
	if err != nil {
		return nil, err
	}
	udp, err := freeUDP()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`logLevel: warn
rtsp: no
rtmp: no
hls: no
srt: no
moq: no
api: yes
apiAddress: %s
webrtc: yes
webrtcAddress: %s
webrtcLocalUDPAddress: %s
webrtcLocalTCPAddress: ''
webrtcIPsFromInterfaces: no
webrtcAdditionalHosts: [127.0.0.1]
webrtcICEServers2: []
paths:
  %s: {source: %q, sourceOnDemand: no, rtspTransport: tcp}
`, addrs[0], addrs[1], udp, fanoutCamera, cameraURL)
	path := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	t.apiBase, t.webBase, t.client = "http://"+addrs[0], "http://"+addrs[1], &http.Client{}
	return startBenchProc(filepath.Join(dir, "mediamtx.log"), t.binary, path)
}

func (t *mediaMTXFanout) waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error {
	return pollReady(ctx, exited, wait, func() (bool, error) {
		ready, _, err := mediaMTXPaths(ctx, t.client, t.apiBase, 1)
		return ready >= 1, err
	})
}

func (t *mediaMTXFanout) whep(context.Context) (whepTarget, error) {
	return whepTarget{url: t.webBase + "/" + fanoutCamera + "/whep", client: t.client}, nil
}

// go2rtcFanout is go2rtc with the camera preloaded (pulled without a
// viewer) and WebRTC on loopback only; its RTSP server is off.
type go2rtcFanout struct {
	binary  string
	apiBase string
	client  *http.Client
}

func (t *go2rtcFanout) name() string { return "go2rtc" }

func (t *go2rtcFanout) start(dir, cameraURL string, _ int) (*skywatchProc, error) {
	api, err := freeTCP()
	if err != nil {
		return nil, err
	}
	udp, err := freeUDP()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`log: {level: warn}
api: {listen: %q}
rtsp: {listen: ""}
webrtc:
  listen: %q
  ice_servers: []
  filters: {loopback: true, interfaces: [lo], ips: [127.0.0.1], networks: [udp4]}
streams:
  %s: %q
preload:
  %s:
`, api, udp+"/udp", fanoutCamera, cameraURL, fanoutCamera)
	path := filepath.Join(dir, "go2rtc.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	t.apiBase, t.client = "http://"+api, &http.Client{}
	return startBenchProc(filepath.Join(dir, "go2rtc.log"), t.binary, "-c", path)
}

func (t *go2rtcFanout) waitReady(ctx context.Context, exited <-chan struct{}, wait time.Duration) error {
	return pollReady(ctx, exited, wait, func() (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.apiBase+"/api/streams?src="+fanoutCamera, nil)
		resp, err := t.client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var st struct {
			Producers []struct {
				BytesRecv float64 `json:"bytes_recv"`
			} `json:"producers"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false, fmt.Errorf("streams: %w", err)
		}
		return len(st.Producers) > 0 && st.Producers[0].BytesRecv > 0, nil
	})
}

func (t *go2rtcFanout) whep(context.Context) (whepTarget, error) {
	return whepTarget{url: t.apiBase + "/api/webrtc?src=" + fanoutCamera, client: t.client}, nil
}

// pollReady calls ready every 200 ms until it says yes, the process exits
// or wait passes.
func pollReady(ctx context.Context, exited <-chan struct{}, wait time.Duration, ready func() (bool, error)) error {
	deadline := time.Now().Add(wait)
	for {
		ok, err := ready()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("camera not pulled")
			}
			return fmt.Errorf("not ready after %s: %w", wait, err)
		}
		select {
		case <-exited:
			return errors.New("exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lastLines is the end of a server's log, for saying why it failed.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
