package ingest

import (
	"bytes"
	"testing"
)

// Parameter sets of real streams (352x288 and 1280x720 H.264, 1920x1080
// H.265), so that size parsing is exercised.
var (
	testSPS352 = []byte{
		0x67, 0x64, 0x00, 0x0c, 0xac, 0x3b, 0x50, 0xb0, 0x4b, 0x42, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
		0x00, 0x03, 0x00, 0x3d, 0x08,
	}
	testSPS720 = []byte{
		0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6c, 0x80, 0x00, 0x00, 0x03,
		0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18, 0xcb,
	}
	testPPS     = []byte{0x68, 0xee, 0x3c, 0x80}
	testH265SPS = []byte{
		0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
		0x00, 0x78, 0xa0, 0x03, 0xc0, 0x80, 0x10, 0xe5, 0x96, 0x66, 0x69, 0x24, 0xca, 0xe0, 0x10, 0x00,
		0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x01, 0xe0, 0x80,
	}
	testH265VPS = []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff}
	testH265PPS = []byte{0x44, 0x01, 0xc1, 0x72}
)

// aggregate builds an aggregation packet body: header, then 16-bit sizes and
// NAL units.
func aggregate(header []byte, nals ...[]byte) []byte {
	out := append([]byte(nil), header...)
	for _, n := range nals {
		out = append(out, byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out
}

var (
	h264IDRSlice = []byte{0x65, 0x88, 0x84, 0x00}
	h264PSlice   = []byte{0x41, 0x9a, 0x02, 0x00}
	h265IDRSlice = []byte{0x26, 0x01, 0xaf, 0x00} // IDR_W_RADL (19)
	h265CRASlice = []byte{0x2a, 0x01, 0xaf, 0x00} // CRA (21)
	h265PSlice   = []byte{0x02, 0x01, 0xd0, 0x00} // TRAIL_R (1)
)

func TestInspectH264(t *testing.T) {
	cases := []struct {
		name     string
		payload  []byte
		random   bool
		sps, pps []byte
	}{
		{"empty", nil, false, nil, nil},
		{"single IDR", h264IDRSlice, true, nil, nil},
		{"single non-IDR", h264PSlice, false, nil, nil},
		{"single SPS", testSPS352, false, testSPS352, nil},
		{"single PPS", testPPS, false, nil, testPPS},
		{"STAP-A SPS PPS IDR", aggregate([]byte{0x78}, testSPS352, testPPS, h264IDRSlice), true, testSPS352, testPPS},
		{"STAP-A SPS PPS", aggregate([]byte{0x78}, testSPS352, testPPS), false, testSPS352, testPPS},
		{"STAP-A truncated", append(aggregate([]byte{0x78}, testSPS352), 0x00, 0x09, 0x65), false, testSPS352, nil},
		{"STAP-A zero size", []byte{0x78, 0x00, 0x00, 0x65}, false, nil, nil},
		{"FU-A start IDR", []byte{0x7c, 0x85, 0x88, 0x84}, true, nil, nil},
		{"FU-A middle IDR", []byte{0x7c, 0x05, 0x88, 0x84}, false, nil, nil},
		{"FU-A end IDR", []byte{0x7c, 0x45, 0x88, 0x84}, false, nil, nil},
		{"FU-A start non-IDR", []byte{0x5c, 0x81, 0x9a, 0x02}, false, nil, nil},
		{"FU-A header only", []byte{0x7c}, false, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := inspectH264(tc.payload)
			if info.random != tc.random || !bytes.Equal(info.sps, tc.sps) || !bytes.Equal(info.pps, tc.pps) {
				t.Errorf("inspectH264 = %+v, want random=%v sps=%x pps=%x", info, tc.random, tc.sps, tc.pps)
			}
		})
	}
}

func TestInspectH265(t *testing.T) {
	cases := []struct {
		name          string
		payload       []byte
		random        bool
		vps, sps, pps []byte
	}{
		{"empty", nil, false, nil, nil, nil},
		{"one byte", []byte{0x26}, false, nil, nil, nil},
		{"single IDR_W_RADL", h265IDRSlice, true, nil, nil, nil},
		{"single CRA", h265CRASlice, true, nil, nil, nil},
		{"single TRAIL_R", h265PSlice, false, nil, nil, nil},
		{"single VPS", testH265VPS, false, testH265VPS, nil, nil},
		{"AP VPS SPS PPS", aggregate([]byte{0x60, 0x01}, testH265VPS, testH265SPS, testH265PPS),
			false, testH265VPS, testH265SPS, testH265PPS},
		{"AP with IDR", aggregate([]byte{0x60, 0x01}, testH265SPS, h265IDRSlice), true, nil, testH265SPS, nil},
		{"FU start IDR_W_RADL", []byte{0x62, 0x01, 0x93, 0xaf}, true, nil, nil, nil},
		{"FU start CRA", []byte{0x62, 0x01, 0x95, 0xaf}, true, nil, nil, nil},
		{"FU middle IDR", []byte{0x62, 0x01, 0x13, 0xaf}, false, nil, nil, nil},
		{"FU start TRAIL_R", []byte{0x62, 0x01, 0x81, 0xd0}, false, nil, nil, nil},
		{"FU start RASL (not IRAP)", []byte{0x62, 0x01, 0x89, 0xd0}, false, nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info := inspectH265(tc.payload)
			if info.random != tc.random || !bytes.Equal(info.vps, tc.vps) ||
				!bytes.Equal(info.sps, tc.sps) || !bytes.Equal(info.pps, tc.pps) {
				t.Errorf("inspectH265 = %+v, want random=%v vps=%x sps=%x pps=%x",
					info, tc.random, tc.vps, tc.sps, tc.pps)
			}
		})
	}
}

// FuzzInspect checks that no payload makes the inspectors panic or return
// parameter sets that are not inside the payload.
func FuzzInspect(f *testing.F) {
	f.Add(aggregate([]byte{0x78}, testSPS352, testPPS, h264IDRSlice))
	f.Add(aggregate([]byte{0x60, 0x01}, testH265VPS, testH265SPS, testH265PPS))
	f.Add([]byte{0x7c, 0x85, 0x88})
	f.Add([]byte{0x62, 0x01, 0x93})
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, info := range []payloadInfo{inspectH264(p), inspectH265(p)} {
			for _, ps := range [][]byte{info.vps, info.sps, info.pps} {
				if ps != nil && !bytes.Contains(p, ps) {
					t.Fatalf("parameter set %x not in payload %x", ps, p)
				}
			}
		}
	})
}
