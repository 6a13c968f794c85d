package ingest

import "github.com/pion/rtp"

// maxUnitPackets caps a video unit, so that a camera that never sets the
// marker bit (and never changes the timestamp) cannot grow one without bound.
const maxUnitPackets = 2000

// assembler groups the RTP packets of one video track into access units:
// packets with the same timestamp up to the marker bit. A timestamp change
// also ends a unit, for cameras that forget the marker.
type assembler struct {
	pkts    []*rtp.Packet
	lastLen int
}

// push adds pkt and calls emit with each unit that it completes (at most
// two: the previous one, when pkt's timestamp differs, and pkt's own, when it
// has the marker). emit may keep the slice.
func (a *assembler) push(pkt *rtp.Packet, emit func([]*rtp.Packet)) {
	if len(a.pkts) > 0 && pkt.Timestamp != a.pkts[0].Timestamp {
		emit(a.flush())
	}
	if a.pkts == nil {
		// Units are kept by readers, so each gets its own slice; size it
		// like the previous one to avoid regrowing.
		a.pkts = make([]*rtp.Packet, 0, max(a.lastLen, 4))
	}
	a.pkts = append(a.pkts, pkt)
	if pkt.Marker || len(a.pkts) >= maxUnitPackets {
		emit(a.flush())
	}
}

func (a *assembler) flush() []*rtp.Packet {
	p := a.pkts
	a.pkts = nil
	a.lastLen = len(p)
	return p
}

// keyframer finds keyframes in a video track's units, keeps the track's
// parameter sets up to date from the stream, and makes every keyframe unit
// self-contained.
type keyframer struct {
	codec string // CodecH264 or CodecH265
	// params holds the latest parameter sets, from the SDP or in-band.
	params Track
}

// unit inspects one assembled unit. It returns the unit's packets (with
// parameter sets prepended when a keyframe lacks them), whether it is a
// keyframe, and whether the parameter sets changed (k.params then has the new
// ones).
//
// Prepended packets are single-NAL packets with the unit's timestamp and
// the sequence numbers just before the unit's first packet; they repeat
// numbers of the previous unit, which is harmless because readers renumber
// packets (WebRTC) or depacketize by order.
func (k *keyframer) unit(pkts []*rtp.Packet) (out []*rtp.Packet, keyframe, changed bool) {
	inspect := inspectH264
	if k.codec == CodecH265 {
		inspect = inspectH265
	}
	var random bool
	var vps, sps, pps []byte
	for _, p := range pkts {
		info := inspect(p.Payload)
		random = random || info.random
		if info.vps != nil {
			vps = info.vps
		}
		if info.sps != nil {
			sps = info.sps
		}
		if info.pps != nil {
			pps = info.pps
		}
	}
	if vps != nil || sps != nil || pps != nil {
		changed = k.params.setParams(vps, sps, pps)
	}
	if !random {
		return pkts, false, changed
	}
	if !k.params.hasParams() {
		// Not decodable on its own: a reader waiting for a keyframe goes on
		// waiting.
		return pkts, false, changed
	}
	var missing [][]byte
	if k.codec == CodecH265 && vps == nil {
		missing = append(missing, k.params.VPS)
	}
	if sps == nil {
		missing = append(missing, k.params.SPS)
	}
	if pps == nil {
		missing = append(missing, k.params.PPS)
	}
	if len(missing) == 0 {
		return pkts, true, changed
	}
	first := pkts[0]
	out = make([]*rtp.Packet, 0, len(missing)+len(pkts))
	for i, nal := range missing {
		h := first.Header
		h.Marker = false
		h.SequenceNumber = first.SequenceNumber - uint16(len(missing)-i)
		// Extensions and CSRC belong to the camera's packet; the inserted
		// one carries only the plain header.
		h.Extension, h.Extensions, h.ExtensionProfile, h.CSRC = false, nil, 0, nil
		h.Padding, h.PaddingSize = false, 0
		out = append(out, &rtp.Packet{Header: h, Payload: nal})
	}
	return append(out, pkts...), true, changed
}
