package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skywatch/skywatch/alarms"
)

// copyFormat1 copies the committed format-1 file into a fresh directory.
func copyFormat1(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(format1File)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "skywatch.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantDump is what the format-1 code read back from its file.
func wantDump(t *testing.T) storeDump {
	t.Helper()
	data, err := os.ReadFile(format1Dump)
	if err != nil {
		t.Fatal(err)
	}
	var d storeDump
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// sameDump fails t unless got and want hold the same (as JSON).
func sameDump(t *testing.T, got, want storeDump) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", " ")
	w, _ := json.MarshalIndent(want, "", " ")
	if bytes.Equal(g, w) {
		return
	}
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Fatalf("read back differs at line %d of the dump: got %q, want %q", i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("read back differs: %d lines, want %d", len(gl), len(wl))
}

// rawFormat reads the format marker of a closed file with bbolt itself.
func rawFormat(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			v = string(b.Get(keyFormat))
		}
		return nil
	})
	return v
}

func TestMigrateFormat1(t *testing.T) {
	path := copyFormat1(t)
	orig, _ := os.ReadFile(path)
	s, err := Open(path, WithClock(format1Clock))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Migration()
	if m == nil {
		t.Fatal("a format-1 file opened without a migration")
	}
	t.Logf("migration: %+v; file %d bytes", *m, len(orig))
	want := Migration{From: 1, To: FormatVersion, Events: 40, DedupKeys: 40, Rejected: 6, Devices: 4, Incidents: 3, OpenIncidents: 2, Units: 3,
		Backup: BackupPath(path, 1), BackupBytes: m.BackupBytes, Took: m.Took}
	if m.Rebuilt != nil || !equalMigration(*m, want) {
		t.Errorf("migration %+v, want %+v", *m, want)
	}
	sameDump(t, dumpStore(t, s), wantDump(t))

	// Dedup keys came through: the same event again is a duplicate.
	ctx := context.Background()
	again := wantDump(t).Log[0]
	again.Offset = ""
	if stored, err := s.AppendEvent(ctx, &again, time.Minute); err != nil || stored {
		t.Errorf("event %s again: stored %v, %v; want a duplicate", again.Key(), stored, err)
	}
	fresh := alarms.Event{ID: "after-migration", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, Device: "dev-a1", Area: "county/east/v1", ReceivedAt: format1Clock()}
	if stored, err := s.AppendEvent(ctx, &fresh, time.Minute); err != nil || !stored || fresh.Offset != "0000000000000029" {
		t.Errorf("a new event: stored %v, offset %s, %v", stored, fresh.Offset, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rawFormat(t, path); got != strconv.Itoa(FormatVersion) {
		t.Errorf("format marker %q, want %d", got, FormatVersion)
	}

	// The copy is the file as it was: format 1, no marker, same records.
	st, err := os.Stat(m.Backup)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != m.BackupBytes || st.Mode().Perm() != 0o600 {
		t.Errorf("backup %d bytes mode %v, migration says %d", st.Size(), st.Mode().Perm(), m.BackupBytes)
	}
	if got := rawFormat(t, m.Backup); got != "" {
		t.Errorf("backup has format marker %q", got)
	}
	bak := filepath.Join(t.TempDir(), "bak.db")
	data, _ := os.ReadFile(m.Backup)
	if err := os.WriteFile(bak, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(bak, WithClock(format1Clock))
	if err != nil {
		t.Fatal(err)
	}
	sameDump(t, dumpStore(t, b), wantDump(t))
	b.Close()

	// A second open does not migrate again.
	s, err = Open(path, WithClock(format1Clock))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Migration() != nil {
		t.Errorf("second open migrated again: %+v", *s.Migration())
	}
	d := dumpStore(t, s)
	if len(d.Events) != 41 || d.Events[0].ID != "after-migration" {
		t.Errorf("after reopening: %d events, newest %q", len(d.Events), d.Events[0].ID)
	}
}

func equalMigration(a, b Migration) bool {
	return a.From == b.From && a.To == b.To && a.Events == b.Events && a.DedupKeys == b.DedupKeys &&
		a.Rejected == b.Rejected && a.Devices == b.Devices && a.Incidents == b.Incidents &&
		a.OpenIncidents == b.OpenIncidents && a.Units == b.Units && a.Undecodable == b.Undecodable &&
		slices.Equal(a.Rebuilt, b.Rebuilt) && a.Backup == b.Backup && a.BackupBytes > 0
}

// breakIndexes damages every derived bucket of a closed format-1 file
// the way a lost write would.
func breakIndexes(t *testing.T, path string) {
	t.Helper()
	updateClosed(t, path, func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketIndex)
		k, _ := idx.Bucket(indexAll).Cursor().Last()
		if err := idx.Bucket(indexAll).Delete(slices.Clone(k)); err != nil {
			return err
		}
		dev := idx.Bucket(indexDevice).Bucket([]byte("dev-a1"))
		k, _ = dev.Cursor().First()
		if err := dev.Delete(slices.Clone(k)); err != nil {
			return err
		}
		// A closed incident left in the open set, an open one's device
		// entry lost.
		if err := tx.Bucket(bucketIncOpen).Put(append(timeKey(format1Base), "inc-0001"...), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIncOpenDevice).Delete(openDeviceKey("dev-b1", alarms.KindResponse)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIncIndex).Put(append(timeKey(format1Base), "inc-0003"...), []byte("x\x00closed\x00alarm\x00response")); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRejectedMeta).Put(keyRejectedCount, make([]byte, 8)); err != nil {
			return err
		}
		rd := tx.Bucket(bucketRejectedDevice).Bucket([]byte("dev-a1"))
		k, _ = rd.Cursor().First()
		return rd.Delete(slices.Clone(k))
	})
}

func TestMigrateRebuildsBrokenIndexes(t *testing.T) {
	// Stamped as format 2, the damaged file is read as it is: the damage
	// shows, so the comparison below can fail.
	broken := copyFormat1(t)
	breakIndexes(t, broken)
	stamp(t, broken, strconv.Itoa(FormatVersion))
	s, err := Open(broken, WithClock(format1Clock))
	if err != nil {
		t.Fatal(err)
	}
	d := dumpStore(t, s)
	s.Close()
	want := wantDump(t)
	if len(d.Events) == len(want.Events) || d.ByDevice["dev-a1"] == want.ByDevice["dev-a1"] || len(d.Open) == len(want.Open) || d.RejByDev["dev-a1"] == want.RejByDev["dev-a1"] {
		t.Fatalf("damage does not show: %d events, dev-a1 %d, %d open, %d rejected of dev-a1", len(d.Events), d.ByDevice["dev-a1"], len(d.Open), d.RejByDev["dev-a1"])
	}

	// As format 1, the migration finds and rebuilds every damaged bucket.
	path := copyFormat1(t)
	breakIndexes(t, path)
	s, err = Open(path, WithClock(format1Clock))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := s.Migration()
	if m == nil {
		t.Fatal("no migration")
	}
	t.Logf("rebuilt %v", m.Rebuilt)
	wantRebuilt := []string{"index", "rejected_device", "rejected_meta", "inc_index", "inc_open", "inc_open_device"}
	if !slices.Equal(m.Rebuilt, wantRebuilt) {
		t.Errorf("rebuilt %v, want %v", m.Rebuilt, wantRebuilt)
	}
	sameDump(t, dumpStore(t, s), want)
	// The rejected count is right again: one more message past a total
	// of 6 drops exactly one.
	dropped, err := s.AddRejected(context.Background(), &alarms.Rejected{Device: "dev-x", Reason: "test", ReceivedAt: format1Clock()}, alarms.RejectedLimits{Total: 6})
	if err != nil || dropped != 1 {
		t.Errorf("add rejected: dropped %d, %v; want 1", dropped, err)
	}
}

// updateClosed runs fn in one write transaction on a closed store file.
func updateClosed(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// stamp writes a format marker into a closed file.
func stamp(t *testing.T, path, v string) {
	t.Helper()
	updateClosed(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyFormat, []byte(v))
	})
}

func TestNewerFormatRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skywatch.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	stamp(t, path, strconv.Itoa(FormatVersion+1))
	before, _ := os.ReadFile(path)
	_, err = Open(path)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("open a newer file: %v, want ErrNewerFormat", err)
	}
	t.Log(err)
	msg := "bolt store: open " + path + ": format 3 is newer than this Skywatch reads (2): run the newer Skywatch, or restore a backup taken by this version"
	if err.Error() != msg {
		t.Errorf("error %q, want %q", err, msg)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the refused file was changed")
	}
	if _, err := os.Stat(BackupPath(path, 3)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused file got a backup copy: %v", err)
	}

	stamp(t, path, "two")
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), `meta format "two" is not a format version`) {
		t.Errorf("open with a bad marker: %v", err)
	}
}

func TestNewFileStamped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "skywatch.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Migration() != nil {
		t.Errorf("a new file migrated: %+v", *s.Migration())
	}
	s.Close()
	if got := rawFormat(t, path); got != strconv.Itoa(FormatVersion) {
		t.Errorf("new file's format %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files beside a new store: %v", ents)
	}

	// A format-1 file that never stored a record (its buckets only) is
	// stamped as it is: there is nothing to keep a copy of.
	empty := filepath.Join(dir, "empty.db")
	db, err := bolt.Open(empty, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1 := &Store{db: db, opts: options{now: time.Now}}
	if err := db.Update(s1.prepare); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(empty)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Migration() != nil {
		t.Errorf("an empty format-1 file migrated: %+v", *s.Migration())
	}
}

// unstamp removes the format marker of a closed file: format 1 again.
func unstamp(t *testing.T, path string, more func(tx *bolt.Tx) error) {
	t.Helper()
	updateClosed(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Delete(keyFormat); err != nil {
			return err
		}
		return more(tx)
	})
}

// Two open incidents of one device and kind (which the engine does not
// make): the migration keeps the one the file names, or else the newest.
func TestMigrateTwoOpenIncidentsOfADevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "skywatch.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, id := range []string{"inc-b-newer", "inc-a-older"} {
		created := format1Base.Add(time.Duration(1-i) * time.Hour)
		inc := alarms.Incident{ID: id, Kind: alarms.KindResponse, State: alarms.StateNew, Device: "d1", Created: created, Version: 1,
			Timeline: []alarms.TimelineEntry{{At: created, Action: "open"}}}
		if err := s.SaveIncidents(ctx, []alarms.Incident{inc}, ""); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	openOf := func(t *testing.T) (string, []string) {
		t.Helper()
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Migration() == nil {
			t.Fatal("no migration")
		}
		inc, err := s.OpenIncident(ctx, "d1", alarms.KindResponse)
		if err != nil {
			t.Fatal(err)
		}
		return inc.ID, s.Migration().Rebuilt
	}
	unstamp(t, path, func(*bolt.Tx) error { return nil })
	if id, rebuilt := openOf(t); id != "inc-a-older" || len(rebuilt) != 0 {
		t.Errorf("named one: open incident %s, rebuilt %v; want inc-a-older kept", id, rebuilt)
	}
	unstamp(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIncOpenDevice).Delete(openDeviceKey("d1", alarms.KindResponse))
	})
	if id, rebuilt := openOf(t); id != "inc-b-newer" || !slices.Equal(rebuilt, []string{"inc_open_device"}) {
		t.Errorf("none named: open incident %s, rebuilt %v; want inc-b-newer", id, rebuilt)
	}
}
