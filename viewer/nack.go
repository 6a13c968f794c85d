package viewer

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// NACK responder limits.
const (
	// nackHistory is how many of the last packets sent on a stream a
	// viewer may ask for again: about 5 s of a 2 Mbit/s camera, 1.5 s of
	// an 8 Mbit/s one. A power of two.
	nackHistory = 1024
	// nackBurst bounds the resends a viewer may ask for at once; beyond
	// it, a stream resends at most one packet per packet it sends, so a
	// viewer's NACKs can at most double its traffic.
	nackBurst = 256
	// nackRepeatGap suppresses resending one packet again within this
	// time: a viewer that repeats its NACK before the resend could arrive.
	nackRepeatGap = 10 * time.Millisecond
)

// nackResponder resends the packets a viewer reports lost (RTCP generic
// NACK, RFC 4585), in place of pion's responder, which copies every packet
// sent into a per-viewer buffer (a fifth of the send path's CPU time and
// most of its memory at 50 viewers). This one keeps, per stream, a ring of
// what was sent: the viewer's own header fields and a reference to the
// payload, which is the camera's packet shared by every viewer. It relies
// on that: a payload written to a session must never change afterwards
// (ingest's packets do not).
//
// A session's run goroutine writes; its RTCP readers resend, each on its
// own goroutine, so every stream has a lock.
type nackResponder struct {
	interceptor.NoOp

	mu      sync.Mutex
	streams map[uint32]*nackStream
}

// nackResponderFactory makes one responder per peer connection.
type nackResponderFactory struct{}

func (nackResponderFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackResponder{streams: map[uint32]*nackStream{}}, nil
}

// nackStream is the history of one stream sent.
type nackStream struct {
	out         interceptor.RTPWriter
	ssrc        uint32
	payloadType uint8
	start       time.Time

	mu     sync.Mutex
	ring   [nackHistory]sentPacket
	tokens int // resends allowed now
}

// sentPacket is what is needed to send a packet again.
type sentPacket struct {
	payload   []byte // shared; never modified
	csrc      []uint32
	resentAt  time.Duration // since the stream's start; 0: never
	timestamp uint32
	seq       uint16
	marker    bool
	set       bool
}

// BindLocalStream keeps the history of streams whose viewer asked for
// NACK.
func (n *nackResponder) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if !wantsNack(info) {
		return writer
	}
	st := &nackStream{
		out: writer, ssrc: info.SSRC, payloadType: info.PayloadType,
		start: time.Now(), tokens: nackBurst,
	}
	n.mu.Lock()
	n.streams[info.SSRC] = st
	n.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == st.ssrc {
			st.remember(h, payload)
		}
		return writer.Write(h, payload, a)
	})
}

// UnbindLocalStream forgets the stream and lets go of its payloads.
func (n *nackResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	n.mu.Lock()
	delete(n.streams, info.SSRC)
	n.mu.Unlock()
}

// Close lets go of every stream's payloads.
func (n *nackResponder) Close() error {
	n.mu.Lock()
	n.streams = map[uint32]*nackStream{}
	n.mu.Unlock()
	return nil
}

// BindRTCPReader answers the NACKs among what the viewer sends.
func (n *nackResponder) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		i, attr, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if attr == nil {
			attr = make(interceptor.Attributes)
		}
		pkts, err := attr.GetRTCPPackets(b[:i])
		if err != nil {
			return 0, nil, err
		}
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				n.mu.Lock()
				st := n.streams[nack.MediaSSRC]
				n.mu.Unlock()
				if st != nil {
					st.resend(nack.Nacks)
				}
			}
		}
		return i, attr, nil
	})
}

func wantsNack(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

func (st *nackStream) remember(h *rtp.Header, payload []byte) {
	st.mu.Lock()
	st.ring[h.SequenceNumber%nackHistory] = sentPacket{
		payload: payload, csrc: h.CSRC, timestamp: h.Timestamp,
		seq: h.SequenceNumber, marker: h.Marker, set: true,
	}
	if st.tokens < nackBurst {
		st.tokens++
	}
	st.mu.Unlock()
}

// resend sends again the packets of pairs still in the history, within
// the stream's budget.
func (st *nackStream) resend(pairs []rtcp.NackPair) {
	now := time.Since(st.start)
	for _, pair := range pairs {
		for _, seq := range pair.PacketList() {
			st.mu.Lock()
			p := &st.ring[seq%nackHistory]
			ok := p.set && p.seq == seq && st.tokens > 0 &&
				(p.resentAt == 0 || now-p.resentAt >= nackRepeatGap)
			var h rtp.Header
			var payload []byte
			if ok {
				st.tokens--
				p.resentAt = max(now, 1)
				h = rtp.Header{
					Version: 2, Marker: p.marker, PayloadType: st.payloadType,
					SequenceNumber: seq, Timestamp: p.timestamp, SSRC: st.ssrc, CSRC: p.csrc,
				}
				payload = p.payload
			}
			st.mu.Unlock()
			if ok {
				// A failed write is the viewer's loss again; it may NACK
				// once more.
				_, _ = st.out.Write(&h, payload, nil)
			}
		}
	}
}
