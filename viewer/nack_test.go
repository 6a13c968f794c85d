package viewer

import (
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// TestNACKResendsLostPackets: a pion viewer whose network loses some of the
// camera's video packets (the first time each is sent) NACKs them, and
// receives every one of them again.
func TestNACKResendsLostPackets(t *testing.T) {
	reader := newFakeReader([]ingest.Track{h264Track(), pcmuTrack()})
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	srv := startServer(t, src, nil)

	// The camera: a unit every 5 ms until the test ends.
	ctx, cancel := context.WithCancel(context.Background())
	var feeder sync.WaitGroup
	feeder.Add(1)
	go func() {
		defer feeder.Done()
		cam := &camera{epoch: 1, received: time.Now()}
		for i := 0; ; i++ {
			select {
			case reader.units <- cam.nextAU(i%50 == 0):
			case <-ctx.Done():
				return
			}
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); feeder.Wait() })

	const lose = 20
	loss := &lossyNetwork{lost: map[uint16]bool{}, max: lose}
	client, offer := newLossyClient(t, loss)
	resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}

	seen := map[uint16]bool{}
	deadline := time.After(testTimeout)
	for {
		loss.mu.Lock()
		missing := 0
		for seq := range loss.lost {
			if !seen[seq] {
				missing++
			}
		}
		n := len(loss.lost)
		loss.mu.Unlock()
		if n == lose && missing == 0 {
			break
		}
		select {
		case p := <-client.video:
			seen[p.SequenceNumber] = true
		case <-deadline:
			t.Fatalf("%d of the %d lost packets never arrived again", missing, n)
		}
	}
}

// lossyNetwork is the viewer's UDP socket, which loses every 7th RTP
// packet the first time it arrives, up to max packets. The loss is below
// SRTP, as on a real network: SRTP would take a second copy of a packet it
// had already decrypted for a replay. The first RTP packet always passes: a
// receiver cannot know that a stream's first packet is missing, so no NACK
// could ask for it (with random sequence numbers it was lost one run in
// seven).
type lossyNetwork struct {
	net.PacketConn
	max     int
	mu      sync.Mutex
	started bool
	lost    map[uint16]bool
}

func (l *lossyNetwork) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := l.PacketConn.ReadFrom(b)
		// RTP (RFC 7983: first byte 128-191), not RTCP (types 192-223).
		if err == nil && n >= 12 && b[0] >= 128 && b[0] <= 191 && (b[1] < 192 || b[1] > 223) &&
			l.loses(binary.BigEndian.Uint16(b[2:4])) {
			continue
		}
		return n, addr, err
	}
}
func (l *lossyNetwork) loses(seq uint16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.started = true
		return false
	}
	if seq%7 != 0 || l.lost[seq] || len(l.lost) >= l.max {
		return false
	}
	l.lost[seq] = true
	return true
}

// newLossyClient is a receive-only pion viewer behind loss, with pion's
// NACK generator.
func newLossyClient(t *testing.T, loss *lossyNetwork) (*whepClient, string) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	loss.PacketConn = conn
	mux := webrtc.NewICEUDPMux(nil, loss)
	t.Cleanup(func() { _ = mux.Close() })
	settings := loopbackSettings()
	settings.SetICEUDPMux(mux)
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorInterval(20 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	ir.Add(gen)
	return newWHEPClientWith(t, settings, ir)
}

// recordingRTPWriter keeps what a nackStream resends.
type recordingRTPWriter struct{ seqs []uint16 }

func (w *recordingRTPWriter) Write(h *rtp.Header, _ []byte, _ interceptor.Attributes) (int, error) {
	w.seqs = append(w.seqs, h.SequenceNumber)
	return 0, nil
}

// TestNACKStreamHistoryAndBudget: a stream resends only what is still in
// its history, not the same packet twice in a row, and at most its budget.
func TestNACKStreamHistoryAndBudget(t *testing.T) {
	out := &recordingRTPWriter{}
	st := &nackStream{out: out, ssrc: 1, payloadType: 96, start: time.Now().Add(-time.Second)}
	payload := []byte{1, 2, 3}
	for seq := range uint16(nackHistory + 10) {
		st.remember(&rtp.Header{SequenceNumber: 65000 + seq, Timestamp: 9}, payload)
	}
	first := uint16(65000 + 10) // the oldest still kept
	st.resend([]rtcp.NackPair{{PacketID: first - 1}, {PacketID: first, LostPackets: 0b11}})
	if want := []uint16{first, first + 1, first + 2}; !slices.Equal(out.seqs, want) {
		t.Fatalf("resent %v, want %v", out.seqs, want)
	}
	out.seqs = nil
	st.resend([]rtcp.NackPair{{PacketID: first}})
	if len(out.seqs) != 0 {
		t.Fatalf("resent %v again at once", out.seqs)
	}

	// The budget: nackBurst at most, then one per packet sent.
	st.tokens = 2
	st.resend([]rtcp.NackPair{{PacketID: first + 10, LostPackets: 0xffff}})
	if len(out.seqs) != 2 {
		t.Fatalf("resent %d packets on a budget of 2", len(out.seqs))
	}
}
