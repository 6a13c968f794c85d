package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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

// rewriteArchive copies a plain tar archive, letting edit change each
// file's content (by name).
func rewriteArchive(t *testing.T, in, out string, edit func(name string, data []byte) []byte) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = edit(hdr.Name, data)
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefuses checks what restore will not do: overwrite a store or
// a records directory, restore a damaged archive or one of a newer format,
// or run beside a server. Each refusal writes nothing.
func TestRestoreRefuses(t *testing.T) {
	dir := t.TempDir()
	path := seedStopped(t, dir, 5)
	good := filepath.Join(dir, "b.tar")
	if code, msg := runCmd("backup", "-config", path, "-out", good); code != 0 {
		t.Fatalf("backup: %s", msg)
	}
	damaged := filepath.Join(dir, "damaged.tar")
	rewriteArchive(t, good, damaged, func(name string, data []byte) []byte {
		if name == archiveStore {
			data[len(data)/2] ^= 0xff
		}
		return data
	})
	newer := func(field string) string {
		out := filepath.Join(dir, "newer-"+field+".tar")
		rewriteArchive(t, good, out, func(name string, data []byte) []byte {
			if name != archiveMeta {
				return data
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			switch field {
			case "archive":
				m["archive_version"] = archiveVersion + 1
			default:
				m["formats"].(map[string]any)[field] = 99
			}
			data, _ = json.Marshal(m)
			return data
		})
		return out
	}
	truncated := filepath.Join(dir, "truncated.tar")
	data, _ := os.ReadFile(good)
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		prepare func(dir string)
		in      string
		want    string
	}{
		{"store exists", func(d string) { os.WriteFile(filepath.Join(d, "alarms.db"), nil, 0o600) }, good, "store.path " + "%s/alarms.db exists"},
		{"records not empty", func(d string) {
			os.MkdirAll(filepath.Join(d, defaultRecordsDir), 0o700)
			os.WriteFile(filepath.Join(d, defaultRecordsDir, "audit.jsonl"), []byte("x\n"), 0o600)
		}, good, "store.records_dir %s/" + defaultRecordsDir + " is not empty"},
		{"damaged", nil, damaged, "store.db: checksum mismatch"},
		{"truncated", nil, truncated, "truncated.tar"},
		{"newer store", nil, newer("store"), "store format 99, this Skywatch reads up to"},
		{"newer records", nil, newer("records"), "records format 99"},
		{"newer archive", nil, newer("archive"), "archive format 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			p := writeServeConfig(t, d, "")
			if tc.prepare != nil {
				tc.prepare(d)
			}
			before := listTree(t, d)
			code, msg := runCmd("restore", "-config", p, "-in", tc.in)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, d)
			}
			if code != 1 || !strings.Contains(msg, want) {
				t.Fatalf("restore: exit %d, want 1 and %q in:\n%s", code, want, msg)
			}
			if after := listTree(t, d); after != before {
				t.Errorf("a refused restore changed the directory:\nbefore %s\nafter  %s", before, after)
			}
			t.Log(strings.TrimSpace(msg))
		})
	}

	t.Run("server running", func(t *testing.T) {
		d := t.TempDir()
		p := writeServeConfig(t, d, "")
		srv := startServing(t, p)
		defer srv.stop()
		code, msg := runCmd("restore", "-config", p, "-in", good)
		if code != 1 || !strings.Contains(msg, "answers on "+filepath.Join(d, defaultControlSocket)+": stop it first") {
			t.Fatalf("restore beside a server: %d\n%s", code, msg)
		}
	})
}

// listTree names the files under dir with their sizes.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%d ", strings.TrimPrefix(p, dir), info.Size())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
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

// TestControlSocket checks the socket's life: mode 0600, a stale socket
// file replaced, a live one or a file that is not a socket refused, one
// backup at a time, a bounded number of connections, removal on Close.
func TestControlSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.sock")
	logger, _ := newLogger(logConfig{}, io.Discard)

	// A socket file left behind by a server that died.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	release := make(chan struct{})
	started := make(chan struct{}, 1)
	backup := func(ctx context.Context, w io.Writer) (*manifest, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		_, err := w.Write([]byte("archive"))
		return &manifest{Kind: archiveKind, Events: 7}, err
	}
	c, err := listenControl(path, backup, logger)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer c.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v, want mode 0600", st, err)
	}
	if _, err := listenControl(path, backup, logger); err == nil || !strings.Contains(err.Error(), "another Skywatch (pid") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	notSocket := filepath.Join(dir, "file")
	os.WriteFile(notSocket, nil, 0o600)
	if _, err := listenControl(notSocket, backup, logger); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("over a plain file: %v", err)
	}

	// One backup at a time.
	first := make(chan error, 1)
	var got bytes.Buffer
	go func() {
		_, err := askControl(context.Background(), path, "backup", &got)
		first <- err
	}()
	<-started
	if _, err := askControl(context.Background(), path, "backup", io.Discard); err == nil || !strings.Contains(err.Error(), errBackupBusy.Error()) {
		t.Fatalf("second backup at once: %v", err)
	}
	close(release)
	if err := <-first; err != nil || got.String() != "archive" {
		t.Fatalf("first backup: %v %q", err, got.String())
	}

	// Connections beyond the bound are closed at once; idle ones time
	// out (controlRequestTimeout), so they are not waited for here.
	var idle []net.Conn
	for range controlConns {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, conn)
	}
	for deadline := time.Now().Add(5 * time.Second); len(c.slots) < controlConns; {
		if time.Now().After(deadline) {
			t.Fatalf("the server took %d of %d connections", len(c.slots), controlConns)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Closed before or after the request is written, depending on timing.
	if _, err := askControl(context.Background(), path, "ping", io.Discard); err == nil || errors.Is(err, errNoServer) {
		t.Errorf("connection past the bound: %v", err)
	}
	for _, conn := range idle {
		conn.Close()
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := askControl(context.Background(), path, "ping", io.Discard); !errors.Is(err, errNoServer) {
		t.Errorf("after Close: %v, want errNoServer", err)
	}
}

// TestControlSocketSetting: the socket defaults to beside the store, can be
// moved or turned off, and is refused with Redis.
func TestControlSocketSetting(t *testing.T) {
	base := "users:\n  - username: a\n    role: admin\n    password_hash: \"$2a$04$abcdefghijklmnopqrstuu5Wn1Hh3Q2yv7p8wVbOQY0g2c1T7y1nG\"\n"
	cases := []struct{ store, want, err string }{
		{"store:\n  path: /data/alarms.db\n", "/data/skywatch.sock", ""},
		{"store:\n  path: /data/alarms.db\n  control_socket: /run/sw.sock\n", "/run/sw.sock", ""},
		{"store:\n  path: /data/alarms.db\n  control_socket: \"off\"\n", "", ""},
		{"store:\n  redis_url: redis://127.0.0.1:6379/0\n", "", ""},
		{"store:\n  redis_url: redis://127.0.0.1:6379/0\n  control_socket: /run/sw.sock\n", "", "store.control_socket:"},
	}
	for _, tc := range cases {
		fc, err := parseConfig([]byte(tc.store + base))
		if err != nil {
			t.Fatal(err)
		}
		s, err := buildSettings(fc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.store, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.store, err)
		}
		if s.store.control != tc.want {
			t.Errorf("%q: control socket %q, want %q", tc.store, s.store.control, tc.want)
		}
	}
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

// TestControlSocketPeer: a peer that is neither the server's user nor root
// gets no answer, even through a socket whose mode would let it in. As
// root, the peer is python3 run as nobody; otherwise the server pretends
// to run as another user.
func TestControlSocketPeer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peer credentials are checked on Linux")
	}
	var logs syncBuffer
	logger, _ := newLogger(logConfig{}, &logs)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.sock")
	c, err := listenControl(path, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := pingControl(path); err != nil {
		t.Fatalf("ping as the server's user: %v", err)
	}
	if os.Geteuid() != 0 {
		c.mu.Lock()
		c.uid = os.Getuid() + 1
		c.mu.Unlock()
		if _, err := pingControl(path); err == nil {
			t.Fatal("a peer of another user was answered")
		}
		return
	}
	// The system's python3, which nobody may run (not one under /root).
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3 to connect as another user")
	}
	// Open the way for nobody: the directories and the socket itself.
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	ask := func(cred *syscall.Credential) string {
		cmd := exec.Command(python, "-c", `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
data = b""
try:
    s.sendall(b"ping\n")
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except (ConnectionResetError, BrokenPipeError):
    pass
print(len(data), data[:1].decode())`, path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python3 as %+v: %v\n%s", cred, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := ask(nil); !strings.HasSuffix(got, " k") {
		t.Fatalf("root's ping: %q, want a done frame", got)
	}
	if got := ask(&syscall.Credential{Uid: 65534, Gid: 65534}); got != "0" {
		t.Fatalf("nobody's ping: %q, want nothing", got)
	}
	if !strings.Contains(logs.String(), "runs as uid 65534") {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}
}
