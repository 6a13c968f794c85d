package recorder

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/skywatch/skywatch/ingest"
)

// fmp4Audio turns a camera's audio packets into MP4 samples. MP4 has no
// G.711 sample entry that browsers read, so G.711 is decoded to 16-bit
// big-endian LPCM (an ipcm entry), as MediaMTX records it: twice the bytes
// of G.711 (128 kbit/s at 8 kHz mono, small beside the video). Other audio
// codecs are not recorded.
type fmp4Audio struct {
	alaw     bool
	rate     int
	channels int
}

// newFMP4Audio returns the converter for t, or nil when t is not recorded.
func newFMP4Audio(t ingest.Track) *fmp4Audio {
	if t.Codec != ingest.CodecPCMU && t.Codec != ingest.CodecPCMA {
		return nil
	}
	a := &fmp4Audio{alaw: t.Codec == ingest.CodecPCMA, rate: t.ClockRate, channels: t.Channels}
	if a.rate <= 0 {
		a.rate = 8000
	}
	if a.channels <= 0 {
		a.channels = 1
	}
	return a
}

func (a *fmp4Audio) codec() mp4.Codec {
	return &mp4.CodecLPCM{BitDepth: 16, SampleRate: a.rate, ChannelCount: a.channels}
}

// sample returns one packet's samples as LPCM and their duration in ticks
// of the track's clock.
func (a *fmp4Audio) sample(payload []byte) ([]byte, uint32) {
	if len(payload) == 0 || len(payload) > maxAUBytes {
		return nil, 0
	}
	var pcm []byte
	if a.alaw {
		var s g711.Alaw
		s.Unmarshal(payload)
		pcm = s
	} else {
		var s g711.Mulaw
		s.Unmarshal(payload)
		pcm = s
	}
	return pcm, uint32(len(payload) / a.channels)
}
