// Package testproxy forwards TCP connections to a server, for tests that
// take the server away and bring it back (stop the proxy, start a new one
// on the same address) or cut a reply on its way back.
package testproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards connections to a target until stopped; a stopped proxy
// refuses connections, as a server that is down does.
type Proxy struct {
	// cutReply, when set, is asked about each chunk a client sends; when it
	// answers true, the server's next reply on that connection is not
	// passed on: the connection is cut instead (the request was served,
	// its reply lost).
	cutReply func(sent []byte) bool

	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	once  sync.Once
}

// Start listens on addr (waiting while a stopped proxy's port is freed)
// and forwards what it accepts to target; cutReply may be nil. The proxy
// is stopped when the test ends.
func Start(t testing.TB, addr, target string, cutReply func(sent []byte) bool) *Proxy {
	t.Helper()
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{cutReply: cutReply, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			if !p.track(c, up) {
				return
			}
			var cut atomic.Bool // the next reply on this connection is cut
			p.wg.Go(func() {
				defer up.Close()
				p.copy(up, c, func(b []byte) bool {
					if p.cutReply != nil && p.cutReply(b) {
						cut.Store(true)
					}
					return true
				})
			})
			p.wg.Go(func() {
				defer c.Close()
				p.copy(c, up, func([]byte) bool { return !cut.Swap(false) })
			})
		}
	})
	t.Cleanup(p.Stop)
	return p
}

// copy writes what it reads from src to dst while pass lets each chunk
// through.
func (p *Proxy) copy(dst, src net.Conn, pass func([]byte) bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !pass(buf[:n]) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// track records live connections so that Stop can cut them; it reports
// false (and closes them) once stopped.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stop closes the listener and every connection, and waits for the
// proxy's goroutines. It is idempotent.
func (p *Proxy) Stop() {
	p.once.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
		p.wg.Wait()
	})
}
