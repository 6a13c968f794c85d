package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// TestBackupWhileWriting takes a snapshot while writers go on, and checks
// that it is a store file holding every event stored before Backup was
// called, and as many events as it says.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "alarms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN := func(prefix string, n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				e := &alarms.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
				if _, err := s.AppendEvent(ctx, e, 0); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	appendN("before", 200)

	stop := make(chan struct{})
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			appendN(fmt.Sprintf("during%d", i), 10)
		}
	}()
	var buf bytes.Buffer
	var events int
	var size int64
	err = s.Backup(ctx, func(snap Snapshot) error {
		events, size = snap.Events(), snap.Size()
		_, err := snap.WriteTo(&buf)
		return err
	})
	close(stop)
	<-writing
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != size {
		t.Fatalf("snapshot wrote %d bytes, said %d", buf.Len(), size)
	}
	copyPath := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	found, total := 0, 0
	for cursor := ""; ; {
		page, err := c.Events(ctx, alarms.EventQuery{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			total++
			if len(e.ID) > 7 && e.ID[:7] == "before-" {
				found++
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if found != 200 || total != events {
		t.Fatalf("copy holds %d of the 200 events stored before the backup, %d in all; the snapshot said %d", found, total, events)
	}
	t.Logf("snapshot of %d events, %d bytes", events, size)

	// A closed store refuses.
	s.Close()
	if err := s.Backup(ctx, func(Snapshot) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("backup of a closed store: %v", err)
	}
}

// TestBackupFile reads a store file that nobody holds, without changing
// it, and meets the lock of one that is open.
func TestBackupFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alarms.db")
	if err := BackupFile(path, 100*time.Millisecond, func(Snapshot) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup of a missing file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("backup of a missing file created it")
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e := &alarms.Event{ID: "x", Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
	if _, err := s.AppendEvent(context.Background(), e, 0); err != nil {
		t.Fatal(err)
	}
	if err := BackupFile(path, 100*time.Millisecond, func(Snapshot) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Fatalf("backup of a file held open: %v, want ErrLocked", err)
	}
	s.Close()
	before, _ := os.ReadFile(path)
	var buf bytes.Buffer
	err = BackupFile(path, time.Second, func(snap Snapshot) error {
		if snap.Events() != 1 {
			t.Errorf("snapshot has %d events, want 1", snap.Events())
		}
		_, err := snap.WriteTo(&buf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("BackupFile changed the file")
	}
}
