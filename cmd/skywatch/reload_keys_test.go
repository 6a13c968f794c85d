package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/skywatch/skywatch/internal/testcert"
)

// restartKeys names, by the file's own keys, every change outside what a
// reload applies, and nothing a reload applies.
func TestRestartKeys(t *testing.T) {
	before := `
log: {level: info, format: text}
http: {address: "127.0.0.1:8080", tls_cert: a.pem, tls_key: a.key}
webrtc: {udp_address: "127.0.0.1:8189"}
ingest: {read_timeout: 10s, warm_on_alarm: 1m}
mqtt: {address: "127.0.0.1:1883"}
alarms: {device_rate: 5}
store: {path: a.db}
recordings: {path: rec, keep: 24h}
cameras: [{id: a, url: "rtsp://10.0.0.1/a"}]
users: [{username: admin, role: admin, password_hash: x}]
map: {tile_url: "http://tiles/{z}/{x}/{y}.png"}
`
	after := `
log: {level: debug, format: json}
http: {address: "127.0.0.1:9090", tls_cert: a.pem, tls_key: b.key}
webrtc: {udp_address: "127.0.0.1:8189"}
ingest: {read_timeout: 20s, warm_on_alarm: 2m}
mqtt: {address: "127.0.0.1:1884"}
alarms: {device_rate: 6}
store: {path: b.db}
recordings: {path: rec, keep: 48h}
cameras: [{id: b, url: "rtsp://10.0.0.2/b"}]
users: [{username: admin, role: viewer, password_hash: y}]
map: {tile_url: "http://other/{z}/{x}/{y}.png"}
cluster: {node: n1}
`
	a, err := parseConfig([]byte(before))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseConfig([]byte(after))
	if err != nil {
		t.Fatal(err)
	}
	got := restartKeys(a, b)
	want := []string{"log.format", "http.address", "http.tls_key", "ingest.read_timeout", "mqtt.address",
		"alarms.device_rate", "store.path", "recordings.keep", "cluster"}
	if !slices.Equal(got, want) {
		t.Errorf("restart keys %v, want %v", got, want)
	}
	if got := restartKeys(a, a); len(got) != 0 {
		t.Errorf("the same file: %v", got)
	}
}

// diffByID tells added, changed and removed entries apart, sorted.
func TestDiffByID(t *testing.T) {
	type e struct{ id, v string }
	got := diffByID([]e{{"a", "1"}, {"b", "1"}, {"c", "1"}}, []e{{"d", "1"}, {"c", "2"}, {"a", "1"}},
		func(x e) string { return x.id })
	if !slices.Equal(got.Added, []string{"d"}) || !slices.Equal(got.Changed, []string{"c"}) || !slices.Equal(got.Removed, []string{"b"}) {
		t.Errorf("diff %+v", got)
	}
}

// A reload reads the TLS files it started with again: a broken one makes
// the file invalid (nothing applied); other files are for a restart.
func TestCheckCertificate(t *testing.T) {
	cert, key, _ := testcert.Write(t)
	started := &fileConfig{HTTP: httpConfig{TLSCert: cert, TLSKey: key}}
	if err := checkCertificate(started, started); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkCertificate(started, started); err == nil || !strings.HasPrefix(err.Error(), "http.tls_cert: ") {
		t.Errorf("a broken certificate: %v", err)
	}
	other := &fileConfig{HTTP: httpConfig{TLSCert: cert + ".new", TLSKey: key}}
	if err := checkCertificate(started, other); err != nil {
		t.Errorf("other files (restart-only): %v", err)
	}
}
