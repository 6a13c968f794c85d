package ingest

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// Codec names, as they appear in SDP rtpmap lines.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
	CodecPCMU = "PCMU"
	CodecPCMA = "PCMA"
	CodecOpus = "opus"
)

// TrackKind tells video from audio.
type TrackKind string

// Track kinds.
const (
	KindVideo TrackKind = "video"
	KindAudio TrackKind = "audio"
)

// Track describes one media track of a camera as Skywatch passes it through.
// A Track is a value: readers get their own copy.
type Track struct {
	Kind      TrackKind
	Codec     string // one of the Codec constants
	ClockRate int
	Channels  int // audio only; 0 for video

	// PayloadType is the camera's RTP payload type. Readers that renegotiate
	// (WebRTC) rewrite it.
	PayloadType uint8

	// FMTP is the format parameters to announce to a viewer, without
	// sprop-parameter-sets: for H.264 "level-asymmetry-allowed=1;
	// packetization-mode=1;profile-level-id=XXXXXX" with the camera's profile.
	FMTP string

	// Parameter sets known so far (H.264 SPS/PPS, H.265 VPS/SPS/PPS), from
	// the SDP or the stream. They may be nil until the first keyframe.
	VPS, SPS, PPS []byte

	// Width and Height in pixels, when the SPS has been parsed; 0 otherwise.
	Width, Height int
}

// sameCodec tells whether a reader of tracks a can go on reading tracks b:
// the same tracks in the same order with the same codecs and payload types.
// Parameter sets and sizes may differ (decoders follow in-band changes).
func sameCodecs(a, b []Track) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].Codec != b[i].Codec || a[i].ClockRate != b[i].ClockRate ||
			a[i].Channels != b[i].Channels || a[i].PayloadType != b[i].PayloadType {
			return false
		}
	}
	return true
}

// hasParams tells whether the parameter sets a decoder needs are known.
func (t *Track) hasParams() bool {
	switch t.Codec {
	case CodecH264:
		return t.SPS != nil && t.PPS != nil
	case CodecH265:
		return t.VPS != nil && t.SPS != nil && t.PPS != nil
	}
	return true
}

// setParams stores new parameter sets (nil keeps the old one) and derives
// Width, Height and FMTP from the SPS. It reports whether anything changed.
func (t *Track) setParams(vps, sps, pps []byte) bool {
	changed := false
	set := func(dst *[]byte, src []byte) {
		if src != nil && !bytes.Equal(*dst, src) {
			*dst = bytes.Clone(src)
			changed = true
		}
	}
	set(&t.VPS, vps)
	set(&t.SPS, sps)
	set(&t.PPS, pps)
	if changed || t.FMTP == "" {
		t.deriveFromSPS()
	}
	return changed
}

// defaultH264Profile is announced while the SPS is unknown: constrained
// baseline 3.1, which every browser accepts.
const defaultH264Profile = "42e01f"

// deriveFromSPS fills Width, Height and FMTP. An SPS that does not parse
// leaves the size at 0; the stream still passes through.
func (t *Track) deriveFromSPS() {
	switch t.Codec {
	case CodecH264:
		profile := defaultH264Profile
		if len(t.SPS) >= 4 {
			profile = hex.EncodeToString(t.SPS[1:4])
		}
		t.FMTP = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile
		var sps h264.SPS
		if t.SPS != nil && sps.Unmarshal(t.SPS) == nil {
			t.Width, t.Height = sps.Width(), sps.Height()
		}
	case CodecH265:
		var sps h265.SPS
		if t.SPS != nil && sps.Unmarshal(t.SPS) == nil {
			t.Width, t.Height = sps.Width(), sps.Height()
			ptl := sps.ProfileTierLevel
			t.FMTP = fmt.Sprintf("level-id=%d;profile-id=%d;tier-flag=%d;tx-mode=SRST",
				ptl.GeneralLevelIdc, ptl.GeneralProfileIdc, ptl.GeneralTierFlag)
		} else if t.FMTP == "" {
			// Main profile, level 3.1: what browsers that play H.265 offer.
			t.FMTP = "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"
		}
	}
}

// cloneTracks copies a track list. Parameter sets are never modified in
// place (setParams replaces them), so the copies share them.
func cloneTracks(ts []Track) []Track {
	return append([]Track(nil), ts...)
}
