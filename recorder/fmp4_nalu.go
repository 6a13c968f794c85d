package recorder

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// Bounds on what one access unit may hold, so that a hostile camera cannot
// make the recorder buffer without end (the same bounds as mediacommon's
// decoders).
const (
	maxAUBytes = 8 << 20
	maxAUNALUs = 256
)

// errBadUnit: a unit did not depacketize (a lost fragment, a malformed
// packet). The unit is skipped and counted; the next keyframe heals.
var errBadUnit = errors.New("malformed unit")

// depacketize returns the NAL units of one video access unit: single NAL
// unit packets, aggregates (H.264 STAP-A, H.265 AP) and fragments (H.264
// FU-A, H.265 FU).
func depacketize(codec string, pkts []*rtp.Packet) ([][]byte, error) {
	var (
		nalus []byte // scratch for a fragmented NALU
		inFU  bool
		out   [][]byte
		size  int
	)
	add := func(n []byte) error {
		if len(n) == 0 {
			return nil
		}
		size += len(n)
		if size > maxAUBytes || len(out) >= maxAUNALUs {
			return fmt.Errorf("%w: access unit too large", errBadUnit)
		}
		out = append(out, n)
		return nil
	}
	h265 := codec == ingest.CodecH265
	hdr := 1
	if h265 {
		hdr = 2
	}
	for _, p := range pkts {
		pl := p.Payload
		if len(pl) < hdr {
			return nil, fmt.Errorf("%w: short payload", errBadUnit)
		}
		var typ int
		if h265 {
			typ = int(pl[0]>>1) & 0x3f
		} else {
			typ = int(pl[0] & 0x1f)
		}
		switch {
		case (!h265 && typ == 24) || (h265 && typ == 48): // STAP-A, AP
			b := pl[hdr:]
			for len(b) > 0 {
				if len(b) < 2 {
					return nil, fmt.Errorf("%w: bad aggregate", errBadUnit)
				}
				n := int(b[0])<<8 | int(b[1])
				if n == 0 || len(b) < 2+n {
					return nil, fmt.Errorf("%w: bad aggregate", errBadUnit)
				}
				if err := add(b[2 : 2+n]); err != nil {
					return nil, err
				}
				b = b[2+n:]
			}
		case (!h265 && typ == 28) || (h265 && typ == 49): // FU-A, FU
			if len(pl) < hdr+1 {
				return nil, fmt.Errorf("%w: short fragment", errBadUnit)
			}
			fu := pl[hdr]
			start, end := fu&0x80 != 0, fu&0x40 != 0
			if start {
				if h265 {
					nalType := fu & 0x3f
					nalus = append([]byte{(pl[0] & 0x81) | nalType<<1, pl[1]}, pl[hdr+1:]...)
				} else {
					nalus = append([]byte{(pl[0] & 0xe0) | (fu & 0x1f)}, pl[hdr+1:]...)
				}
				inFU = true
			} else {
				if !inFU {
					return nil, fmt.Errorf("%w: fragment without start", errBadUnit)
				}
				nalus = append(nalus, pl[hdr+1:]...)
			}
			if len(nalus) > maxAUBytes {
				return nil, fmt.Errorf("%w: access unit too large", errBadUnit)
			}
			if end {
				if err := add(nalus); err != nil {
					return nil, err
				}
				nalus, inFU = nil, false
			}
		case (!h265 && typ >= 1 && typ <= 23) || (h265 && typ < 48):
			if inFU {
				return nil, fmt.Errorf("%w: unfinished fragment", errBadUnit)
			}
			if err := add(pl); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: packet type %d", errBadUnit, typ)
		}
	}
	if inFU {
		return nil, fmt.Errorf("%w: unfinished fragment", errBadUnit)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty", errBadUnit)
	}
	return out, nil
}

// paramSets returns the parameter sets (H.265 VPS, SPS, PPS; H.264 SPS,
// PPS) carried in an access unit, nil where absent.
func paramSets(codec string, au [][]byte) (vps, sps, pps []byte) {
	for _, n := range au {
		if codec == ingest.CodecH265 {
			if len(n) < 2 {
				continue
			}
			switch (n[0] >> 1) & 0x3f {
			case 32:
				vps = n
			case 33:
				sps = n
			case 34:
				pps = n
			}
			continue
		}
		switch n[0] & 0x1f {
		case 7:
			sps = n
		case 8:
			pps = n
		}
	}
	return vps, sps, pps
}
