package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
)

// BenchmarkBackup measures backup and restore of a store of
// SKYWATCH_BENCH_EVENTS events (default 100,000, from 1,000 devices) and
// 10,000 audit records: through the control socket of a running store,
// from the files of a stopped one, gzipped, and the restore. It reports
// the archive's size and the store's.
//
//	go test -run '^$' -bench BenchmarkBackup -benchtime 3x ./cmd/skywatch
func BenchmarkBackup(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("SKYWATCH_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	path := writeBenchConfig(b, dir)
	seedStart := time.Now()
	seedBench(b, dir, n)
	b.Logf("seeded %d events and 10,000 audit records in %s", n, time.Since(seedStart).Round(time.Millisecond))
	st, _ := os.Stat(filepath.Join(dir, "alarms.db"))
	b.Logf("store file %s", byteSize(st.Size()))

	for _, out := range []string{"b.tar", "b.tar.gz"} {
		b.Run("files/"+out, func(b *testing.B) {
			benchBackup(b, path, filepath.Join(dir, out), "taken from the files")
		})
	}
	b.Run("server/b.tar", func(b *testing.B) {
		defer openBenchApp(b, dir)()
		benchBackup(b, path, filepath.Join(dir, "live.tar"), "taken from the running server")
	})
	b.Run("restore/b.tar.gz", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			d := filepath.Join(b.TempDir(), strconv.Itoa(i))
			if err := os.MkdirAll(d, 0o700); err != nil {
				b.Fatal(err)
			}
			p := writeBenchConfig(b, d)
			if code, msg := runCmd("restore", "-config", p, "-in", filepath.Join(dir, "b.tar.gz")); code != 0 {
				b.Fatal(msg)
			}
		}
	})
}

func benchBackup(b *testing.B, config, out, want string) {
	for b.Loop() {
		code, msg := runCmd("backup", "-config", config, "-out", out)
		if code != 0 || !strings.Contains(msg, want) {
			b.Fatalf("backup: %d %s", code, msg)
		}
	}
	st, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
}

// writeBenchConfig is writeServeConfig without a test's helpers.
func writeBenchConfig(b *testing.B, dir string) string {
	cfg := fmt.Sprintf("store:\n  path: %s\nusers:\n  - username: admin\n    role: admin\n    password_hash: \"$2a$04$abcdefghijklmnopqrstuu5Wn1Hh3Q2yv7p8wVbOQY0g2c1T7y1nG\"\n",
		filepath.Join(dir, "alarms.db"))
	p := filepath.Join(dir, "skywatch.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// seedBench fills dir's store with n events, appended by 256 writers at
// once as a flood would, and its records with 10,000 audit records.
func seedBench(b *testing.B, dir string, n int) {
	st, err := boltstore.Open(filepath.Join(dir, "alarms.db"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	classes := []alarms.Class{alarms.ClassAlarm, alarms.ClassPanic, alarms.ClassTrouble, alarms.ClassTamper}
	start := time.Now().Add(-30 * 24 * time.Hour)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for i := range next {
				e := &alarms.Event{ID: fmt.Sprintf("ev-%d", i), Device: fmt.Sprintf("panel-%04d", i%1000), Area: fmt.Sprintf("village-%02d", i%40),
					Class: classes[i%len(classes)], Qualifier: alarms.QualifierNew, Zone: strconv.Itoa(i%8 + 1), Code: "130",
					ReceivedAt: start.Add(time.Duration(i) * 25 * time.Second)}
				if _, err := st.AppendEvent(ctx, e, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	// The audit log written as AppendAudit writes it, without an fsync
	// per record.
	var audit bytes.Buffer
	for i := range 10000 {
		r := accounts.AuditRecord{Time: start.Add(time.Duration(i) * time.Minute), User: "duty", Role: "operator", Addr: "10.0.0.5",
			Action: "view", Target: "camera:gate-" + strconv.Itoa(i%100), Outcome: "ok"}
		line, _ := json.Marshal(r)
		audit.Write(append(line, '\n'))
	}
	records := filepath.Join(dir, defaultRecordsDir)
	if err := os.MkdirAll(records, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(records, "audit.jsonl"), audit.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	rec, err := accounts.OpenFileStore(records)
	if err != nil {
		b.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		b.Fatal(err)
	}
}

// openBenchApp opens dir's store and records as serve does and serves the
// control socket beside them, until the function it returns is called.
func openBenchApp(b *testing.B, dir string) func() {
	logger, _ := newLogger(logConfig{}, io.Discard)
	st, err := boltstore.Open(filepath.Join(dir, "alarms.db"))
	if err != nil {
		b.Fatal(err)
	}
	rec, err := accounts.OpenFileStore(filepath.Join(dir, defaultRecordsDir))
	if err != nil {
		b.Fatal(err)
	}
	a := &app{logger: logger, store: st, records: rec}
	if err := a.startControl(filepath.Join(dir, defaultControlSocket)); err != nil {
		b.Fatal(err)
	}
	return func() {
		a.control.Close()
		st.Close()
		rec.Close()
	}
}
