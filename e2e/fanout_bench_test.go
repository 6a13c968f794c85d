package e2e

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/viewer"
)

// Environment of the fan-out benchmark and of its viewers' process.
const (
	// fanoutViewersEnv (a count) makes TestFanoutViewers the viewers'
	// process of BenchmarkFanout; fanoutURLEnv is the WHEP URL they join.
	fanoutViewersEnv = "SKYWATCH_FANOUT_VIEWERS"
	fanoutURLEnv     = "SKYWATCH_FANOUT_URL"
	// fanoutSecondsEnv is the measured window (default 10 s);
	// fanoutProfileEnv a file for a CPU profile of the server during it.
	fanoutSecondsEnv = "SKYWATCH_FANOUT_SECONDS"
	fanoutProfileEnv = "SKYWATCH_FANOUT_CPUPROFILE"
	// fanoutMemProfileEnv is a file for a heap profile at the window's end.
	fanoutMemProfileEnv = "SKYWATCH_FANOUT_MEMPROFILE"
)

// BenchmarkFanout measures what the live send path costs per viewer: one
// simulated field camera (ClipSynth2M, 2 Mbit/s, 1,460-byte RTP packets,
// G.711) pulled by ingest and relayed by the viewer server to N pion
// viewers on loopback. The viewers run in a process of their own (this
// test binary again, as TestFanoutViewers), so that the CPU time measured
// here, and the profile, are the server's (and the camera's, which does
// not grow with N).
//
//	go test -run '^$' -bench Fanout -benchtime 1x ./e2e/
//	SKYWATCH_FANOUT_CPUPROFILE=/tmp/cpu.out SKYWATCH_FANOUT_MEMPROFILE=/tmp/mem.out go test -run '^$' -bench 'Fanout/viewers=50$' -benchtime 1x ./e2e/
//
// Metrics: us-cpu/pkt is CPU time per packet per viewer; cpu-ms/s the
// server's CPU use; MB-rss the resident memory at the end, MB-heap the
// live heap.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 50, 200} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	window := 10 * time.Second
	if s := os.Getenv(fanoutSecondsEnv); s != "" {
		sec, err := strconv.Atoi(s)
		if err != nil || sec <= 0 {
			b.Fatalf("%s=%q: want seconds", fanoutSecondsEnv, s)
		}
		window = time.Duration(sec) * time.Second
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	cam := hardware.NewCamera(hardware.CameraConfig{
		UDP:        true,
		PacketSize: 1460,
		Paths:      []hardware.CameraPath{{Path: camPath, Clip: hardware.ClipSynth2M, Audio: true}},
	})
	if err := cam.Start(); err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	mgr := ingest.NewManager(ingest.Config{Cameras: []ingest.CameraConfig{{
		ID: camID, Name: "Field camera", URL: cam.URL(camPath), Mode: ingest.ModeAlways,
	}}}, logger)
	mgr.Start()
	defer mgr.Close()
	reg := prometheus.NewRegistry()
	srv, err := viewer.New(viewer.Config{
		HTTPAddress: "127.0.0.1:0", UDPAddress: "127.0.0.1:0",
		VideoSessionsPerUser: n, VideoSessionsPerAddr: n,
	}, viewer.Deps{Cameras: viewer.Adapt[*ingest.Reader](mgr), Registry: reg}, logger)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			b.Error(err)
		}
	}()
	st := func() ingest.CameraState { s, _ := mgr.Camera(camID); return s }
	waitFor(b, "camera online", func() bool { return st().Status == ingest.StatusOnline })

	// The viewers' process; closing its stdin ends it.
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutViewers$", "-test.v")
	cmd.Env = append(os.Environ(),
		fanoutViewersEnv+"="+strconv.Itoa(n),
		fanoutURLEnv+"=http://"+srv.Addr().String()+"/whep/"+camID,
		fanoutProfileEnv+"=", fanoutMemProfileEnv+"=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if lines.Text() == "fanout: ready" {
			break
		}
		b.Log(lines.Text())
	}
	go func() {
		for lines.Scan() {
		}
	}()
	time.Sleep(2 * time.Second) // past the connections' first bursts

	for b.Loop() {
		var prof *os.File
		if path := os.Getenv(fanoutProfileEnv); path != "" {
			if prof, err = os.Create(path); err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(prof); err != nil {
				b.Fatal(err)
			}
		}
		cpu0, sent0 := cpuTime(b), counterValue(b, reg, "skywatch_viewer_rtp_packets_sent_total")
		start := time.Now()
		time.Sleep(window)
		cpu, sent := cpuTime(b)-cpu0, counterValue(b, reg, "skywatch_viewer_rtp_packets_sent_total")-sent0
		elapsed := time.Since(start)
		if prof != nil {
			pprof.StopCPUProfile()
			_ = prof.Close()
		}
		if sent == 0 {
			b.Fatal("no packets sent")
		}
		if path := os.Getenv(fanoutMemProfileEnv); path != "" {
			writeHeapProfile(b, path)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(cpu.Microseconds())/sent, "us-cpu/pkt")
		b.ReportMetric(float64(cpu.Milliseconds())/elapsed.Seconds(), "cpu-ms/s")
		b.ReportMetric(sent/elapsed.Seconds()/float64(n), "pkt/s/viewer")
		b.ReportMetric(float64(rssBytes(b))/1e6, "MB-rss")
		b.ReportMetric(float64(ms.HeapAlloc)/1e6, "MB-heap")
	}
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes is this process's resident memory.
func rssBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func counterValue(b *testing.B, g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}

// TestFanoutViewers is the viewers' process of BenchmarkFanout; without
// its environment it is skipped. It joins the viewers, prints "fanout:
// ready" once each has video, and receives until its stdin closes.
func TestFanoutViewers(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(fanoutViewersEnv))
	url := os.Getenv(fanoutURLEnv)
	if n <= 0 || url == "" {
		t.Skip("the viewers' process of BenchmarkFanout")
	}
	var got atomic.Int64
	peers := make([]*fanoutPeer, 0, n)
	defer func() {
		for _, p := range peers {
			p.close()
		}
	}()
	for range n {
		p := newFanoutPeer(t, &got)
		peers = append(peers, p)
		p.join(t, url)
	}
	waitFor(t, "video at every viewer", func() bool {
		for _, p := range peers {
			if !p.video.Load() {
				return false
			}
		}
		return true
	})
	fmt.Println("fanout: ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Println("fanout: received", got.Load())
}

// fanoutPeer is a cheap pion viewer: it counts what it receives, into a
// reused buffer, and sends receiver reports and NACKs as a browser does.
type fanoutPeer struct {
	pc    *webrtc.PeerConnection
	video atomic.Bool
	wg    sync.WaitGroup
}

func newFanoutPeer(t *testing.T, got *atomic.Int64) *fanoutPeer {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(ir)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &fanoutPeer{pc: pc}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{
			Direction: webrtc.RTPTransceiverDirectionRecvonly,
		}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := track.Read(buf); err != nil {
					return
				}
				got.Add(1)
				if track.Kind() == webrtc.RTPCodecTypeVideo {
					p.video.Store(true)
				}
			}
		}()
	})
	return p
}

func (p *fanoutPeer) join(t *testing.T, url string) {
	t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	resp, body := do(t, http.MethodPost, url, "application/sdp", p.pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
}

func (p *fanoutPeer) close() {
	_ = p.pc.Close()
	p.wg.Wait()
}
