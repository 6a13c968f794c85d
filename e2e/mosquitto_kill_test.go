package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMosquittoKill measures, it does not guarantee: Mosquitto SIGKILLed
// in the middle of a paced flood and started again at once on its
// persistence file, with its default autosave (every 1800 s) and with the
// settings the README recommends (autosave_on_changes true,
// autosave_interval 1). It logs how many events that Mosquitto had
// acknowledged to devices never reached the store. Set
// SKYWATCH_E2E_MOSQUITTO_KILL=1 to run it (about a minute per setting).
func TestMosquittoKill(t *testing.T) {
	if os.Getenv("SKYWATCH_E2E_MOSQUITTO_KILL") == "" {
		t.Skip("a measurement: set SKYWATCH_E2E_MOSQUITTO_KILL=1 to run it")
	}
	bin := buildSkywatch(t)
	t.Run("default", func(t *testing.T) { measureMosquittoKill(t, bin, "") })
	t.Run("recommended", func(t *testing.T) {
		measureMosquittoKill(t, bin, "autosave_on_changes true\nautosave_interval 1\n")
	})
}

// mosquittoServer is a private Mosquitto with a persistence file, which
// can be killed and started again on the same port and file.
type mosquittoServer struct {
	t    *testing.T
	bin  string
	conf string
	addr string
	p    *proc
}

func startPersistentMosquitto(t *testing.T, extra string) *mosquittoServer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 100
set_tcp_nodelay true
persistence true
persistence_location %s/
# Run as root (tests in CI are), Mosquitto would switch to the user
# mosquitto, which cannot write the test's directory: stay.
user root
connection_messages false
log_dest stderr
log_type error
log_type warning
%s`, port, dir, extra)
	m := &mosquittoServer{t: t, bin: requireProgram(t, "mosquitto", "mosquitto"),
		conf: filepath.Join(dir, "mosquitto.conf"), addr: fmt.Sprintf("127.0.0.1:%d", port)}
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	return m
}

func (m *mosquittoServer) start() {
	m.t.Helper()
	m.p = startProc(m.t, "mosquitto", m.bin, "-c", m.conf)
	waitListening(m.t, m.p, m.addr)
}

func measureMosquittoKill(t *testing.T, bin, extra string) {
	m := startPersistentMosquitto(t, extra)
	broker := "tcp://" + m.addr
	st := envRedisStore(t)
	devices := deviceIDs(nolossDevices)
	sw := newSkywatchProc(t, bin, writeConfig(t, swConfig{broker: broker, store: st.yaml, devices: devices}))
	sw.start()
	sw.waitReady()
	const perDevice = 60
	f := startFlood(t, &flood{broker: broker, devices: devices, perDevice: perDevice, interval: 100 * time.Millisecond})
	want := f.want()
	prog := &progress{sw: sw}
	if err := prog.waitFor(func() int64 { return prog.stored(t) }, want/3, nil); err != nil {
		t.Fatalf("waiting for a third of the flood: %v", err)
	}
	ackedAtKill := f.total()
	m.p.kill()
	killed := time.Now()
	m.start()
	t.Logf("Mosquitto SIGKILLed with %d of %d events acknowledged, back after %v",
		ackedAtKill, want, time.Since(killed).Round(time.Millisecond))
	if !f.wait(t, nolossTimeout) {
		return
	}
	// Wait until the store stops growing.
	last, since := int64(-1), time.Now()
	for time.Since(since) < 5*time.Second && last < want {
		time.Sleep(500 * time.Millisecond)
		if n := readStored(t, st).count(); n != last {
			last, since = n, time.Now()
		}
	}
	s := readStored(t, st)
	lost := 0
	for _, d := range devices {
		for k := range perDevice {
			if s.byKey[fmt.Sprintf("%s/n-%d", d, k)] == 0 {
				lost++
			}
		}
	}
	t.Logf("settings %q: %d of %d events acknowledged by Mosquitto were never stored", extra, lost, want)
}
