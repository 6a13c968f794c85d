package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/hardware"
)

// floodDevices is the devices: section of n devices flood-000 ... with
// plain passwords, and the simulator's fleet of them.
func floodDevices(n int) (string, []hardware.SimDevice) {
	var b strings.Builder
	b.WriteString("devices:\n")
	devs := make([]hardware.SimDevice, n)
	for i := range devs {
		id := fmt.Sprintf("flood-%03d", i)
		devs[i] = hardware.SimDevice{ID: id, Username: id, Password: "pw-" + id, Format: hardware.FormatSkywatch, Behaviour: hardware.BehaviourNormal}
		fmt.Fprintf(&b, "  - id: %s\n    password: pw-%s\n", id, id)
	}
	return b.String(), devs
}

// serving is a serve run in this process.
type serving struct {
	base, broker string
	logs         *syncBuffer
	stop         func()
}

// startServing runs serve -config path until stop.
func startServing(t *testing.T, path string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", path}, logs, logs) }()
	s := &serving{logs: logs}
	s.base = waitForServeAddr(t, logs)
	m := regexp.MustCompile(`mqtt=(127\.0\.0\.1:\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		cancel()
		t.Fatalf("no broker address in the log:\n%s", logs)
	}
	s.broker = "tcp://" + m[1]
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exited %d\n%s", code, logs)
				}
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop within 20 s")
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// ackedEvent is an event whose PUBACK arrived, and when.
type ackedEvent struct {
	device, id string
	at         time.Time
}

// TestBackupDuringFlood takes a backup with `skywatch backup` while many
// devices flood a running server with alarms at QoS 1, restores it into a
// new directory, starts a second server on it and checks that every event
// acknowledged before the backup began is there. (The embedded broker
// sends a PUBACK only once the event is stored.)
func TestBackupDuringFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	const nDevices = 100
	devicesYAML, fleet := floodDevices(nDevices)
	dir := t.TempDir()
	path := writeServeConfig(t, filepath.Join(dir), devicesYAML)
	first := startServing(t, path)

	sim := hardware.NewDeviceSim(hardware.DeviceSimConfig{Broker: first.broker, Devices: fleet, Heartbeat: time.Hour, ConnectRate: 1000})
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() {
		stopSim()
		<-simDone
	}()

	for deadline := time.Now().Add(30 * time.Second); sim.Stats().Connected < nDevices; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d devices connected in 30 s\n%s", sim.Stats().Connected, nDevices, first.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Each device publishes its events one after the other, each waiting
	// for its PUBACK, until told to stop.
	var (
		mu      sync.Mutex
		acked   []ackedEvent
		failed  int
		lastErr error
		stopPub = make(chan struct{})
		wg      sync.WaitGroup
	)
	for _, d := range fleet {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopPub:
					return
				default:
				}
				id := fmt.Sprintf("bk-%s-%d", d.ID, n)
				payload := fmt.Sprintf(`{"id":%q,"class":"alarm","qualifier":"new","zone":"%d"}`, id, n%8+1)
				err := sim.PublishEvent(simCtx, d.ID, []byte(payload))
				at := time.Now()
				mu.Lock()
				if err != nil {
					failed++
					lastErr = err
				} else {
					acked = append(acked, ackedEvent{d.ID, id, at})
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// Flood for a while before the backup...
	deadline := time.Now().Add(30 * time.Second)
	for count() < 2000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if count() == 0 {
		t.Fatalf("no event acknowledged in 30 s\n%s", first.logs)
	}

	// An operator logs in: an audit record and a session, in the records.
	firstSession := loginGet(t, first.base, "admin", "serve-secret")

	// ...take it (the instant before the command starts is the line)...
	out := filepath.Join(dir, "backup.tar.gz")
	var bout, berr syncBuffer
	began := time.Now()
	code := run(context.Background(), []string{"backup", "-config", path, "-out", out}, &bout, &berr)
	took := time.Since(began)
	if code != 0 {
		t.Fatalf("backup exited %d: %s%s", code, bout.String(), berr.String())
	}
	if !strings.Contains(bout.String(), "taken from the running server") {
		t.Errorf("backup did not go through the server:\n%s", bout.String())
	}
	// ...and flood on as long again.
	atBackup := count()
	for count() < 2*atBackup && time.Now().Before(deadline.Add(30*time.Second)) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stopPub)
	wg.Wait()
	first.stop()

	// Restore into a new directory and serve it.
	// The same config (the same users' password hashes, which sessions
	// depend on) with the store in a new directory.
	dir2 := t.TempDir()
	path2 := filepath.Join(dir2, "skywatch.yaml")
	cfg := strings.Replace(string(must(os.ReadFile(path))), filepath.Join(dir, "alarms.db"), filepath.Join(dir2, "alarms.db"), 1)
	if err := os.WriteFile(path2, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var rout, rerr syncBuffer
	if code := run(context.Background(), []string{"restore", "-config", path2, "-in", out}, &rout, &rerr); code != 0 {
		t.Fatalf("restore exited %d: %s%s", code, rout.String(), rerr.String())
	}
	second := startServing(t, path2)
	// The session made on the first server is valid on the second, and
	// its login is in the audit log: the records came back too.
	body, err := firstSession(second.base + "/api/audit?action=login&limit=100")
	if err != nil || !strings.Contains(body, `"action": "login"`) {
		t.Errorf("the first server's session or login record is not in the restored records: %v\n%.500s", err, body)
	}
	get := loginGet(t, second.base, "admin", "serve-secret")
	stored := map[string]bool{}
	for cursor := ""; ; {
		body, err := get(second.base + "/api/events?limit=1000&cursor=" + url.QueryEscape(cursor))
		if err != nil {
			t.Fatalf("events: %v %s", err, body)
		}
		var page struct {
			Events []struct{ Device, ID string } `json:"events"`
			Next   string                        `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			stored[e.Device+"/"+e.ID] = true
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}

	mu.Lock()
	defer mu.Unlock()
	var before, missing, after, afterIn int
	for _, e := range acked {
		in := stored[e.device+"/"+e.id]
		switch {
		case e.at.Before(began):
			before++
			if !in {
				missing++
				if missing <= 5 {
					t.Errorf("event %s of %s, acknowledged %s before the backup began, is not in the restored store",
						e.id, e.device, began.Sub(e.at))
				}
			}
		default:
			after++
			if in {
				afterIn++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events acknowledged before the backup are missing", missing, before)
	}
	if before == 0 || after == 0 {
		t.Errorf("the flood did not surround the backup: %d events acknowledged before it, %d after", before, after)
	}
	t.Logf("%d devices, %d events acknowledged before the backup (%d of them missing), %d after (%d of them restored too: stored before the snapshot, acknowledged after the line), %d publishes failed; backup took %s, restored store holds %d events",
		nDevices, before, missing, after, afterIn, failed, took.Round(time.Millisecond), len(stored))
	if lastErr != nil {
		t.Logf("a failed publish: %v", lastErr)
	}
	t.Logf("backup said:\n%s", bout.String())
}
