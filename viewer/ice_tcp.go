package viewer

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// tcpWriteTimeout bounds one write to an ICE-TCP viewer. A viewer that
// takes no byte for this long (its tab frozen, its link gone) is cut off:
// its session's writes would otherwise block for ever, and a write cut in
// the middle has broken the stream's framing (RFC 4571) anyway. A slow but
// live viewer only blocks its own session, whose reader then drops to the
// next keyframe, as a slow UDP viewer's does.
const tcpWriteTimeout = 5 * time.Second

// tcpSendBuffer is the socket send buffer of an ICE-TCP connection (the
// kernel doubles it): about a second of a 2 Mbit/s camera, plenty for a
// link's bandwidth-delay product.
const tcpSendBuffer = 256 << 10

// tcpListener is the ICE-TCP listener with limits: connections open at once
// in all and per remote address (past them a new connection is closed at
// once), and a write timeout on each connection. Connections that never
// complete ICE are closed by pion after the handshake timeout.
type tcpListener struct {
	net.Listener
	maxTotal, maxPerAddr int
	writeTimeout         time.Duration
	logger               *slog.Logger

	mu      sync.Mutex
	total   int
	perAddr map[string]int
	conns   map[*tcpConn]struct{} // open now, for Close
	refused int                   // since the last log line
	lastLog time.Time
}

func newTCPListener(ln net.Listener, maxTotal, maxPerAddr int, logger *slog.Logger) *tcpListener {
	return &tcpListener{
		Listener:     ln,
		maxTotal:     maxTotal,
		maxPerAddr:   maxPerAddr,
		writeTimeout: tcpWriteTimeout,
		logger:       logger,
		perAddr:      map[string]int{},
		conns:        map[*tcpConn]struct{}{},
	}
}

// Accept returns the next connection within the limits; connections past
// them are closed and counted, and logged at most once a minute.
func (l *tcpListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteHost(c)
		l.mu.Lock()
		if l.total >= l.maxTotal || l.perAddr[addr] >= l.maxPerAddr {
			l.refused++
			var n int
			if now := time.Now(); now.Sub(l.lastLog) >= time.Minute {
				n, l.refused, l.lastLog = l.refused, 0, now
			}
			total, fromAddr := l.total, l.perAddr[addr]
			l.mu.Unlock()
			_ = c.Close()
			if n > 0 {
				l.logger.Warn("ICE-TCP connections refused: limit reached", "count", n,
					"open", total, "open_from_address", fromAddr, "address", addr)
			}
			continue
		}
		l.total++
		l.perAddr[addr]++
		conn := &tcpConn{Conn: c, l: l, addr: addr}
		l.conns[conn] = struct{}{}
		l.mu.Unlock()
		if tc, ok := c.(*net.TCPConn); ok {
			// Linux grows a socket's send buffer up to 4 MB: seconds of
			// video queued for a slow viewer, behind live. Kept small, a
			// slow viewer's writes wait instead, and its reader drops to
			// the next keyframe.
			_ = tc.SetWriteBuffer(tcpSendBuffer)
		}
		return conn, nil
	}
}

func (l *tcpListener) release(c *tcpConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.total--
	if l.perAddr[c.addr]--; l.perAddr[c.addr] <= 0 {
		delete(l.perAddr, c.addr)
	}
}

// Close stops accepting and closes the connections still open: pion's
// mux would otherwise wait, when it closes, for each connection that has
// not completed ICE to time out (webrtc.tcp_handshake_timeout), and a
// node shutting down would hold its cameras that long.
func (l *tcpListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	open := make([]*tcpConn, 0, len(l.conns))
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
	return err
}

// open returns the connections open now, in all.
func (l *tcpListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func remoteHost(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// tcpConn is one accepted ICE-TCP connection: counted until closed, and
// closed when a write times out.
type tcpConn struct {
	net.Conn
	l    *tcpListener
	addr string
	once sync.Once
}

func (c *tcpConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.l.writeTimeout))
	n, err := c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		_ = c.Close()
	}
	return n, err
}

func (c *tcpConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}
