package ingest

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := CameraConfig{ID: "cam1", URL: "rtsp://127.0.0.1:8554/cam1", Username: "admin", Password: "s3cret"}
	cases := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"empty", Config{}, nil},
		{"good", Config{Cameras: []CameraConfig{good}}, nil},
		{"all options", Config{ReadTimeout: time.Second, Linger: time.Second, ReadyTimeout: time.Second, QueueSize: 16,
			Cameras: []CameraConfig{{ID: "a.b-c_1", URL: "rtsps://cam.example:322/x", Transport: "tcp", Mode: "always"}}}, nil},
		{"negative durations", Config{ReadTimeout: -1, Linger: -1, ReadyTimeout: -1},
			[]string{"read_timeout: must not be negative", "linger: must not be negative", "ready_timeout: must not be negative"}},
		{"queue size", Config{QueueSize: -1}, []string{"queue_size: must be between 1 and"}},
		{"empty id", Config{Cameras: []CameraConfig{{URL: good.URL}}}, []string{"cameras[0].id: must not be empty"}},
		{"bad id", Config{Cameras: []CameraConfig{{ID: "a/b", URL: good.URL}}}, []string{`cameras[0].id: "a/b" must contain only`}},
		{"duplicate id", Config{Cameras: []CameraConfig{good, {ID: "x", URL: good.URL}, good}},
			[]string{`cameras[2].id: duplicate "cam1" (also cameras[0])`}},
		{"empty url", Config{Cameras: []CameraConfig{{ID: "a"}}}, []string{"cameras[0].url: must not be empty"}},
		{"scheme", Config{Cameras: []CameraConfig{good, good, good, {ID: "d", URL: "http://h/x"}}},
			[]string{"cameras[3].url: scheme must be rtsp or rtsps"}},
		{"no host", Config{Cameras: []CameraConfig{{ID: "a", URL: "rtsp:///x"}}}, []string{"cameras[0].url: must have a host"}},
		{"bad url", Config{Cameras: []CameraConfig{{ID: "a", URL: "rtsp://h:port/%zz"}}}, []string{"cameras[0].url: not a valid URL"}},
		{"userinfo", Config{Cameras: []CameraConfig{{ID: "a", URL: "rtsp://admin:hunter2@h/x"}}},
			[]string{"cameras[0].url: must not contain credentials: use username and password"}},
		{"password without username", Config{Cameras: []CameraConfig{{ID: "a", URL: good.URL, Password: "p"}}},
			[]string{"cameras[0].password: set without username"}},
		{"transport", Config{Cameras: []CameraConfig{{ID: "a", URL: good.URL, Transport: "sctp"}}},
			[]string{`cameras[0].transport: must be auto, udp or tcp, not "sctp"`}},
		{"sub url", Config{Cameras: []CameraConfig{{ID: "a", URL: good.URL, SubURL: "rtsp://h/sub"}}}, nil},
		{"bad sub url", Config{Cameras: []CameraConfig{good, {ID: "a", URL: good.URL, SubURL: "http://h/sub"}}},
			[]string{"cameras[1].sub_url: scheme must be rtsp or rtsps"}},
		{"sub url with credentials", Config{Cameras: []CameraConfig{{ID: "a", URL: good.URL, SubURL: "rtsp://u:hunter2@h/sub"}}},
			[]string{"cameras[0].sub_url: must not contain credentials"}},
		{"sub url same as url", Config{Cameras: []CameraConfig{{ID: "a", URL: good.URL, SubURL: good.URL}}},
			[]string{"cameras[0].sub_url: same as url"}},
		{"mode", Config{Cameras: []CameraConfig{{ID: "a", URL: good.URL, Mode: "sometimes"}}},
			[]string{`cameras[0].mode: must be on_demand or always, not "sometimes"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			for _, secret := range []string{"hunter2", "s3cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Validate() = %q, leaks a password", err)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{Cameras: []CameraConfig{{ID: "a", URL: "rtsp://h/x"}}}
	cfg.setDefaults()
	if cfg.ReadTimeout != DefaultReadTimeout || cfg.Linger != DefaultLinger ||
		cfg.ReadyTimeout != DefaultReadyTimeout || cfg.QueueSize != DefaultQueueSize {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	c := cfg.Cameras[0]
	if c.Name != "a" || c.Transport != TransportAuto || c.Mode != ModeOnDemand {
		t.Errorf("camera defaults not applied: %+v", c)
	}
}
