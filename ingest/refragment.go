package ingest

import "github.com/pion/rtp"

// fuRun reports whether pkts[i] starts the fragments (FU-A or FU) of one
// NAL unit that are all here, start to end, in consecutive sequence
// numbers, two or more, one of them too large; end is the index after the
// last. Such a NAL unit is cut again as a whole: a camera's 1,460-byte
// fragments cut one by one would become twice as many packets (1,200 and
// 272 bytes), and every packet costs every viewer as much to send, whatever
// its size; cut as a whole they are about a fifth more.
func (s splitter) fuRun(pkts []*rtp.Packet, i int) (end int, ok bool) {
	hdr := s.fuHeaderLen()
	first := pkts[i]
	if !s.isFU(first.Payload) || first.Payload[hdr-1]&0x80 == 0 {
		return 0, false
	}
	large := false
	for j := i; j < len(pkts); j++ {
		p := pkts[j]
		if j > i {
			prev := pkts[j-1]
			if !s.isFU(p.Payload) || p.SequenceNumber != prev.SequenceNumber+1 ||
				p.Timestamp != first.Timestamp || len(p.CSRC) != len(first.CSRC) ||
				!sameFragmentHeader(p.Payload, first.Payload, hdr) || p.Payload[hdr-1]&0x80 != 0 {
				return 0, false
			}
		}
		if len(p.Payload) > maxPayload(p) {
			large = true
		}
		if p.Payload[hdr-1]&0x40 != 0 {
			return j + 1, large && j > i
		}
	}
	return 0, false
}

func (s splitter) fuHeaderLen() int {
	if s.h265 {
		return 3
	}
	return 2
}

func (s splitter) isFU(pl []byte) bool {
	if s.h265 {
		return len(pl) >= 4 && (pl[0]>>1)&0x3f == h265FU
	}
	return len(pl) >= 3 && pl[0]&0x1f == h264FUA
}

// sameFragmentHeader: the same payload header and NAL unit type.
func sameFragmentHeader(a, b []byte, hdr int) bool {
	for k := range hdr - 1 {
		if a[k] != b[k] {
			return false
		}
	}
	return a[hdr-1]&0x3f == b[hdr-1]&0x3f
}

// refragmentRun cuts the NAL unit of run (fragments found by fuRun, hdr
// bytes of headers each) again into as few fragments as fit, of even
// sizes, and appends them to out: the run's own packets first (headers
// kept), then copies of the last one's header. The camera's buffers are
// not written to.
func (b *pieceBuilder) refragmentRun(run []*rtp.Packet, hdr int, out []*rtp.Packet) []*rtp.Packet {
	last := run[len(run)-1]
	marker := last.Marker
	b.start(run[0])
	total := 0
	for _, p := range run {
		total += len(p.Payload) - hdr
	}
	chunk := b.max - hdr
	n := (total + chunk - 1) / chunk
	per := (total + n - 1) / n
	prefix := run[0].Payload[:hdr]
	src, at := 0, hdr // the run's packet and offset being copied
	for k := range n {
		size := min(per, total)
		total -= size
		piece := b.take(hdr + size)
		copy(piece, prefix)
		fu := prefix[hdr-1] &^ 0xc0
		if k == 0 {
			fu |= 0x80
		}
		if k == n-1 {
			fu |= 0x40
		}
		piece[hdr-1] = fu
		for filled := hdr; filled < len(piece); {
			c := copy(piece[filled:], run[src].Payload[at:])
			filled += c
			at += c
			if at == len(run[src].Payload) {
				src, at = src+1, hdr
			}
		}
		b.payloads = append(b.payloads, piece)
	}
	for k, pl := range b.payloads {
		var p *rtp.Packet
		if k < len(run) {
			p = run[k]
		} else {
			if len(b.spare) == 0 {
				b.spare = make([]rtp.Packet, 16)
			}
			p = &b.spare[0]
			b.spare = b.spare[1:]
			p.Header = last.Header
		}
		p.Payload = pl
		p.Marker = false
		p.Padding, p.PaddingSize = false, 0
		out = append(out, p)
	}
	out[len(out)-1].Marker = marker
	return out
}
