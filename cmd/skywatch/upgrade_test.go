package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skywatch/skywatch/alarms/boltstore"
)

// TestServeUpgradesFormat1Store runs serve on the committed store file and
// records directory of format 1: it migrates them, starts, and shows the
// incidents and audit records they held. Then a file of a newer format
// stops serve with the message that says what to do.
func TestServeUpgradesFormat1Store(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../alarms/boltstore/testdata/format1.db")
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "alarms.db")
	if err := os.WriteFile(store, data, 0o600); err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(dir, defaultRecordsDir)
	if err := os.CopyFS(records, os.DirFS("../../accounts/testdata/records-format1")); err != nil {
		t.Fatal(err)
	}
	path := writeServeConfig(t, dir, "")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "-config", path}, &logs, &logs) }()
	base := waitForServeAddr(t, &logs)
	get := loginGet(t, base, "admin", "serve-secret")
	for _, c := range []struct{ url, want string }{
		{"/api/incidents?limit=100", "inc-0001"},
		{"/api/incidents?limit=100", "inc-0002"},
		{"/api/incidents?limit=100", "inc-0003"},
		{"/api/incidents/inc-0001", "window forced, owner informed"},
		{"/api/events?device=dev-b2&limit=100", "syn-e039"},
		{"/api/audit?limit=100", "token:wall-1"},
	} {
		body, err := get(base + c.url)
		if err != nil || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %v, no %q in:\n%.600s", c.url, err, c.want, body)
		}
	}
	for _, want := range []string{"migrated the file to a new format", "backup_bytes=", "migrated the directory to a new format"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs say nothing of %q:\n%s", want, logs.String())
		}
	}
	if _, err := os.Stat(boltstore.BackupPath(store, 1)); err != nil {
		t.Errorf("no copy of the format-1 file: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s")
	}

	// The file as a newer Skywatch would leave it.
	db, err := bolt.Open(store, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), fmt.Appendf(nil, "%d", boltstore.FormatVersion+1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	if code := run(context.Background(), []string{"serve", "-config", path}, &out, &out); code != 1 {
		t.Fatalf("serve on a newer file exited %d:\n%s", code, out.String())
	}
	want := fmt.Sprintf("skywatch: store.path: bolt store: open %s: format %d is newer than this Skywatch reads (%d): run the newer Skywatch, or restore a backup taken by this version\n",
		store, boltstore.FormatVersion+1, boltstore.FormatVersion)
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("serve on a newer file said:\n%s\nwant it to end with:\n%s", out.String(), want)
	}
}
