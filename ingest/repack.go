package ingest

import (
	"encoding/binary"

	"github.com/pion/rtp"
)

// MaxPacketSize is the largest RTP packet of a video unit, its header
// (12 bytes plus 4 per CSRC, without extensions) included. Cameras often send
// packets of up to 1,460 bytes; with SRTP, UDP and IP headers on top, those
// fragment or vanish on links with a smaller path MTU (VPNs, 4G), so larger
// packets are re-packetized once, here, for every reader.
const MaxPacketSize = 1200

// Payload types of the packetizations that the splitter handles (RFC 6184,
// RFC 7798).
const (
	h264STAPA = 24
	h264FUA   = 28
	h265AP    = 48
	h265FU    = 49
)

// splitter re-packetizes a video track's packets that are larger than
// MaxPacketSize, in one unit at a time, and passes the others through:
//   - H.264: a single NAL unit packet becomes FU-A fragments; an FU-A is cut
//     into smaller FU-A fragments (start and end bits on the first and last);
//     a STAP-A is unpacked and its NAL units packed again into STAP-As that
//     fit, single NAL unit packets, or FU-A fragments.
//   - H.265 (without DONL, as cameras send it): the same with FU (type 49)
//     and AP (type 48).
//
// A large packet of another kind (interleaved-mode or PACI packets, or a
// malformed aggregate) cannot be cut correctly; no browser would decode it,
// so it is dropped and counted.
//
// Every piece of a packet keeps its header (timestamp, SSRC, sequence
// number); only the last piece keeps its marker bit.
type splitter struct {
	h265 bool
}

// splitResult counts what split did to one unit.
type splitResult struct {
	split   int // packets re-packetized
	dropped int // large packets that could not be
}

// split returns pkts with every packet larger than MaxPacketSize replaced
// by pieces that are not. When no packet is too large it returns pkts
// itself, without allocating. split owns pkts and their packets: it may
// change them (the first piece of an FU reuses the camera's packet and
// buffer). Payloads that the keyframer shares (inserted parameter sets) are
// never written to: only an FU's buffer is, and inserted packets are single
// NAL units.
func (s splitter) split(pkts []*rtp.Packet) ([]*rtp.Packet, splitResult) {
	var res splitResult
	first := -1
	extra, need := 0, 0
	for i, p := range pkts {
		if len(p.Payload) > maxPayload(p) {
			if first < 0 {
				first = i
			}
			extra += len(p.Payload)/maxPayload(p) + 1
			need += len(p.Payload)
		}
	}
	if first < 0 {
		return pkts, res
	}
	out := make([]*rtp.Packet, first, len(pkts)+extra)
	copy(out, pkts[:first])
	// One buffer for the unit's new payloads, as large as what is cut
	// plus headers.
	b := pieceBuilder{arena: make([]byte, 0, need+8*extra+64), spare: make([]rtp.Packet, extra)}
	for i := first; i < len(pkts); i++ {
		p := pkts[i]
		if end, ok := s.fuRun(pkts, i); ok {
			out = b.refragmentRun(pkts[i:end], s.fuHeaderLen(), out)
			res.split += end - i
			i = end - 1
			continue
		}
		if len(p.Payload) <= maxPayload(p) {
			out = append(out, p)
			continue
		}
		b.start(p)
		var ok bool
		if s.h265 {
			ok = b.splitH265(p.Payload)
		} else {
			ok = b.splitH264(p.Payload)
		}
		if !ok {
			res.dropped++
			if p.Marker && len(out) > 0 {
				// The unit still ends here for the browser's jitter buffer.
				out[len(out)-1].Marker = true
			}
			continue
		}
		res.split++
		out = b.finish(out)
	}
	return out, res
}

// maxPayload is the largest payload that keeps p's header within
// MaxPacketSize. Readers send no header extensions.
func maxPayload(p *rtp.Packet) int {
	return MaxPacketSize - 12 - 4*len(p.CSRC)
}

// pieceBuilder collects the payloads of one packet's pieces, in buffers
// shared by the unit's pieces.
type pieceBuilder struct {
	orig     *rtp.Packet
	max      int
	payloads [][]byte
	arena    []byte
	spare    []rtp.Packet // packets for the pieces after the first
}

func (b *pieceBuilder) start(p *rtp.Packet) {
	b.orig = p
	b.max = maxPayload(p)
	b.payloads = b.payloads[:0]
}

// take returns n bytes of the arena. The arena never moves what it gave:
// when full, a new one is started.
func (b *pieceBuilder) take(n int) []byte {
	if cap(b.arena)-len(b.arena) < n {
		b.arena = make([]byte, 0, max(n, 4<<10))
	}
	l := len(b.arena)
	b.arena = b.arena[:l+n]
	return b.arena[l : l+n : l+n]
}

// finish appends the pieces to out as packets: the first one is orig
// (reused), the others are copies of its header.
func (b *pieceBuilder) finish(out []*rtp.Packet) []*rtp.Packet {
	p := b.orig
	marker := p.Marker
	n := len(b.payloads) - 1
	if len(b.spare) < n {
		b.spare = make([]rtp.Packet, max(n, 16))
	}
	rest := b.spare[:n:n]
	b.spare = b.spare[n:]
	for i := range rest {
		rest[i].Header = p.Header
		rest[i].Header.Marker = false
		rest[i].Payload = b.payloads[i+1]
	}
	p.Payload = b.payloads[0]
	p.Marker = false
	// Padding was removed by the parser; the pieces carry none.
	p.Padding, p.PaddingSize = false, 0
	out = append(out, p)
	for i := range rest {
		rest[i].Padding, rest[i].PaddingSize = false, 0
		out = append(out, &rest[i])
	}
	out[len(out)-1].Marker = marker
	return out
}

// splitH264 cuts one H.264 payload; false when it cannot be cut.
func (b *pieceBuilder) splitH264(pl []byte) bool {
	switch pl[0] & 0x1f {
	case h264FUA:
		if len(pl) < 3 {
			return false
		}
		b.refragment(pl, 2, 0x80, 0x40)
		return true
	case h264STAPA:
		nals, ok := aggregated(pl[1:])
		if !ok {
			return false
		}
		b.repack(nals, 1, b.fragmentH264, stapAHeader)
		return true
	case 0, 25, 26, 27, 29, 30, 31:
		// Undefined, STAP-B, MTAP16, MTAP24, FU-B: interleaved mode,
		// which browsers do not take.
		return false
	default:
		b.fragmentH264(pl)
		return true
	}
}

// splitH265 cuts one H.265 payload; false when it cannot be cut.
func (b *pieceBuilder) splitH265(pl []byte) bool {
	if len(pl) < 3 {
		return false
	}
	switch (pl[0] >> 1) & 0x3f {
	case h265FU:
		if len(pl) < 4 {
			return false
		}
		b.refragment(pl, 3, 0x80, 0x40)
		return true
	case h265AP:
		nals, ok := aggregated(pl[2:])
		if !ok {
			return false
		}
		for _, n := range nals {
			if len(n) < 2 {
				return false
			}
		}
		b.repack(nals, 2, b.fragmentH265, apHeader)
		return true
	case 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63:
		// PACI and unspecified types.
		return false
	default:
		b.fragmentH265(pl)
		return true
	}
}

// refragment cuts a fragment (FU-A or FU) whose first hdr bytes are its
// headers, the last of which carries the start and end bits. The first piece
// is the start of the camera's own payload, its end bit cleared in place;
// the others are copies with the same headers.
func (b *pieceBuilder) refragment(pl []byte, hdr int, startBit, endBit byte) {
	fu := pl[hdr-1]
	chunk := b.max - hdr
	b.payloads = append(b.payloads, nil) // the first piece, below
	body := pl[hdr+chunk:]
	for len(body) > 0 {
		n := min(chunk, len(body))
		piece := b.take(hdr + n)
		copy(piece, pl[:hdr])
		piece[hdr-1] = fu &^ startBit
		if n < len(body) {
			piece[hdr-1] &^= endBit
		}
		copy(piece[hdr:], body[:n])
		b.payloads = append(b.payloads, piece)
		body = body[n:]
	}
	// The pieces were copied out: now the camera's buffer can change.
	pl[hdr-1] = fu &^ endBit
	b.payloads[0] = pl[:hdr+chunk]
}

// fragmentH264 appends the FU-A pieces of one NAL unit.
func (b *pieceBuilder) fragmentH264(nal []byte) {
	ind := nal[0]&0xe0 | h264FUA
	b.fragment([]byte{ind}, nal[0]&0x1f, nal[1:])
}

// fragmentH265 appends the FU pieces of one NAL unit (at least 2 bytes).
func (b *pieceBuilder) fragmentH265(nal []byte) {
	typ := (nal[0] >> 1) & 0x3f
	b.fragment([]byte{nal[0]&0x81 | h265FU<<1, nal[1]}, typ, nal[2:])
}

// fragment appends the pieces of one NAL unit's body as fragments: prefix
// (the FU indicator or payload header), an FU header with typ, a chunk.
func (b *pieceBuilder) fragment(prefix []byte, typ byte, body []byte) {
	hdr := len(prefix) + 1
	chunk := b.max - hdr
	for i := 0; len(body) > 0; i++ {
		n := min(chunk, len(body))
		piece := b.take(hdr + n)
		copy(piece, prefix)
		fu := typ
		if i == 0 {
			fu |= 0x80
		}
		if n == len(body) {
			fu |= 0x40
		}
		piece[hdr-1] = fu
		copy(piece[hdr:], body[:n])
		b.payloads = append(b.payloads, piece)
		body = body[n:]
	}
}

// repack packs an aggregate's NAL units again: runs of small ones in
// aggregates that fit (hdr bytes of header, built by header), a lone one as
// a single NAL unit packet (the camera's bytes, not copied), a large one in
// fragments.
func (b *pieceBuilder) repack(nals [][]byte, hdr int, fragment func([]byte), header func(dst []byte, nals [][]byte)) {
	for len(nals) > 0 {
		if len(nals[0]) > b.max {
			fragment(nals[0])
			nals = nals[1:]
			continue
		}
		// The longest run that fits in one aggregate.
		size, n := hdr, 0
		for n < len(nals) && size+2+len(nals[n]) <= b.max {
			size += 2 + len(nals[n])
			n++
		}
		if n <= 1 {
			b.payloads = append(b.payloads, nals[0])
			nals = nals[1:]
			continue
		}
		piece := b.take(size)
		header(piece, nals[:n])
		at := hdr
		for _, nal := range nals[:n] {
			binary.BigEndian.PutUint16(piece[at:], uint16(len(nal)))
			at += 2 + copy(piece[at+2:], nal)
		}
		b.payloads = append(b.payloads, piece)
		nals = nals[n:]
	}
}

// stapAHeader writes a STAP-A's header: F set if any NAL unit's is, NRI the
// highest (RFC 6184, 5.7).
func stapAHeader(dst []byte, nals [][]byte) {
	var f, nri byte
	for _, n := range nals {
		f |= n[0] & 0x80
		nri = max(nri, n[0]&0x60)
	}
	dst[0] = f | nri | h264STAPA
}

// apHeader writes an AP's payload header: F set if any NAL unit's is,
// LayerId and TID the lowest (RFC 7798, 4.4.2).
func apHeader(dst []byte, nals [][]byte) {
	var f byte
	layer, tid := byte(0x3f), byte(7)
	for _, n := range nals {
		f |= n[0] & 0x80
		layer = min(layer, (n[0]&1)<<5|n[1]>>3)
		tid = min(tid, n[1]&7)
	}
	dst[0] = f | h265AP<<1 | layer>>5
	dst[1] = layer<<3 | tid
}

// aggregated splits an aggregate's body (16-bit size, NAL unit, repeated)
// strictly: false unless it is made of whole, non-empty entries.
func aggregated(p []byte) ([][]byte, bool) {
	var nals [][]byte
	for len(p) > 0 {
		if len(p) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(p))
		p = p[2:]
		if n == 0 || n > len(p) {
			return nil, false
		}
		nals = append(nals, p[:n])
		p = p[n:]
	}
	return nals, len(nals) > 0
}
