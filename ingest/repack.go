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
//   - H.264: a single NAL unit packet becomes FU-A fragments; the FU-A
//     fragments of one NAL unit, start to end in consecutive packets of the
//     unit, are cut again as a whole into full fragments when one of them is
//     too large (see recut); a lone or incomplete run's FU-A is cut into
//     smaller FU-A fragments (start and end bits on the first and last);
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
// number); a piece of a re-cut run has the header of the packet its first
// byte comes from. Only the last piece keeps its marker bit. Sequence
// numbers stay in the camera's order but may repeat or skip: readers number
// their packets themselves.
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
	for i := 0; i < len(pkts); {
		if end, total, ok := s.run(pkts, i); ok {
			if first < 0 {
				first = i
			}
			extra += total/maxPayload(pkts[i]) + 1
			need += total + 3*(total/maxPayload(pkts[i])+1)
			i = end
			continue
		}
		if p := pkts[i]; len(p.Payload) > maxPayload(p) {
			if first < 0 {
				first = i
			}
			extra += len(p.Payload)/maxPayload(p) + 1
			need += len(p.Payload)
		}
		i++
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
		if end, _, ok := s.run(pkts, i); ok {
			out = b.recut(out, pkts[i:end], s.fuHeaderLen())
			res.split += end - i
			i = end - 1
			continue
		}
		p := pkts[i]
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

// fuHeaderLen is the length of an FU-A's (indicator, header) or an H.265
// FU's (payload header, FU header) headers.
func (s splitter) fuHeaderLen() int {
	if s.h265 {
		return 3
	}
	return 2
}

// fuHeader returns the FU header of pl (the last of its headers) when pl is
// an FU-A or FU.
func (s splitter) fuHeader(pl []byte) (byte, bool) {
	hdr := s.fuHeaderLen()
	if len(pl) < hdr {
		return 0, false
	}
	if s.h265 && (pl[0]>>1)&0x3f != h265FU || !s.h265 && pl[0]&0x1f != h264FUA {
		return 0, false
	}
	return pl[hdr-1], true
}

// run finds a fragmented NAL unit that starts at pkts[i] and must be cut:
// two or more consecutive packets (sequence numbers one apart), from the
// start bit to the end bit, of one NAL unit (same headers but the start and
// end bits, same number of CSRCs), at least one of them too large. It
// returns the index after the run and the size of the NAL unit's body.
// Anything else (a lost, missing or foreign fragment) is no run: its
// packets are cut one by one, as a lone fragment is.
func (s splitter) run(pkts []*rtp.Packet, i int) (end, total int, ok bool) {
	p0 := pkts[i]
	fu0, ok := s.fuHeader(p0.Payload)
	if !ok || fu0&0xc0 != 0x80 {
		return 0, 0, false
	}
	hdr := s.fuHeaderLen()
	large := false
	for j := i; j < len(pkts); j++ {
		p := pkts[j]
		if j > i {
			fu, ok := s.fuHeader(p.Payload)
			if !ok || fu&0x80 != 0 || fu&0x3f != fu0&0x3f ||
				string(p.Payload[:hdr-1]) != string(p0.Payload[:hdr-1]) ||
				p.SequenceNumber != pkts[j-1].SequenceNumber+1 || len(p.CSRC) != len(p0.CSRC) {
				return 0, 0, false
			}
		}
		total += len(p.Payload) - hdr
		large = large || len(p.Payload) > maxPayload(p)
		if p.Payload[hdr-1]&0x40 != 0 {
			return j + 1, total, large && j > i
		}
	}
	return 0, 0, false
}

// recut emits the fragments of a run (see run) again as full fragments of
// the largest size that fits, the last one shorter: for a camera's 1,460-byte
// packets, about 1,460/1,188 times fewer packets than cutting each in two.
// The headers before the FU header are the run's; the FU header keeps the
// type and gets the start bit on the first piece and the end bit on the
// last. Every piece has the header (sequence number included) of the packet
// that its first body byte comes from, so sequence numbers stay in the
// camera's order; the last piece has the run's last marker. The camera's
// payloads are only read: the pieces are copied into the arena.
func (b *pieceBuilder) recut(out []*rtp.Packet, run []*rtp.Packet, hdr int) []*rtp.Packet {
	p0 := run[0]
	limit := maxPayload(p0)
	chunk := limit - hdr
	typ := p0.Payload[hdr-1] & 0x3f
	total := 0
	for _, p := range run {
		total += len(p.Payload) - hdr
	}
	n := (total + chunk - 1) / chunk
	if len(b.spare) < n {
		b.spare = make([]rtp.Packet, max(n, 16))
	}
	pieces := b.spare[:n:n]
	b.spare = b.spare[n:]
	j, off := 0, hdr // the next body byte: run[j].Payload[off]
	for i := range pieces {
		size := min(chunk, total)
		total -= size
		piece := b.take(hdr + size)
		copy(piece, p0.Payload[:hdr-1])
		fu := typ
		if i == 0 {
			fu |= 0x80
		}
		if total == 0 {
			fu |= 0x40
		}
		piece[hdr-1] = fu
		for off == len(run[j].Payload) {
			j, off = j+1, hdr
		}
		pieces[i].Header = run[j].Header
		pieces[i].Marker = false
		pieces[i].Padding, pieces[i].PaddingSize = false, 0
		pieces[i].Payload = piece
		for at := hdr; at < len(piece); {
			if off == len(run[j].Payload) {
				j, off = j+1, hdr
				continue
			}
			c := copy(piece[at:], run[j].Payload[off:])
			at += c
			off += c
		}
	}
	pieces[n-1].Marker = run[len(run)-1].Marker
	for i := range pieces {
		out = append(out, &pieces[i])
	}
	return out
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
