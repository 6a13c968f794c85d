package ingest

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

func pkt(seq uint16, ts uint32, marker bool, payload []byte) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, Marker: marker, SSRC: 1},
		Payload: payload,
	}
}

func TestAssembler(t *testing.T) {
	type in struct {
		ts     uint32
		marker bool
	}
	cases := []struct {
		name string
		pkts []in
		want []int // sizes of the emitted units, in order
	}{
		{"marker ends unit", []in{{1, false}, {1, false}, {1, true}, {2, true}}, []int{3, 1}},
		{"timestamp change ends unit", []in{{1, false}, {1, false}, {2, false}, {2, true}}, []int{2, 2}},
		{"timestamp change and marker", []in{{1, false}, {2, true}}, []int{1, 1}},
		{"incomplete unit is held", []in{{1, true}, {2, false}}, []int{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a assembler
			var got []int
			for i, p := range tc.pkts {
				a.push(pkt(uint16(i), p.ts, p.marker, h264PSlice), func(u []*rtp.Packet) {
					for _, q := range u[1:] {
						if q.Timestamp != u[0].Timestamp {
							t.Errorf("unit mixes timestamps")
						}
					}
					got = append(got, len(u))
				})
			}
			if !equalInts(got, tc.want) {
				t.Errorf("units %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAssemblerCapsUnits(t *testing.T) {
	var a assembler
	var got []int
	for i := range maxUnitPackets + 10 {
		a.push(pkt(uint16(i), 7, false, h264PSlice), func(u []*rtp.Packet) { got = append(got, len(u)) })
	}
	if !equalInts(got, []int{maxUnitPackets}) {
		t.Errorf("units %v, want one of %d", got, maxUnitPackets)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestKeyframer(t *testing.T) {
	sdp := Track{Kind: KindVideo, Codec: CodecH264}
	sdp.setParams(nil, testSPS352, testPPS)
	fua := func(seq uint16, start, end bool) *rtp.Packet {
		h := byte(0x05)
		if start {
			h |= 0x80
		}
		if end {
			h |= 0x40
		}
		return pkt(seq, 9000, end, []byte{0x7c, h, 0x88, 0x84})
	}
	cases := []struct {
		name     string
		params   Track // known before the unit
		unit     []*rtp.Packet
		keyframe bool
		changed  bool
		prepend  [][]byte // payloads expected in front of the unit
		width    int
	}{
		{"P frame", sdp, []*rtp.Packet{pkt(10, 9000, true, h264PSlice)}, false, false, nil, 352},
		{"IDR with in-band SPS PPS", Track{Codec: CodecH264},
			[]*rtp.Packet{pkt(10, 9000, false, testSPS720), pkt(11, 9000, false, testPPS), pkt(12, 9000, true, h264IDRSlice)},
			true, true, nil, 1280},
		{"IDR in STAP-A with SPS PPS", Track{Codec: CodecH264},
			[]*rtp.Packet{pkt(10, 9000, true, aggregate([]byte{0x78}, testSPS720, testPPS, h264IDRSlice))},
			true, true, nil, 1280},
		{"IDR in FU-A, SPS PPS from SDP", sdp,
			[]*rtp.Packet{fua(10, true, false), fua(11, false, false), fua(12, false, true)},
			true, false, [][]byte{testSPS352, testPPS}, 352},
		{"IDR with only SPS in-band", sdp,
			[]*rtp.Packet{pkt(10, 9000, false, testSPS720), pkt(11, 9000, true, h264IDRSlice)},
			true, true, [][]byte{testPPS}, 1280},
		{"IDR, parameter sets unknown", Track{Codec: CodecH264},
			[]*rtp.Packet{pkt(10, 9000, true, h264IDRSlice)}, false, false, nil, 0},
		{"SPS PPS without IDR", Track{Codec: CodecH264},
			[]*rtp.Packet{pkt(10, 9000, true, aggregate([]byte{0x78}, testSPS352, testPPS))}, false, true, nil, 352},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := keyframer{codec: CodecH264, params: tc.params}
			out, key, changed := k.unit(tc.unit)
			if key != tc.keyframe || changed != tc.changed {
				t.Errorf("keyframe=%v changed=%v, want %v %v", key, changed, tc.keyframe, tc.changed)
			}
			if len(out) != len(tc.prepend)+len(tc.unit) {
				t.Fatalf("got %d packets, want %d", len(out), len(tc.prepend)+len(tc.unit))
			}
			first := tc.unit[0]
			for i, want := range tc.prepend {
				p := out[i]
				if !bytes.Equal(p.Payload, want) {
					t.Errorf("prepended packet %d = %x, want %x", i, p.Payload, want)
				}
				if p.Timestamp != first.Timestamp || p.Marker || p.SSRC != first.SSRC {
					t.Errorf("prepended packet %d header %+v", i, p.Header)
				}
				if wantSeq := first.SequenceNumber - uint16(len(tc.prepend)-i); p.SequenceNumber != wantSeq {
					t.Errorf("prepended packet %d seq %d, want %d", i, p.SequenceNumber, wantSeq)
				}
			}
			for i, p := range tc.unit {
				if out[len(tc.prepend)+i] != p {
					t.Errorf("camera packet %d not passed through", i)
				}
			}
			if k.params.Width != tc.width {
				t.Errorf("width %d, want %d", k.params.Width, tc.width)
			}
		})
	}
}

func TestKeyframerH265(t *testing.T) {
	k := keyframer{codec: CodecH265, params: Track{Codec: CodecH265}}
	params := pkt(1, 3000, false, aggregate([]byte{0x60, 0x01}, testH265VPS, testH265SPS, testH265PPS))
	out, key, changed := k.unit([]*rtp.Packet{params, pkt(2, 3000, true, h265IDRSlice)})
	if !key || !changed || len(out) != 2 {
		t.Fatalf("IRAP with in-band parameter sets: keyframe=%v changed=%v packets=%d", key, changed, len(out))
	}
	if k.params.Width != 1920 || k.params.Height != 1080 {
		t.Errorf("size %dx%d, want 1920x1080", k.params.Width, k.params.Height)
	}
	if k.params.FMTP == "" {
		t.Errorf("no fmtp")
	}
	out, key, _ = k.unit([]*rtp.Packet{pkt(3, 6000, true, h265CRASlice)})
	if !key || len(out) != 4 {
		t.Fatalf("CRA alone: keyframe=%v packets=%d, want VPS, SPS, PPS prepended", key, len(out))
	}
	for i, want := range [][]byte{testH265VPS, testH265SPS, testH265PPS} {
		if !bytes.Equal(out[i].Payload, want) {
			t.Errorf("prepended %d = %x, want %x", i, out[i].Payload, want)
		}
	}
	if _, key, _ = k.unit([]*rtp.Packet{pkt(4, 9000, true, h265PSlice)}); key {
		t.Errorf("TRAIL_R is a keyframe")
	}
}

func TestTrackFMTP(t *testing.T) {
	tr := Track{Kind: KindVideo, Codec: CodecH264}
	tr.setParams(nil, testSPS720, testPPS)
	want := "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"
	if tr.FMTP != want || tr.Width != 1280 || tr.Height != 720 {
		t.Errorf("track %q %dx%d, want %q 1280x720", tr.FMTP, tr.Width, tr.Height, want)
	}
}
