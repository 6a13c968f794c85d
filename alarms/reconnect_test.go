package alarms_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards connections to a target until stopped; a stopped
// proxy refuses connections, as a broker that is down does.
type tcpProxy struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	once  sync.Once
}

func startTCPProxy(t *testing.T, addr, target string) *tcpProxy {
	t.Helper()
	var ln net.Listener
	var err error
	// The port of a stopped proxy may take a moment to be free again.
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, conns: map[net.Conn]bool{}}
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
			p.mu.Lock()
			if p.conns == nil {
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) stop() {
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

// After the external broker was away for a while, the intake's session is
// back soon after the broker: its reconnection backoff is capped at about a
// second (it grew to 30 s before), because a broker that lost its state
// drops what devices publish until the intake subscribes again.
func TestExternalReconnectFast(t *testing.T) {
	cfg := externalConfig(t)
	target := strings.TrimPrefix(cfg.MQTT.URL, "tcp://")
	p := startTCPProxy(t, "127.0.0.1:0", target)
	addr := p.addr()
	cfg.MQTT.URL = "tcp://" + addr
	store := newStore(t)
	in := startIntake(t, cfg, store)
	waitConnected(t, in)

	p.stop()
	waitFor(t, "the intake to see the broker gone", func() bool { return !in.Status().Connected })
	// Long enough for a doubling backoff from 1 s to wait 8 s next.
	time.Sleep(8 * time.Second)
	p = startTCPProxy(t, addr, target)
	back := time.Now()
	waitConnected(t, in)
	took := time.Since(back)
	t.Logf("reconnected %v after the broker came back", took.Round(time.Millisecond))
	// About 1.5 s at most; 4 s leaves room for a busy machine, and the
	// old backoff took 7 s here.
	if took > 4*time.Second {
		t.Fatalf("reconnected %v after the broker came back, want about a second", took)
	}
	dev := connect(t, cfg.MQTT.URL, "", "", nil)
	publish(t, dev, devTopic(cfg, "d1", "event"), `{"id":"after-reconnect","class":"panic"}`)
	waitFor(t, "an event stored through the new session", func() bool {
		return len(withID(events(t, store, "d1"), "after-reconnect")) == 1
	})
}
