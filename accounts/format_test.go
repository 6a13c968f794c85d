package accounts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/skywatch/skywatch/internal/testredis"
)

// copyRecords1 copies the committed format-1 records directory.
func copyRecords1(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "records")
	if err := os.CopyFS(dir, os.DirFS(records1Dir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRecordsFormat1Migrated(t *testing.T) {
	dir := copyRecords1(t)
	s, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := s.Migration()
	if m == nil {
		t.Fatal("a format-1 directory opened without a migration")
	}
	t.Logf("migration: %+v", *m)
	if m.From != 1 || m.To != RecordsFormatVersion || m.AuditLines != 7 || m.Prefs != 2 || m.Sessions != 3 || m.Tokens != 2 {
		t.Errorf("migration %+v", *m)
	}
	var want recordsDump
	data, err := os.ReadFile(records1Dump)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(dumpRecords(t, s))
	w, _ := json.Marshal(want)
	if !bytes.Equal(got, w) {
		t.Errorf("read back:\n%s\nwant:\n%s", got, w)
	}
	// The log goes on where it was.
	if err := s.AppendAudit(context.Background(), AuditRecord{User: "admin", Action: AuditLogout, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v, _ := os.ReadFile(filepath.Join(dir, FormatFile)); string(v) != strconv.Itoa(RecordsFormatVersion)+"\n" {
		t.Errorf("format file %q", v)
	}
	// Nothing but the format file was added; no file was rewritten.
	for _, name := range []string{prefsFile, sessionsFile, tokensFile} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(records1Dir, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s changed", name)
		}
	}
	s, err = OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Migration() != nil {
		t.Errorf("second open migrated again: %+v", *s.Migration())
	}
	if page, err := s.QueryAudit(context.Background(), AuditQuery{}); err != nil || len(page.Records) != 8 {
		t.Errorf("audit after reopening: %d records, %v", len(page.Records), err)
	}
}

func TestRecordsNewDirStamped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "records")
	s, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Migration() != nil {
		t.Errorf("a new directory migrated: %+v", *s.Migration())
	}
	if v, _ := os.ReadFile(filepath.Join(dir, FormatFile)); string(v) != strconv.Itoa(RecordsFormatVersion)+"\n" {
		t.Errorf("format file %q", v)
	}
}

func TestRecordsNewerFormatRefused(t *testing.T) {
	dir := copyRecords1(t)
	if err := os.WriteFile(filepath.Join(dir, FormatFile), []byte("3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, auditFile))
	_, err := OpenFileStore(dir)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("open a newer directory: %v", err)
	}
	want := "accounts file store: " + dir + ": format 3 is newer than this Skywatch reads (2): run the newer Skywatch, or restore a backup taken by this version"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, auditFile)); !bytes.Equal(before, after) {
		t.Error("the refused directory's log changed")
	}
}

func TestRecordsRedisFormat(t *testing.T) {
	url := testredis.URL(t)
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	ctx := context.Background()
	cfg := RedisConfig{URL: url, KeyPrefix: prefix}
	s, err := OpenRedisStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Migration() != nil {
		t.Errorf("a new prefix migrated")
	}
	// Records as format 1 left them: written by the store, no marker.
	if err := s.AppendAudit(ctx, AuditRecord{User: "admin", Action: AuditLogin, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPrefs(ctx, "admin", json.RawMessage(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.Del(ctx, prefix+"format").Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = OpenRedisStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Migration(); m == nil || m.From != 1 || m.To != RecordsFormatVersion {
		t.Errorf("migration %+v", m)
	}
	if v, _ := s.rdb.HGet(ctx, prefix+"format", "records").Result(); v != strconv.Itoa(RecordsFormatVersion) {
		t.Errorf("records format %q", v)
	}
	if page, err := s.QueryAudit(ctx, AuditQuery{}); err != nil || len(page.Records) != 1 {
		t.Errorf("audit: %+v, %v", page, err)
	}
	if err := s.rdb.HSet(ctx, prefix+"format", "records", RecordsFormatVersion+1).Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = OpenRedisStore(ctx, cfg)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("open newer records: %v", err)
	}
	t.Log(err)
}
