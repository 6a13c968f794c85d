package e2e

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// tcpCandidate is the server's passive ICE-TCP candidate in an answer.
var tcpCandidate = regexp.MustCompile(`(a=candidate:\S+ \d+ tcp \d+ 127\.0\.0\.1 )(\d+)( typ host tcptype passive)`)

// stallProxy stands between an ICE-TCP viewer and the server: it forwards
// both ways, and while paused it stops reading what the server sends, as a
// viewer on a link that has stalled.
type stallProxy struct {
	ln     net.Listener
	target string
	paused atomic.Bool
	// serverGone is closed when the server ends the connection (seen when
	// the viewer's next packet to it fails).
	serverGone chan struct{}
	goneOnce   sync.Once
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      []net.Conn
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target, serverGone: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.paused.Store(false)
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) port() string {
	_, port, _ := net.SplitHostPort(p.ln.Addr().String())
	return port
}

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		viewer, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = viewer.Close()
			continue
		}
		// A receive buffer small enough that the server's writes soon wait
		// when paused, large enough not to slow the link (the window).
		_ = server.(*net.TCPConn).SetReadBuffer(64 << 10)
		p.mu.Lock()
		p.conns = append(p.conns, viewer, server)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			if _, err := io.Copy(server, viewer); err != nil {
				p.goneOnce.Do(func() { close(p.serverGone) })
			}
			_ = server.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer viewer.Close()
			buf := make([]byte, 4<<10)
			for {
				for p.paused.Load() {
					time.Sleep(10 * time.Millisecond)
				}
				n, err := server.Read(buf)
				if err != nil {
					return
				}
				if _, err := viewer.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// TestSlowTCPViewerDropsToKeyframe: a viewer over ICE-TCP whose link stalls
// for a few seconds loses pictures down to the next keyframe, as a slow UDP
// viewer does (the server neither buffers seconds of video for it nor
// slows the camera's other viewers), and one that stalls for good is cut
// off and its session ends.
func TestSlowTCPViewerDropsToKeyframe(t *testing.T) {
	// A 2 Mbit/s camera, so that the link's buffers fill in about 2 s, and
	// a short reader queue, so that the stall overflows it.
	r := newRig(t, rigOptions{clip: hardware.ClipSynth2M, mode: ingest.ModeAlways, queue: 16})
	waitFor(t, "camera online", func() bool { return r.state(t).Status == ingest.StatusOnline })

	// Another viewer, over UDP, of the same camera.
	other := newViewerPeer(t)
	if code, body := other.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", code, body)
	}
	// otherPackets counts what the other viewer receives in d.
	otherPackets := func(d time.Duration) int {
		n := 0
		end := time.After(d)
		for {
			select {
			case <-other.video:
				n++
			case <-end:
				return n
			}
		}
	}

	slow := newViewerPeerOn(t, webrtc.NetworkTypeTCP4)
	var proxy *stallProxy
	slow.answer = func(sdp string) string {
		m := tcpCandidate.FindStringSubmatch(sdp)
		if m == nil {
			t.Fatalf("no passive TCP candidate in the answer:\n%s", sdp)
		}
		proxy = startStallProxy(t, "127.0.0.1:"+m[2])
		return tcpCandidate.ReplaceAllString(sdp, "${1}"+proxy.port()+"${3}")
	}
	if code, body := slow.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
		t.Fatalf("POST /whep: %d %s", code, body)
	}
	aus := &auReader{t: t, peer: slow}
	first := aus.next()
	if !first.has(nalIDR) {
		t.Fatalf("first access unit over TCP has NAL types %v, want an IDR", first.types)
	}
	for range 10 {
		aus.next()
	}

	// The link stalls for 3.5 s: shorter than the write timeout.
	dropped := r.state(t).Dropped
	proxy.paused.Store(true)
	otherGot := otherPackets(3500 * time.Millisecond)
	proxy.paused.Store(false)
	lost := r.state(t).Dropped - dropped
	t.Logf("during the stall: the UDP viewer got %d packets; the TCP viewer's reader dropped %d units", otherGot, lost)
	if otherGot < 100 {
		t.Errorf("the other viewer got %d packets in 3.5 s of the TCP viewer's stall", otherGot)
	}
	if lost == 0 {
		t.Error("the stalled TCP viewer's reader dropped nothing: the server buffered its video instead")
	}
	// After the stall: what was queued, then pictures again from a
	// keyframe (the camera's GOP is 10 s).
	deadline := time.Now().Add(25 * time.Second)
	for {
		au := aus.next()
		if au.has(nalIDR) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no keyframe after the stall")
		}
	}

	// A link that stalls for good: the server cuts the viewer off (its
	// session then ends when ICE fails, as a vanished UDP viewer's does).
	proxy.paused.Store(true)
	stalled := time.Now()
	select {
	case <-proxy.serverGone:
		t.Logf("the stalled viewer was cut off %v after its link stalled", time.Since(stalled).Round(100*time.Millisecond))
	case <-time.After(failAfter):
		t.Fatal("the server still holds the viewer's connection 30 s after its link stalled for good")
	}
	if n := otherPackets(time.Second); n < 30 {
		t.Errorf("the other viewer got %d packets in a second after the cut", n)
	}
}
