package ingest

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
