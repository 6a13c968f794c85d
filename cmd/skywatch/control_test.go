package main

import (
	"bytes"
	"context"
	"errors"
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

	"go.uber.org/goleak"
)

// TestControlSocket checks the socket's life: mode 0600, a stale socket
// file replaced, a live one or a file that is not a socket refused, one
// backup at a time, a bounded number of connections, removal on Close.
func TestControlSocket(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
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
