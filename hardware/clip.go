package hardware

import (
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// clipFiles holds the test clips. go:embed needs a package-level variable;
// it is read-only data, so the simulated camera needs no files on disk.
//
//go:embed clips/gop1s.h264 clips/gop4s.h264
var clipFiles embed.FS

// Clip selects one of the test clips. The two embedded ones are 640x360
// H.264 at 25 fps, 12 s long, with SPS/PPS before every IDR; they differ in
// GOP length. ClipSynth2M is generated (see clip_synth.go).
type Clip int

// The embedded clips.
const (
	// ClipGOP1s has an IDR every second (25 frames).
	ClipGOP1s Clip = iota
	// ClipGOP4s has an IDR every 4 seconds (100 frames), like many cameras.
	ClipGOP4s
	// ClipSynth2M is a field camera's main stream: 1920x1080 at 25 fps,
	// 2 Mbit/s, an IDR every 10 s (250 frames), generated rather than
	// embedded. Its pictures do not decode: it is for measuring what
	// records or relays a stream, not for watching.
	ClipSynth2M
	// ClipSynth2MGOP2s is ClipSynth2M with an IDR every 2 s (50 frames),
	// as cameras set for quick starts of their viewers send.
	ClipSynth2MGOP2s
)

// Frame timing shared by both clips.
const (
	clipFPS = 25
	// clipFrameTicks is the RTP timestamp step of one frame at 90 kHz.
	clipFrameTicks = 90000 / clipFPS
)

// ErrUnknownClip is returned for a Clip value or name that is not embedded.
var ErrUnknownClip = errors.New("unknown clip")

// String returns the clip's name as accepted by ParseClip.
func (c Clip) String() string {
	switch c {
	case ClipGOP1s:
		return "gop1s"
	case ClipGOP4s:
		return "gop4s"
	case ClipSynth2M:
		return "synth2m"
	case ClipSynth2MGOP2s:
		return "synth2m-gop2s"
	}
	return fmt.Sprintf("clip(%d)", int(c))
}

// ParseClip returns the clip named name ("gop1s", "gop4s", "synth2m" or
// "synth2m-gop2s").
func ParseClip(name string) (Clip, error) {
	switch strings.ToLower(name) {
	case "gop1s":
		return ClipGOP1s, nil
	case "gop4s":
		return ClipGOP4s, nil
	case "synth2m":
		return ClipSynth2M, nil
	case "synth2m-gop2s":
		return ClipSynth2MGOP2s, nil
	}
	return 0, fmt.Errorf("clip %q: %w (want gop1s, gop4s, synth2m or synth2m-gop2s)", name, ErrUnknownClip)
}

// GOPFrames returns the number of frames from one IDR to the next.
func (c Clip) GOPFrames() int {
	switch c {
	case ClipGOP4s:
		return 4 * clipFPS
	case ClipSynth2M, ClipSynth2MGOP2s:
		return synthShape(c).frames
	}
	return clipFPS
}

// valid tells whether c is a known clip.
func (c Clip) valid() error {
	switch c {
	case ClipGOP1s, ClipGOP4s, ClipSynth2M, ClipSynth2MGOP2s:
		return nil
	}
	return fmt.Errorf("%v: %w", c, ErrUnknownClip)
}

// clipData is a parsed clip: its access units in decode order and the
// parameter sets announced in the SDP.
type clipData struct {
	aus [][][]byte
	sps []byte
	pps []byte
}

// loadClip reads and parses an embedded clip, or generates a synthetic one.
func loadClip(c Clip) (*clipData, error) {
	if err := c.valid(); err != nil {
		return nil, err
	}
	if c == ClipSynth2M || c == ClipSynth2MGOP2s {
		return synthClip(synthShape(c)), nil
	}
	buf, err := clipFiles.ReadFile("clips/" + c.String() + ".h264")
	if err != nil {
		return nil, fmt.Errorf("clip %v: %w", c, err)
	}
	d, err := parseAnnexB(buf)
	if err != nil {
		return nil, fmt.Errorf("clip %v: %w", c, err)
	}
	return d, nil
}

// parseAnnexB splits an Annex-B stream into access units. A new access unit
// starts at an AUD, SPS, PPS or SEI that follows a picture, and at a slice
// with first_mb_in_slice == 0 that follows a picture, so parameter sets and
// SEI attach to the picture after them.
func parseAnnexB(buf []byte) (*clipData, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(buf); err != nil {
		return nil, fmt.Errorf("annex-b: %w", err)
	}

	d := &clipData{}
	var cur [][]byte
	curHasPicture := false
	flush := func() {
		if curHasPicture {
			d.aus = append(d.aus, cur)
		}
		cur = nil
		curHasPicture = false
	}

	for _, nalu := range nalus {
		if len(nalu) == 0 {
			continue
		}
		typ := h264.NALUType(nalu[0] & 0x1f)
		switch typ {
		case h264.NALUTypeSPS:
			if d.sps == nil {
				d.sps = nalu
			}
		case h264.NALUTypePPS:
			if d.pps == nil {
				d.pps = nalu
			}
		}

		switch typ {
		case h264.NALUTypeAccessUnitDelimiter, h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeSEI:
			if curHasPicture {
				flush()
			}
		case h264.NALUTypeNonIDR, h264.NALUTypeIDR:
			// first_mb_in_slice is the first ue(v) after the header byte;
			// it is 0 exactly when its first bit is 1.
			firstSlice := len(nalu) > 1 && nalu[1]&0x80 != 0
			if firstSlice && curHasPicture {
				flush()
			}
			curHasPicture = true
		}
		cur = append(cur, nalu)
	}
	flush()

	if len(d.aus) == 0 {
		return nil, errors.New("no pictures")
	}
	if d.sps == nil || d.pps == nil {
		return nil, errors.New("no SPS or PPS")
	}
	if !h264.IsRandomAccess(d.aus[0]) {
		return nil, errors.New("first access unit is not an IDR")
	}
	return d, nil
}

// ByteRate returns how many bytes of H.264 the clip carries per second of
// video: its NAL units, without start codes, parameter sets included. A
// camera path sends that plus the RTP headers.
func (c Clip) ByteRate() (float64, error) {
	d, err := loadClip(c)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, au := range d.aus {
		for _, nalu := range au {
			total += len(nalu)
		}
	}
	return float64(total) * clipFPS / float64(len(d.aus)), nil
}
