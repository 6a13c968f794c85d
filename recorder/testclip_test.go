package recorder

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// testClip is one of the hardware package's clips as access units.
type testClip struct {
	aus      [][][]byte
	sps, pps []byte
}

func loadTestClip(t testing.TB, name string) *testClip {
	t.Helper()
	buf, err := os.ReadFile("../hardware/clips/" + name + ".h264")
	if err != nil {
		t.Fatal(err)
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(buf); err != nil {
		t.Fatal(err)
	}
	c := &testClip{}
	var cur [][]byte
	pic := false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		typ := h264.NALUType(n[0] & 0x1f)
		switch typ {
		case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeSEI, h264.NALUTypeAccessUnitDelimiter:
			if typ == h264.NALUTypeSPS && c.sps == nil {
				c.sps = n
			}
			if typ == h264.NALUTypePPS && c.pps == nil {
				c.pps = n
			}
			if pic {
				c.aus, cur, pic = append(c.aus, cur), nil, false
			}
		case h264.NALUTypeIDR, h264.NALUTypeNonIDR:
			if len(n) > 1 && n[1]&0x80 != 0 && pic {
				c.aus, cur, pic = append(c.aus, cur), nil, false
			}
			pic = true
		}
		cur = append(cur, n)
	}
	if pic {
		c.aus = append(c.aus, cur)
	}
	return c
}

func (c *testClip) tracks(audio bool) []ingest.Track {
	ts := []ingest.Track{{Kind: ingest.KindVideo, Codec: ingest.CodecH264, ClockRate: 90000, PayloadType: 96,
		SPS: c.sps, PPS: c.pps, Width: 640, Height: 360}}
	if audio {
		ts = append(ts, ingest.Track{Kind: ingest.KindAudio, Codec: ingest.CodecPCMU, ClockRate: 8000, Channels: 1, PayloadType: 0})
	}
	return ts
}

// unitFeed makes ingest units of a clip as a camera at 25 fps sends them,
// looping the clip, with G.711 audio every 20 ms when audio is set.
type unitFeed struct {
	clip    *testClip
	enc     rtph264.Encoder
	audio   bool
	epoch   uint64
	base    time.Time
	frame   int
	tsBase  uint32
	audioTS uint32
	audioAt time.Duration
	pending []*ingest.Unit
}

func newUnitFeed(t testing.TB, clip *testClip, base time.Time, audio bool) *unitFeed {
	f := &unitFeed{clip: clip, base: base, audio: audio, epoch: 1, tsBase: 0xfffe0000}
	f.enc = rtph264.Encoder{PayloadType: 96, PayloadMaxSize: 1200}
	if err := f.enc.Init(); err != nil {
		t.Fatal(err)
	}
	return f
}

// next returns the next unit in arrival order.
func (f *unitFeed) next(t testing.TB) *ingest.Unit {
	if len(f.pending) > 0 {
		u := f.pending[0]
		f.pending = f.pending[1:]
		return u
	}
	vt := time.Duration(f.frame) * 40 * time.Millisecond
	if f.audio && f.audioAt <= vt {
		payload := make([]byte, 160)
		for i := range payload {
			payload[i] = byte(0xff - i%16)
		}
		u := &ingest.Unit{Track: 1, Epoch: f.epoch, Received: f.base.Add(f.audioAt),
			Packets: []*rtp.Packet{{Header: rtp.Header{Timestamp: f.audioTS, PayloadType: 0}, Payload: payload}}}
		f.audioAt += 20 * time.Millisecond
		f.audioTS += 160
		return u
	}
	au := f.clip.aus[f.frame%len(f.clip.aus)]
	pkts, err := f.enc.Encode(au)
	if err != nil {
		t.Fatal(err)
	}
	ts := f.tsBase + uint32(f.frame*3600)
	for _, p := range pkts {
		p.Timestamp = ts
	}
	u := &ingest.Unit{Track: 0, Epoch: f.epoch, Received: f.base.Add(vt), Packets: pkts, Keyframe: h264.IsRandomAccess(au)}
	f.frame++
	return u
}

// otherHeightSPS returns the clip's SPS with one bit of its frame cropping
// flipped, so that the picture is 640x362 instead of 640x360: a camera
// changing its resolution, as far as a muxer can tell.
func (c *testClip) otherHeightSPS(t testing.TB) []byte {
	t.Helper()
	var orig h264.SPS
	if err := orig.Unmarshal(c.sps); err != nil {
		t.Fatal(err)
	}
	for i := 8; i < len(c.sps)*8; i++ {
		sps := append([]byte(nil), c.sps...)
		sps[i/8] ^= 0x80 >> (i % 8)
		var s h264.SPS
		if s.Unmarshal(sps) != nil || s.Width() != orig.Width() || s.Height() != orig.Height()+2 {
			continue
		}
		s.FrameCropping, orig.FrameCropping = nil, nil
		if reflect.DeepEqual(s, orig) {
			return sps
		}
		_ = orig.Unmarshal(c.sps)
	}
	t.Fatal("no bit of the SPS changes only the height")
	return nil
}
