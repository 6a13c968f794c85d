package viewer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// errNoCommonCodec means the viewer's offer has no codec the camera's video
// can be passed through as. Handlers answer it with 406.
var errNoCommonCodec = errors.New("no common video codec")

// offeredCodec is one payload type of an offer's media section.
type offeredCodec struct {
	payloadType uint8
	name        string // encoding name as written in rtpmap, e.g. "H264"
	clockRate   int
	channels    int
	fmtp        string
}

// offer is what viewer needs to know of a WHEP offer: the codecs of its first
// video and first audio section that can receive.
type offer struct {
	video, audio []offeredCodec
}

// parseOffer reads an SDP offer. Errors describe what is wrong for a 400.
func parseOffer(raw []byte) (offer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(raw); err != nil {
		return offer{}, fmt.Errorf("malformed sdp: %w", err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return offer{}, errors.New("sdp offer has no media section")
	}
	var o offer
	var seenVideo, seenAudio bool
	for _, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if (kind == "video" && seenVideo) || (kind == "audio" && seenAudio) {
			continue
		}
		if _, sendOnly := md.Attribute("sendonly"); sendOnly {
			continue // the viewer would not receive on it
		}
		if _, inactive := md.Attribute("inactive"); inactive {
			continue
		}
		codecs := sectionCodecs(md)
		switch kind {
		case "video":
			seenVideo = true
			o.video = codecs
		case "audio":
			seenAudio = true
			o.audio = codecs
		}
	}
	if !seenVideo && !seenAudio {
		return offer{}, errors.New("sdp offer has no audio or video section")
	}
	return o, nil
}

// sectionCodecs lists the payload types of a media section in offer order
// (the viewer's preference), with their rtpmap and fmtp.
func sectionCodecs(md *sdp.MediaDescription) []offeredCodec {
	byPT := make(map[uint8]*offeredCodec)
	var order []uint8
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		if _, dup := byPT[uint8(pt)]; dup {
			continue
		}
		byPT[uint8(pt)] = &offeredCodec{payloadType: uint8(pt)}
		order = append(order, uint8(pt))
	}
	for _, a := range md.Attributes {
		ptText, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		pt, err := strconv.ParseUint(ptText, 10, 7)
		if err != nil {
			continue
		}
		c := byPT[uint8(pt)]
		if c == nil {
			continue
		}
		switch a.Key {
		case "rtpmap":
			// name/clock[/channels]
			parts := strings.Split(strings.TrimSpace(rest), "/")
			c.name = parts[0]
			if len(parts) > 1 {
				c.clockRate, _ = strconv.Atoi(parts[1])
			}
			if len(parts) > 2 {
				c.channels, _ = strconv.Atoi(parts[2])
			}
		case "fmtp":
			c.fmtp = strings.TrimSpace(rest)
		}
	}
	codecs := make([]offeredCodec, 0, len(order))
	for _, pt := range order {
		c := byPT[pt]
		if c.name == "" {
			c.name, c.clockRate, c.channels = staticPayloadType(pt)
		}
		if c.name != "" {
			codecs = append(codecs, *c)
		}
	}
	return codecs
}

// staticPayloadType names the RFC 3551 payload types that an offer may use
// without an rtpmap line.
func staticPayloadType(pt uint8) (name string, clockRate, channels int) {
	switch pt {
	case 0:
		return ingest.CodecPCMU, 8000, 1
	case 8:
		return ingest.CodecPCMA, 8000, 1
	}
	return "", 0, 0
}

// codecChoice is what a session sends for one camera track: the track's
// index in the reader's Tracks() and the codec as agreed with the viewer.
type codecChoice struct {
	track  int
	kind   webrtc.RTPCodecType
	params webrtc.RTPCodecParameters
}

// chooseCodecs matches the camera's tracks with the offer: the first video
// track that the viewer can decode (required) and the first audio track it
// can (optional). Payloads pass through untouched, so a match means the same
// codec; only H.264's profile is negotiated loosely (see chooseH264).
func chooseCodecs(tracks []ingest.Track, o offer) ([]codecChoice, error) {
	var choices []codecChoice
	var cameraVideo []string
	for i, t := range tracks {
		if t.Kind != ingest.KindVideo {
			continue
		}
		cameraVideo = append(cameraVideo, t.Codec)
		if c, ok := chooseVideo(t, o.video); ok {
			choices = append(choices, codecChoice{track: i, kind: webrtc.RTPCodecTypeVideo, params: c})
			break
		}
	}
	if len(cameraVideo) > 0 && len(choices) == 0 {
		return nil, fmt.Errorf("%w: camera sends %s, offer has %s",
			errNoCommonCodec, strings.Join(cameraVideo, ", "), codecNames(o.video))
	}
	for i, t := range tracks {
		if t.Kind != ingest.KindAudio {
			continue
		}
		if c, ok := chooseAudio(t, o.audio); ok {
			choices = append(choices, codecChoice{track: i, kind: webrtc.RTPCodecTypeAudio, params: c})
			break
		}
	}
	if len(choices) == 0 {
		return nil, fmt.Errorf("%w: camera has no track the offer can receive", errNoCommonCodec)
	}
	return choices, nil
}

func codecNames(codecs []offeredCodec) string {
	if len(codecs) == 0 {
		return "no video"
	}
	var names []string
	seen := make(map[string]bool)
	for _, c := range codecs {
		if !seen[c.name] {
			seen[c.name] = true
			names = append(names, c.name)
		}
	}
	return strings.Join(names, ", ")
}

func chooseVideo(t ingest.Track, offered []offeredCodec) (webrtc.RTPCodecParameters, bool) {
	switch t.Codec {
	case ingest.CodecH264:
		return chooseH264(t, offered)
	case ingest.CodecH265:
		return chooseH265(t, offered)
	}
	return webrtc.RTPCodecParameters{}, false
}

// chooseH264 picks the offered H.264 format (packetization-mode=1) whose
// profile is closest to the camera's: the same profile and constraints, else
// the same profile, else the viewer's first. Browsers decode any profile they
// support whatever was signalled, so the last resort still plays; the answer
// carries the profile agreed on and the camera's level
// (level-asymmetry-allowed lets the sender's level differ).
func chooseH264(t ingest.Track, offered []offeredCodec) (webrtc.RTPCodecParameters, bool) {
	camPLI := h264ProfileLevelID(t)
	var exact, sameProfile, first *offeredCodec
	for i := range offered {
		c := &offered[i]
		if !strings.EqualFold(c.name, ingest.CodecH264) || c.clockRate != 90000 {
			continue
		}
		params := fmtpParams(c.fmtp)
		if params["packetization-mode"] != "1" {
			continue
		}
		pli := strings.ToLower(params["profile-level-id"])
		if len(pli) != 6 {
			continue
		}
		switch {
		case exact == nil && pli[:4] == camPLI[:4]:
			exact = c
		case sameProfile == nil && pli[:2] == camPLI[:2]:
			sameProfile = c
		case first == nil:
			first = c
		}
	}
	chosen := exact
	if chosen == nil {
		chosen = sameProfile
	}
	if chosen == nil {
		chosen = first
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	offeredPLI := strings.ToLower(fmtpParams(chosen.fmtp)["profile-level-id"])
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:  webrtc.MimeTypeH264,
			ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" +
				offeredPLI[:4] + camPLI[4:],
		},
		PayloadType: webrtc.PayloadType(chosen.payloadType),
	}, true
}

// h264ProfileLevelID is the camera's profile-level-id in lower-case hex:
// from the track's FMTP, else from its SPS, else constrained baseline 3.1.
func h264ProfileLevelID(t ingest.Track) string {
	if pli := strings.ToLower(fmtpParams(t.FMTP)["profile-level-id"]); len(pli) == 6 {
		if _, err := hex.DecodeString(pli); err == nil {
			return pli
		}
	}
	if len(t.SPS) >= 4 {
		return hex.EncodeToString(t.SPS[1:4])
	}
	return "42e01f"
}

// chooseH265 picks the offered H.265 format with the camera's profile-id,
// else the viewer's first H.265 format. Browsers offer H.265 only where they
// can decode it.
func chooseH265(t ingest.Track, offered []offeredCodec) (webrtc.RTPCodecParameters, bool) {
	camProfile := fmtpParams(t.FMTP)["profile-id"]
	var chosen *offeredCodec
	for i := range offered {
		c := &offered[i]
		if !strings.EqualFold(c.name, ingest.CodecH265) || c.clockRate != 90000 {
			continue
		}
		if chosen == nil {
			chosen = c
		}
		if camProfile != "" && fmtpParams(c.fmtp)["profile-id"] == camProfile {
			chosen = c
			break
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType:    webrtc.MimeTypeH265,
			ClockRate:   90000,
			SDPFmtpLine: chosen.fmtp,
		},
		PayloadType: webrtc.PayloadType(chosen.payloadType),
	}, true
}

// chooseAudio passes G.711 and Opus through when the viewer offers the same
// codec at the camera's clock rate.
func chooseAudio(t ingest.Track, offered []offeredCodec) (webrtc.RTPCodecParameters, bool) {
	var mime string
	switch t.Codec {
	case ingest.CodecPCMU:
		mime = webrtc.MimeTypePCMU
	case ingest.CodecPCMA:
		mime = webrtc.MimeTypePCMA
	case ingest.CodecOpus:
		mime = webrtc.MimeTypeOpus
	default:
		return webrtc.RTPCodecParameters{}, false
	}
	for _, c := range offered {
		if !strings.EqualFold(c.name, t.Codec) || c.clockRate != t.ClockRate {
			continue
		}
		channels := c.channels
		if channels == 0 && t.Codec != ingest.CodecOpus {
			channels = 1
		}
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:    mime,
				ClockRate:   uint32(c.clockRate),
				Channels:    uint16(channels),
				SDPFmtpLine: c.fmtp,
			},
			PayloadType: webrtc.PayloadType(c.payloadType),
		}, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// fmtpParams splits "a=1;b=2" into a map with lower-case keys.
func fmtpParams(line string) map[string]string {
	params := make(map[string]string)
	for part := range strings.SplitSeq(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k != "" {
			params[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return params
}
