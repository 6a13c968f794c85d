package hardware

import (
	"bytes"
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestClipParse(t *testing.T) {
	for _, tc := range []struct {
		clip      Clip
		gopFrames int
	}{
		{ClipGOP1s, 25},
		{ClipGOP4s, 100},
	} {
		t.Run(tc.clip.String(), func(t *testing.T) {
			if got := tc.clip.GOPFrames(); got != tc.gopFrames {
				t.Fatalf("GOPFrames() = %d, want %d", got, tc.gopFrames)
			}
			d, err := loadClip(tc.clip)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.aus) != 300 {
				t.Fatalf("got %d access units, want 300 (12 s at 25 fps)", len(d.aus))
			}

			var sps h264.SPS
			if err := sps.Unmarshal(d.sps); err != nil {
				t.Fatalf("SPS: %v", err)
			}
			if sps.Width() != 640 || sps.Height() != 360 {
				t.Fatalf("size %dx%d, want 640x360", sps.Width(), sps.Height())
			}
			if h264.NALUType(d.pps[0]&0x1f) != h264.NALUTypePPS {
				t.Fatalf("pps has NALU type %v", h264.NALUType(d.pps[0]&0x1f))
			}

			for i, au := range d.aus {
				wantIDR := i%tc.gopFrames == 0
				if got := h264.IsRandomAccess(au); got != wantIDR {
					t.Fatalf("access unit %d: IDR = %v, want %v", i, got, wantIDR)
				}
				pictures := 0
				hasSPS, hasPPS := false, false
				for _, nalu := range au {
					switch h264.NALUType(nalu[0] & 0x1f) {
					case h264.NALUTypeIDR, h264.NALUTypeNonIDR:
						pictures++
					case h264.NALUTypeSPS:
						hasSPS = true
					case h264.NALUTypePPS:
						hasPPS = true
					}
				}
				if pictures != 1 {
					t.Fatalf("access unit %d has %d slices, want 1", i, pictures)
				}
				// Real cameras repeat the parameter sets before each IDR.
				if wantIDR && (!hasSPS || !hasPPS) {
					t.Fatalf("IDR access unit %d lacks SPS/PPS", i)
				}
				// The picture is the last NALU of its access unit.
				last := h264.NALUType(au[len(au)-1][0] & 0x1f)
				if last != h264.NALUTypeIDR && last != h264.NALUTypeNonIDR {
					t.Fatalf("access unit %d ends with %v", i, last)
				}
			}
		})
	}
}

func TestParseAnnexBGrouping(t *testing.T) {
	sc := []byte{0, 0, 0, 1}
	sps := []byte{0x67, 0x42, 0xc0, 0x1e}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	sei := []byte{0x06, 0x05, 0x01, 0x00}
	idr := []byte{0x65, 0x88, 0x80}      // first_mb_in_slice = 0
	p1 := []byte{0x41, 0x9a, 0x01}       // first_mb_in_slice = 0
	p1s2 := []byte{0x41, 0x40, 0x02}     // first_mb_in_slice != 0: second slice
	aud := []byte{0x09, 0xf0}            // access unit delimiter
	p2 := []byte{0x41, 0x9a, 0x02, 0x07} // first_mb_in_slice = 0

	var stream []byte
	for _, n := range [][]byte{sps, pps, sei, idr, p1, p1s2, aud, p2} {
		stream = append(stream, sc...)
		stream = append(stream, n...)
	}
	d, err := parseAnnexB(stream)
	if err != nil {
		t.Fatal(err)
	}
	want := [][][]byte{{sps, pps, sei, idr}, {p1, p1s2}, {aud, p2}}
	if len(d.aus) != len(want) {
		t.Fatalf("got %d access units, want %d", len(d.aus), len(want))
	}
	for i := range want {
		if len(d.aus[i]) != len(want[i]) {
			t.Fatalf("access unit %d has %d NALUs, want %d", i, len(d.aus[i]), len(want[i]))
		}
		for j := range want[i] {
			if !bytes.Equal(d.aus[i][j], want[i][j]) {
				t.Fatalf("access unit %d NALU %d = %x, want %x", i, j, d.aus[i][j], want[i][j])
			}
		}
	}
	if !bytes.Equal(d.sps, sps) || !bytes.Equal(d.pps, pps) {
		t.Fatal("parameter sets not captured")
	}

	if _, err := parseAnnexB(append(append([]byte{}, sc...), p1...)); err == nil {
		t.Fatal("stream without IDR and parameter sets: want error")
	}
}

func TestParseClip(t *testing.T) {
	for _, c := range []Clip{ClipGOP1s, ClipGOP4s, ClipSynth2M, ClipSynth2MGOP2s} {
		got, err := ParseClip(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseClip(%q) = %v, %v", c.String(), got, err)
		}
	}
	if _, err := ParseClip("gop2s"); !errors.Is(err, ErrUnknownClip) {
		t.Fatalf("ParseClip(gop2s) error = %v, want ErrUnknownClip", err)
	}
	if _, err := loadClip(Clip(7)); !errors.Is(err, ErrUnknownClip) {
		t.Fatalf("loadClip(7) error = %v, want ErrUnknownClip", err)
	}
}
