package viewer

import (
	"math/rand/v2"
	"time"

	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// rtpWriter is where a trackWriter sends its packets (a pion
// TrackLocalStaticRTP in a session, a recorder in tests).
type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
}

// trackWriter sends one camera track to one viewer. Payloads pass through
// untouched; the sequence number and timestamp are the viewer's own, so that
// they stay continuous when the camera reconnects (a new epoch starts the
// camera's numbering anew) and when the reader drops to a keyframe. pion sets
// the SSRC and payload type.
//
// A trackWriter is used by one goroutine. It reuses one packet, so writing
// does not allocate.
type trackWriter struct {
	out       rtpWriter
	clockRate uint32

	started  bool
	epoch    uint64
	seq      uint16 // next sequence number to send
	tsOffset uint32 // added to the camera's timestamp
	lastTS   uint32 // last timestamp sent
	lastSeen time.Time
	// liveFrom is when the viewer connected (zero: not set); live is set
	// from the first unit received after it. See stampBurst.
	liveFrom time.Time
	live     bool
	liveTS   uint32 // the output timestamp of liveFrom

	pkt rtp.Packet
}

func newTrackWriter(out rtpWriter, clockRate int) *trackWriter {
	if clockRate <= 0 {
		clockRate = 90000
	}
	return &trackWriter{
		out:       out,
		clockRate: uint32(clockRate),
		// Random starts, as RFC 3550 asks.
		seq:      uint16(rand.Uint32()),
		tsOffset: rand.Uint32(),
	}
}

// writeUnit sends every packet of u and returns how many were sent and the
// first write error. now stands for u.Received when the unit has none.
func (w *trackWriter) writeUnit(u *ingest.Unit, now time.Time) (int, error) {
	if len(u.Packets) == 0 {
		return 0, nil
	}
	seen := u.Received
	if seen.IsZero() {
		seen = now
	}
	if !w.stampBurst(u, seen, now) {
		w.rebase(u, seen)
	}

	var firstErr error
	sent := 0
	for _, p := range u.Packets {
		// A fresh header: the camera's packets are shared by every viewer,
		// and its header extensions and padding mean nothing to a browser.
		w.pkt.Header = rtp.Header{
			Version:        2,
			Marker:         p.Marker,
			PayloadType:    p.PayloadType,
			SequenceNumber: w.seq,
			Timestamp:      p.Timestamp + w.tsOffset,
			SSRC:           p.SSRC,
			CSRC:           p.CSRC,
		}
		w.pkt.Payload = p.Payload
		w.seq++
		w.lastTS = w.pkt.Timestamp
		if err := w.out.WriteRTP(&w.pkt); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		sent++
	}
	w.pkt.Payload = nil // do not keep the camera's buffer alive
	w.pkt.CSRC = nil
	w.lastSeen = seen
	return sent, firstErr
}

// rebase keeps the output timestamp continuous across camera epochs: the
// first unit of a new epoch is stamped with the last timestamp sent plus the
// wall-clock time that passed between the two units.
func (w *trackWriter) rebase(u *ingest.Unit, seen time.Time) {
	if !w.started {
		w.started = true
		w.epoch = u.Epoch
		w.tsOffset -= u.Timestamp()
		return
	}
	if u.Epoch == w.epoch {
		return
	}
	w.epoch = u.Epoch
	ticks := uint32(1)
	if ms := seen.Sub(w.lastSeen).Milliseconds(); ms > 0 {
		// Modulo 2^32, like RTP timestamps themselves.
		ticks = max(1, uint32(uint64(ms)*uint64(w.clockRate)/1000))
	}
	w.tsOffset = w.lastTS + ticks - u.Timestamp()
}
