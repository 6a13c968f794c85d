package ingest

import (
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// payloadInfo is what one video RTP payload carries, as far as keyframes go.
type payloadInfo struct {
	// random is true when the payload holds a random access picture (H.264
	// IDR, H.265 IRAP) or the first fragment of one.
	random bool
	// Parameter sets carried whole in the payload (slices of it).
	vps, sps, pps []byte
}

// inspectH264 looks into an H.264 RTP payload: a single NAL unit, a STAP-A
// or an FU-A.
func inspectH264(p []byte) payloadInfo {
	var info payloadInfo
	if len(p) == 0 {
		return info
	}
	switch h264.NALUType(p[0] & 0x1f) {
	case h264.NALUTypeSTAPA:
		forEachAggregated(p[1:], func(nal []byte) {
			info.addH264(nal)
		})
	case h264.NALUTypeFUA:
		if len(p) >= 2 && p[1]&0x80 != 0 && h264.NALUType(p[1]&0x1f) == h264.NALUTypeIDR {
			info.random = true
		}
	default:
		info.addH264(p)
	}
	return info
}

func (info *payloadInfo) addH264(nal []byte) {
	if len(nal) == 0 {
		return
	}
	switch h264.NALUType(nal[0] & 0x1f) {
	case h264.NALUTypeIDR:
		info.random = true
	case h264.NALUTypeSPS:
		info.sps = nal
	case h264.NALUTypePPS:
		info.pps = nal
	}
}

// inspectH265 looks into an H.265 RTP payload: a single NAL unit, an AP or
// an FU. It assumes no DONL fields (sprop-max-don-diff is 0, as with every
// camera we know).
func inspectH265(p []byte) payloadInfo {
	var info payloadInfo
	if len(p) < 2 {
		return info
	}
	switch h265.NALUType((p[0] >> 1) & 0x3f) {
	case h265.NALUType_AggregationUnit:
		forEachAggregated(p[2:], func(nal []byte) {
			info.addH265(nal)
		})
	case h265.NALUType_FragmentationUnit:
		if len(p) >= 3 && p[2]&0x80 != 0 && isIRAP(h265.NALUType(p[2]&0x3f)) {
			info.random = true
		}
	default:
		info.addH265(p)
	}
	return info
}

func (info *payloadInfo) addH265(nal []byte) {
	if len(nal) < 2 {
		return
	}
	switch typ := h265.NALUType((nal[0] >> 1) & 0x3f); {
	case isIRAP(typ):
		info.random = true
	case typ == h265.NALUType_VPS_NUT:
		info.vps = nal
	case typ == h265.NALUType_SPS_NUT:
		info.sps = nal
	case typ == h265.NALUType_PPS_NUT:
		info.pps = nal
	}
}

// isIRAP tells BLA, IDR and CRA pictures (types 16-21), where decoding can start.
func isIRAP(typ h265.NALUType) bool {
	return typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT
}

// forEachAggregated calls f for each NAL unit of an aggregation packet body
// (16-bit size, NAL unit, repeated). A truncated entry ends the walk.
func forEachAggregated(p []byte, f func(nal []byte)) {
	for len(p) >= 2 {
		n := int(binary.BigEndian.Uint16(p))
		p = p[2:]
		if n == 0 || n > len(p) {
			return
		}
		f(p[:n])
		p = p[n:]
	}
}
