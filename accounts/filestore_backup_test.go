package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// collect runs a backup and returns its files by name, in order.
func collect(t *testing.T, backup func(fn func(RecordsFile) error) error) (map[string]string, []string) {
	t.Helper()
	files := map[string]string{}
	var order []string
	err := backup(func(f RecordsFile) error {
		data, err := io.ReadAll(f.Body)
		if err != nil {
			return err
		}
		if int64(len(data)) != f.Size {
			t.Errorf("%s: %d bytes, said %d", f.Name, len(data), f.Size)
		}
		files[f.Name] = string(data)
		order = append(order, f.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, order
}

// TestFileStoreBackup backs up a records directory whose audit log ends in
// a torn line, writes the files into a new directory, and opens it: the
// audit records, preferences, sessions and tokens come back, the torn line
// and a rewrite's temporary file do not.
func TestFileStoreBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openFile(t, dir)
	rs := sample()
	appendAll(t, s, rs[:3])
	s.write = func(f *os.File, b []byte) (int, error) {
		n, _ := f.Write(b[:len(b)/2])
		return n, errors.New("no space left on device")
	}
	if err := s.AppendAudit(ctx, rs[3]); err == nil {
		t.Fatal("failed write: no error")
	}
	s.write = (*os.File).Write
	if err := s.SetPrefs(ctx, "Duty", json.RawMessage(`{"wall":"2x2"}`)); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	sess := Session{Key: "k-a", Username: "duty", Addr: "10.0.0.5", Created: at, LastSeen: at}
	if err := s.SaveSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	tok := Token{Name: "wall-1", Role: RoleViewer, SHA256: strings.Repeat("ab", 32), Created: at, CreatedBy: "admin"}
	if err := s.SaveToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "prefs.json.123.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	files, order := collect(t, func(fn func(RecordsFile) error) error { return s.Backup(ctx, fn) })
	if got := strings.Join(order[:4], ","); got != "prefs.json,sessions.json,tokens.json,audit.jsonl" {
		t.Errorf("files %v, want prefs, sessions, tokens, audit first", order)
	}
	if _, ok := files["prefs.json.123.tmp"]; ok {
		t.Error("a temporary file is in the backup")
	}
	audit := files[auditFile]
	if strings.Count(audit, "\n") != 3 || !strings.HasSuffix(audit, "\n") {
		t.Errorf("audit log in the backup: %q, want the 3 whole lines", audit)
	}

	// The files, put in a new directory, open as the same records.
	restored := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(restored, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := openFile(t, restored)
	if got := details(query(t, r, AuditQuery{}).Records); got != "2,1,0" {
		t.Errorf("restored audit: %s, want 2,1,0", got)
	}
	if p, err := r.Prefs(ctx, "duty"); err != nil || string(p) != `{"wall":"2x2"}` {
		t.Errorf("restored prefs: %s %v", p, err)
	}
	if ss, err := r.Sessions(ctx); err != nil || len(ss) != 1 || ss[0].Key != "k-a" || ss[0].Addr != "10.0.0.5" {
		t.Errorf("restored sessions: %+v %v", ss, err)
	}
	if ts, err := r.Tokens(ctx); err != nil || len(ts) != 1 || ts[0].Name != "wall-1" || ts[0].SHA256 != tok.SHA256 {
		t.Errorf("restored tokens: %+v %v", ts, err)
	}

	// A closed store's directory reads the same with BackupRecordsDir.
	s.Close()
	if err := s.Backup(ctx, func(RecordsFile) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("backup of a closed store: %v", err)
	}
	offline, _ := collect(t, func(fn func(RecordsFile) error) error { return BackupRecordsDir(dir, fn) })
	for name, data := range files {
		if offline[name] != data {
			t.Errorf("%s differs between the running store's backup and the directory's", name)
		}
	}
	if len(offline) != len(files) {
		t.Errorf("directory backup has %d files, the store's %d", len(offline), len(files))
	}
	if err := BackupRecordsDir(filepath.Join(dir, "missing"), func(RecordsFile) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backup of a missing directory: %v", err)
	}
}
