package alarms

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter caps the embedded broker's connections, in total and per
// source address, before mochi allocates a client for them, and closes a
// connection that has not sent CONNECT in time: mochi itself waits for the
// first packet forever. One limiter is shared by all listeners. Loopback
// peers (a TLS terminator or bridge on the same host, the demo's and load
// tools' simulated fleets) count only against the total.
type connLimiter struct {
	max, perAddr int
	timeout      time.Duration

	mu         sync.Mutex
	open       int
	byAddr     map[netip.Addr]int
	connecting map[*limitedConn]struct{} // no CONNECT yet: mochi cannot close them

	refusedTotal atomic.Uint64 // past max
	refusedAddr  atomic.Uint64 // past perAddr
	timedOut     atomic.Uint64 // no CONNECT within timeout
}

func newConnLimiter(max, perAddr int, timeout time.Duration) *connLimiter {
	return &connLimiter{max: max, perAddr: perAddr, timeout: timeout,
		byAddr: map[netip.Addr]int{}, connecting: map[*limitedConn]struct{}{}}
}

// acquire takes a slot for c, or counts the refusal.
func (l *connLimiter) acquire(c *limitedConn) bool {
	addr := c.addr
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		l.refusedTotal.Add(1)
		return false
	case l.byAddr[addr] >= l.perAddr && !addr.IsLoopback():
		l.refusedAddr.Add(1)
		return false
	}
	l.open++
	l.byAddr[addr]++
	l.connecting[c] = struct{}{}
	return true
}

func (l *connLimiter) release(c *limitedConn) {
	addr := c.addr
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.connecting, c)
	c.released = true
	l.open--
	if l.byAddr[addr] <= 1 {
		delete(l.byAddr, addr)
	} else {
		l.byAddr[addr]--
	}
}

// connected notes that c sent CONNECT: it is mochi's to close now.
func (l *connLimiter) connected(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.connecting, c)
}

// closeConnecting closes the connections that have not sent CONNECT, which
// mochi's Close would otherwise wait for.
func (l *connLimiter) closeConnecting() {
	l.mu.Lock()
	cs := make([]*limitedConn, 0, len(l.connecting))
	for c := range l.connecting {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// count is the number of open connections.
func (l *connLimiter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// listen wraps ln so that its connections count against l.
func (l *connLimiter) listen(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, lim: l, done: make(chan struct{})}
}

// limitedListener refuses connections past its limiter's caps by closing
// them at once, and keeps accepting after a temporary error (such as
// running out of file descriptors), which would end mochi's accept loop.
type limitedListener struct {
	net.Listener
	lim       *connLimiter
	done      chan struct{}
	closeOnce sync.Once
}

// Accept returns the next connection within the caps, with its CONNECT
// deadline set.
func (ln *limitedListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// As net/http: wait a little, up to a second, and try again.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-ln.done:
				return nil, net.ErrClosed
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		lc := &limitedConn{Conn: c, lim: ln.lim, addr: remoteAddr(c), accepted: time.Now()}
		if !ln.lim.acquire(lc) {
			_ = c.Close()
			continue
		}
		lc.connecting.Store(true)
		lc.armConnectDeadline()
		return lc, nil
	}
}

// Close closes the listener and the connections that have not sent
// CONNECT; it is idempotent.
func (ln *limitedListener) Close() error {
	ln.closeOnce.Do(func() { close(ln.done) })
	err := ln.Listener.Close()
	ln.lim.closeConnecting()
	return err
}

func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn gives its slot back when closed, and counts a read that
// timed out before mochi set its own deadline (which it does once it has
// read CONNECT).
type limitedConn struct {
	net.Conn
	lim        *connLimiter
	addr       netip.Addr
	accepted   time.Time
	connecting atomic.Bool
	closeOnce  sync.Once
	released   bool // guarded by lim.mu
}

// armConnectDeadline bounds the wait for CONNECT from the time of accept.
func (c *limitedConn) armConnectDeadline() {
	if c.connecting.Load() {
		_ = c.Conn.SetReadDeadline(c.accepted.Add(c.lim.timeout))
	}
}

// awaitConnect waits for CONNECT again, after a WebSocket upgrade cleared
// the deadline.
func (c *limitedConn) awaitConnect() {
	c.lim.mu.Lock()
	defer c.lim.mu.Unlock()
	if c.released {
		return
	}
	c.lim.connecting[c] = struct{}{}
	c.connecting.Store(true)
	c.armConnectDeadline()
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	// Only the CONNECT deadline counts, not net/http's own deadlines before
	// a WebSocket upgrade.
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(c.accepted.Add(c.lim.timeout)) &&
		c.connecting.CompareAndSwap(true, false) {
		c.lim.timedOut.Add(1)
	}
	return n, err
}

// SetDeadline is how mochi sets the keepalive deadline after CONNECT.
func (c *limitedConn) SetDeadline(t time.Time) error {
	if c.connecting.CompareAndSwap(true, false) {
		c.lim.connected(c)
	}
	return c.Conn.SetDeadline(t)
}

func (c *limitedConn) Close() error {
	c.closeOnce.Do(func() { c.lim.release(c) })
	return c.Conn.Close()
}
