package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The control socket (store.control_socket) lets `skywatch backup` ask the
// running server for a backup: while serve runs, the store file is locked
// and only the server can read it consistently.
//
// Protocol: the client sends one line, "backup" or "ping"; the server
// answers with frames of a type byte, a 4-byte big-endian length and that
// many bytes: 'd' a piece of the archive, then one 'k' (done: the manifest
// as JSON, or for ping the server's identity) or 'e' (failed: the reason).
// A client that sees the connection end before 'k' has no backup.
//
// Only the server's own user (or root) may connect: the socket is made
// mode 0600 and each peer's credentials are checked. Those users can read
// the data directory anyway, so the limits below guard against mistakes
// (a script looping on backup), not against strangers, and are fixed.
const (
	// controlConns is how many connections are served at once; more are
	// closed at once.
	controlConns = 4
	// controlRequestTimeout bounds the wait for a client's request line.
	controlRequestTimeout = 5 * time.Second
	// controlWriteTimeout bounds one frame's write: a client that stops
	// reading for this long loses its backup, and the store's read
	// transaction ends.
	controlWriteTimeout = time.Minute
	// controlFrame is the largest frame of archive data.
	controlFrame = 256 << 10
	// controlDialTimeout bounds a client's connection attempt.
	controlDialTimeout = 2 * time.Second
	// maxSocketPath is the longest path of a unix socket (sun_path is 108
	// bytes on Linux, with its terminating zero).
	maxSocketPath = 107
)

// Frame types.
const (
	frameData  = 'd'
	frameDone  = 'k'
	frameError = 'e'
)

// errBackupBusy is the answer to a backup asked while another runs.
var errBackupBusy = errors.New("a backup is already running: try again when it has finished")

// controlIdentity is the answer to ping, and how a second server that
// finds the socket alive names the first.
type controlIdentity struct {
	PID  int    `json:"pid"`
	Node string `json:"node"`
}

// controlServer serves the control socket.
type controlServer struct {
	path   string
	ln     *net.UnixListener
	backup func(ctx context.Context, w io.Writer) (*manifest, error)
	logger *slog.Logger
	// uid is the user answered besides root: this process's.
	uid int

	slots  chan struct{} // a token per connection being served
	busy   chan struct{} // a token while a backup runs
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// listenControl makes the control socket at path and serves it until
// Close. A socket file left by a server that died is replaced; a socket
// that a live server answers on, or a path that is not a socket, is an
// error naming store.control_socket.
func listenControl(path string, backup func(ctx context.Context, w io.Writer) (*manifest, error), logger *slog.Logger) (*controlServer, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("store.control_socket: %s is longer than the %d bytes a unix socket's path may have: set a shorter one (or off)", path, maxSocketPath)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("store.control_socket: %s exists and is not a socket: move it away or choose another path", path)
		}
		if id, err := pingControl(path); err == nil {
			return nil, fmt.Errorf("store.control_socket: another Skywatch (pid %d on %s) answers on %s: stop it, or give this one another store", id.PID, id.Node, path)
		} else if !errors.Is(err, errNoServer) {
			return nil, fmt.Errorf("store.control_socket: %s: %w", path, err)
		}
		// Left by a server that is gone.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("store.control_socket: remove stale %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("store.control_socket: %w", err)
	}
	// The directory (the data directory, 0750 or 0700) already keeps
	// others out; the mode and the peer check below are for the rest.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("store.control_socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &controlServer{
		path: path, ln: ln, backup: backup, logger: logger, uid: os.Getuid(),
		slots: make(chan struct{}, controlConns), busy: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{},
	}
	c.wg.Go(c.accept)
	return c, nil
}

func (c *controlServer) accept() {
	for {
		conn, err := c.ln.AcceptUnix()
		if err != nil {
			if c.ctx.Err() != nil {
				return // closed
			}
			// Out of file descriptors, say: try again in a while.
			c.logger.Warn("control socket: accept", "error", err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case c.slots <- struct{}{}:
		default:
			conn.Close()
			continue
		}
		if !c.track(conn) {
			conn.Close()
			<-c.slots
			return
		}
		c.wg.Go(func() {
			defer func() { <-c.slots }()
			defer c.untrack(conn)
			c.serve(conn)
		})
	}
}

func (c *controlServer) track(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.conns[conn] = struct{}{}
	return true
}

func (c *controlServer) untrack(conn net.Conn) {
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
	conn.Close()
}

func (c *controlServer) peerUID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uid
}

// serve answers one request.
func (c *controlServer) serve(conn *net.UnixConn) {
	if err := checkPeer(conn, c.peerUID()); err != nil {
		c.logger.Warn("control socket: peer refused", "error", err)
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(controlRequestTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(conn, 64), 64).ReadString('\n')
	if err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	fw := &frameWriter{conn: conn}
	switch strings.TrimSpace(line) {
	case "ping":
		host, _ := os.Hostname()
		_ = fw.finish(json.Marshal(controlIdentity{PID: os.Getpid(), Node: host}))
	case "backup":
		c.serveBackup(fw)
	default:
		_ = fw.fail(fmt.Errorf("unknown request %q", strings.TrimSpace(line)))
	}
}

func (c *controlServer) serveBackup(fw *frameWriter) {
	select {
	case c.busy <- struct{}{}:
		defer func() { <-c.busy }()
	default:
		_ = fw.fail(errBackupBusy)
		return
	}
	start := time.Now()
	bw := bufio.NewWriterSize(fw, controlFrame)
	m, err := c.backup(c.ctx, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		c.logger.Warn("backup through the control socket failed", "error", err)
		_ = fw.fail(err)
		return
	}
	c.logger.Info("backup taken through the control socket", "events", m.Events, "bytes", fw.sent, "took", time.Since(start).Round(time.Millisecond))
	_ = fw.finish(json.Marshal(m))
}

// Close stops serving, ends backups in progress and removes the socket.
// It is idempotent.
func (c *controlServer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	err := c.ln.Close() // removes the socket file
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	if err != nil {
		return fmt.Errorf("control socket: close: %w", err)
	}
	return nil
}

// frameWriter sends what is written to it as data frames.
type frameWriter struct {
	conn net.Conn
	sent int64
}

func (f *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), controlFrame)
		if err := f.frame(frameData, p[:k]); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

func (f *frameWriter) frame(kind byte, p []byte) error {
	_ = f.conn.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
	hdr := [5]byte{kind}
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	if _, err := f.conn.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := f.conn.Write(p); err != nil {
		return err
	}
	if kind == frameData {
		f.sent += int64(len(p))
	}
	return nil
}

func (f *frameWriter) finish(p []byte, err error) error {
	if err != nil {
		return f.fail(err)
	}
	return f.frame(frameDone, p)
}

func (f *frameWriter) fail(err error) error { return f.frame(frameError, []byte(err.Error())) }

// errNoServer means no server answers on the control socket: it does not
// exist, or nothing listens on it.
var errNoServer = errors.New("no server answers")

// askControl connects to the control socket at path, sends request and
// copies the data frames to w; it returns the payload of the final frame.
// It returns an error wrapping errNoServer when no server listens.
func askControl(ctx context.Context, path, request string, w io.Writer) ([]byte, error) {
	d := net.Dialer{Timeout: controlDialTimeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%s: %w", path, errNoServer)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, request+"\n"); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	r := bufio.NewReaderSize(conn, controlFrame+5)
	var hdr [5]byte
	for {
		// A server that sends nothing for this long is stuck: give up
		// rather than wait for ever (it gives up on a stuck client alike).
		_ = conn.SetReadDeadline(time.Now().Add(controlWriteTimeout))
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("control socket %s: the server ended the answer early: %w", path, err)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > controlFrame && hdr[0] == frameData || n > maxManifest {
			return nil, fmt.Errorf("control socket %s: frame of %d bytes: not a Skywatch server", path, n)
		}
		switch hdr[0] {
		case frameData:
			if _, err := io.CopyN(w, r, int64(n)); err != nil {
				return nil, fmt.Errorf("control socket %s: %w", path, err)
			}
		case frameDone, frameError:
			p := make([]byte, n)
			if _, err := io.ReadFull(r, p); err != nil {
				return nil, fmt.Errorf("control socket %s: %w", path, err)
			}
			if hdr[0] == frameError {
				return nil, fmt.Errorf("the server at %s: %s", path, p)
			}
			return p, nil
		default:
			return nil, fmt.Errorf("control socket %s: frame type %q: not a Skywatch server", path, hdr[0])
		}
	}
}

// pingControl asks the server on the control socket who it is.
func pingControl(path string) (controlIdentity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), controlRequestTimeout)
	defer cancel()
	var id controlIdentity
	p, err := askControl(ctx, path, "ping", io.Discard)
	if err != nil {
		return id, err
	}
	if err := json.Unmarshal(p, &id); err != nil {
		return id, fmt.Errorf("control socket %s: %w", path, err)
	}
	return id, nil
}
