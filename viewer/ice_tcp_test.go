package viewer

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// dialFrom connects to addr from a loopback source address of its own.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin tells whether the server closes c within d (it reads EOF or
// a reset, not a timeout).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestICETCPConnectionLimits: connections from peers that never begin ICE
// are bounded in number, in all and per address, and closed after the
// handshake timeout; then they no longer count.
func TestICETCPConnectionLimits(t *testing.T) {
	cfg := loopbackConfig().withDefaults()
	cfg.TCPConnections, cfg.TCPConnectionsPerAddr = 3, 2
	// Longer than the wait for a refusal below, so that a refused
	// connection is told from a timed-out one.
	cfg.TCPHandshakeTimeout = 2 * time.Second
	l, err := listenICE(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.close() }()
	addr := l.tcpAddr.String()

	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	a3 := dialFrom(t, "127.0.0.1", addr) // past the per-address limit
	if !closedWithin(a3, time.Second) {
		t.Error("a third connection from one address was kept, the limit is 2")
	}
	b1 := dialFrom(t, "127.0.0.2", addr)
	c1 := dialFrom(t, "127.0.0.3", addr) // past the total
	if !closedWithin(c1, time.Second) {
		t.Error("a fourth connection was kept, the limit is 3")
	}
	if n := l.tcpLn.open(); n != 3 {
		t.Errorf("%d connections counted open, want 3", n)
	}
	// Silent peers are closed after the handshake timeout.
	for i, c := range []net.Conn{a1, a2, b1} {
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("silent connection %d still open 5 s after a 2 s handshake timeout", i)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.tcpLn.open() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := l.tcpLn.open(); n != 0 {
		t.Errorf("%d connections still counted after they closed", n)
	}
	// And new ones are taken again.
	d := dialFrom(t, "127.0.0.1", addr)
	if closedWithin(d, 200*time.Millisecond) {
		t.Error("a connection after the others closed was refused")
	}
}

// TestICETCPWriteTimeout: writing to a viewer that reads nothing gives up
// after the write timeout and closes the connection, instead of blocking
// its session for ever.
func TestICETCPWriteTimeout(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newTCPListener(raw, 10, 10, slog.New(slog.DiscardHandler))
	ln.writeTimeout = 300 * time.Millisecond
	defer ln.Close()
	peer := dialFrom(t, "127.0.0.1", raw.Addr().String()) // never reads
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write error %v, want a deadline", err)
		}
	case <-time.After(10 * time.Second):
		_ = c.Close()
		t.Fatal("writes to a viewer that reads nothing still block after 10 s")
	}
	if n := ln.open(); n != 0 {
		t.Errorf("%d connections counted open after the timeout, want 0", n)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, peer); err != nil {
		t.Errorf("the viewer's side did not end: %v", err)
	}
}
