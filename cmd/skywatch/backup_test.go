package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
	"github.com/skywatch/skywatch/alarms"
	"github.com/skywatch/skywatch/alarms/boltstore"
)

// runCmd runs a skywatch command and returns its exit code and output.
func runCmd(args ...string) (int, string) {
	var out syncBuffer
	code := run(context.Background(), args, &out, &out)
	return code, out.String()
}

// seedStopped writes a store of n events and records (audit, a session,
// preferences, a token) in dir as a stopped server leaves them, with the
// config that names them.
func seedStopped(t *testing.T, dir string, n int) string {
	t.Helper()
	path := writeServeConfig(t, dir, "")
	st, err := boltstore.Open(filepath.Join(dir, "alarms.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		e := &alarms.Event{ID: fmt.Sprintf("e-%d", i), Device: "d1", Class: alarms.ClassAlarm, Qualifier: alarms.QualifierNew, ReceivedAt: time.Now()}
		if _, err := st.AppendEvent(ctx, e, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rec, err := accounts.OpenFileStore(filepath.Join(dir, defaultRecordsDir))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := rec.AppendAudit(ctx, accounts.AuditRecord{Time: at.Add(time.Duration(i) * time.Second), User: "duty", Action: "login", Outcome: "ok", Detail: fmt.Sprint("record ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.SetPrefs(ctx, "duty", json.RawMessage(`{"wall":"3x3"}`)); err != nil {
		t.Fatal(err)
	}
	if err := rec.SaveSession(ctx, accounts.Session{Key: "k-1", Username: "duty", Created: at, LastSeen: at}); err != nil {
		t.Fatal(err)
	}
	if err := rec.SaveToken(ctx, accounts.Token{Name: "wall", Role: accounts.RoleViewer, SHA256: strings.Repeat("cd", 32), Created: at}); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBackupStoppedRoundTrip backs up the files of a stopped server and
// restores them elsewhere: events, audit records, sessions, preferences
// and tokens all come back.
func TestBackupStoppedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := seedStopped(t, dir, 50)
	out := filepath.Join(dir, "b.tar")
	code, msg := runCmd("backup", "-config", path, "-out", out)
	if code != 0 || !strings.Contains(msg, "taken from the files") || !strings.Contains(msg, "(50 events)") {
		t.Fatalf("backup: %d\n%s", code, msg)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v %v, want mode 0600", st, err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".b.tar.*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	// Restored with a config whose store path is relative, as the
	// example's, from the directory the unit runs Skywatch in.
	dir2 := t.TempDir()
	path2 := filepath.Join(t.TempDir(), "relative.yaml")
	relative := strings.Replace(string(must(os.ReadFile(writeServeConfig(t, dir2, "")))), filepath.Join(dir2, "alarms.db"), "alarms.db", 1)
	if err := os.WriteFile(path2, []byte(relative), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, msg := runCmd("backup", "-config", path2, "-out", filepath.Join(dir2, "x.tar")); code != 1 || !strings.Contains(msg, "start from -dir") {
		t.Fatalf("backup of a relative store path that is not there: %d\n%s", code, msg)
	}
	code, msg = runCmd("restore", "-config", path2, "-dir", dir2, "-in", out)
	if code != 0 || !strings.Contains(msg, "systemctl start skywatch") || !strings.Contains(msg, "-> "+filepath.Join(dir2, "alarms.db")) {
		t.Fatalf("restore: %d\n%s", code, msg)
	}
	for _, p := range []string{filepath.Join(dir2, "alarms.db"), filepath.Join(dir2, defaultRecordsDir, "audit.jsonl")} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", p, st, err)
		}
	}
	st, err := boltstore.Open(filepath.Join(dir2, "alarms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, err := st.Events(context.Background(), alarms.EventQuery{Limit: 1000})
	if err != nil || len(page.Events) != 50 {
		t.Fatalf("restored store: %d events, %v", len(page.Events), err)
	}
	rec, err := accounts.OpenFileStore(filepath.Join(dir2, defaultRecordsDir))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	if p, err := rec.QueryAudit(ctx, accounts.AuditQuery{}); err != nil || len(p.Records) != 3 || p.Records[0].Detail != "record 2" {
		t.Errorf("restored audit: %+v %v", p.Records, err)
	}
	if p, err := rec.Prefs(ctx, "duty"); err != nil || string(p) != `{"wall":"3x3"}` {
		t.Errorf("restored prefs: %s %v", p, err)
	}
	if ss, err := rec.Sessions(ctx); err != nil || len(ss) != 1 || ss[0].Key != "k-1" {
		t.Errorf("restored sessions: %+v %v", ss, err)
	}
	if ts, err := rec.Tokens(ctx); err != nil || len(ts) != 1 || ts[0].Name != "wall" {
		t.Errorf("restored tokens: %+v %v", ts, err)
	}
}

// TestBackupRedisRefused: with Redis, backup and restore refuse and say
// how to back up Redis, without reaching it.
func TestBackupRedisRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(string(must(os.ReadFile(writeServeConfig(t, dir, "")))),
		"  path: "+filepath.Join(dir, "alarms.db"), "  redis_url: redis://127.0.0.1:1/0", 1)
	path := filepath.Join(dir, "redis.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"backup", "-config", path, "-out", filepath.Join(dir, "b.tar")},
		{"restore", "-config", path, "-in", filepath.Join(dir, "b.tar")},
	} {
		code, msg := runCmd(args...)
		if code != 1 {
			t.Fatalf("%s with Redis: exit %d\n%s", args[0], code, msg)
		}
		for _, want := range []string{"appendonly yes", "BGSAVE", "dump.rdb", "--rdb", "BGREWRITEAOF", "appenddirname", "redis_key_prefix"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: the advice lacks %q:\n%s", args[0], want, msg)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "b.tar")); !errors.Is(err, os.ErrNotExist) {
		t.Error("backup with Redis wrote a file")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// archiveManifest reads the manifest of an archive, checking it.
func archiveManifest(t *testing.T, name string) *manifest {
	t.Helper()
	m, err := readArchive(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBackupOfFormat1Files backs up the committed store file and records
// directory of format 1 as a stopped server left them: the manifest says
// format 1, and a server started on the restored copy migrates it and
// shows what it held.
func TestBackupOfFormat1Files(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("../../alarms/boltstore/testdata/format1.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alarms.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, defaultRecordsDir), os.DirFS("../../accounts/testdata/records-format1")); err != nil {
		t.Fatal(err)
	}
	path := writeServeConfig(t, dir, "")
	out := filepath.Join(dir, "old.tar.gz")
	if code, msg := runCmd("backup", "-config", path, "-out", out); code != 0 {
		t.Fatalf("backup: %s", msg)
	}
	if m := archiveManifest(t, out); m.Formats != (archiveFormats{Store: 1, Records: 1}) || m.TakenBy != "files" {
		t.Fatalf("manifest of format-1 files: formats %+v, taken by %s", m.Formats, m.TakenBy)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "alarms.db")); !bytes.Equal(got, data) {
		t.Fatal("backup changed the stopped server's store file")
	}

	dir2 := t.TempDir()
	path2 := writeServeConfig(t, dir2, "")
	if code, msg := runCmd("restore", "-config", path2, "-in", out); code != 0 {
		t.Fatalf("restore: %s", msg)
	}
	srv := startServing(t, path2)
	get := loginGet(t, srv.base, "admin", "serve-secret")
	for _, c := range []struct{ url, want string }{
		{"/api/incidents?limit=100", "inc-0001"},
		{"/api/audit?limit=100", "token:wall-1"},
	} {
		if body, err := get(srv.base + c.url); err != nil || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %v, no %q in:\n%.600s", c.url, err, c.want, body)
		}
	}
	if !strings.Contains(srv.logs.String(), "migrated the file to a new format") {
		t.Errorf("the restored format-1 store was not migrated:\n%s", srv.logs)
	}

	// A backup of the running server now says the current formats.
	out2 := filepath.Join(dir2, "new.tar")
	if code, msg := runCmd("backup", "-config", path2, "-out", out2); code != 0 {
		t.Fatalf("backup: %s", msg)
	}
	want := archiveFormats{Store: boltstore.FormatVersion, Records: accounts.RecordsFormatVersion}
	if m := archiveManifest(t, out2); m.Formats != want || m.TakenBy != "server" {
		t.Errorf("manifest of the running server: formats %+v, taken by %s; want %+v by server", m.Formats, m.TakenBy, want)
	}
}

// TestBackupLeavesNoHalfArchive: a backup that fails part way (the server
// fails after sending half an archive) leaves nothing under -out, not even
// its temporary file, and an older archive of that name untouched. A
// server holding the store without a control socket is named.
func TestBackupLeavesNoHalfArchive(t *testing.T) {
	dir := t.TempDir()
	path := seedStopped(t, dir, 5)
	out := filepath.Join(dir, "b.tar.gz")
	if err := os.WriteFile(out, []byte("older archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger, _ := newLogger(logConfig{}, io.Discard)
	c, err := listenControl(filepath.Join(dir, defaultControlSocket), func(ctx context.Context, w io.Writer) (*manifest, error) {
		if _, err := w.Write(bytes.Repeat([]byte("x"), 3*controlFrame)); err != nil {
			return nil, err
		}
		return nil, errors.New("disk on fire")
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	code, msg := runCmd("backup", "-config", path, "-out", out)
	c.Close()
	if code != 1 || !strings.Contains(msg, "disk on fire") {
		t.Fatalf("backup: exit %d, want 1 and the server's reason:\n%s", code, msg)
	}
	if data, _ := os.ReadFile(out); string(data) != "older archive" {
		t.Errorf("the older archive was touched: %q", data)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".b.tar.gz.*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	// A server without a control socket holds the store.
	cfg := strings.Replace(string(must(os.ReadFile(path))), "store:\n", "store:\n  control_socket: \"off\"\n", 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServing(t, path)
	code, msg = runCmd("backup", "-config", path, "-out", out)
	srv.stop()
	if code != 1 || !strings.Contains(msg, "does not answer on its control socket (store.control_socket is off)") {
		t.Fatalf("backup beside a server without a socket: exit %d\n%s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, defaultControlSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control_socket off, yet a socket: %v", err)
	}
}
