package ingest

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// Sizes around the limit: a payload of maxPlain bytes makes a packet of
// exactly MaxPacketSize.
const maxPlain = MaxPacketSize - 12

// noise returns n reproducible bytes.
func noise(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// nal builds an H.264 NAL unit of n bytes with header h.
func nal(h byte, n int, seed uint64) []byte {
	b := noise(n, seed)
	b[0] = h
	return b
}

// nal265 builds an H.265 NAL unit of n bytes of type typ (layer 0, TID 1).
func nal265(typ byte, n int, seed uint64) []byte {
	b := noise(n, seed)
	b[0], b[1] = typ<<1, 1
	return b
}

// fuA builds one FU-A payload of a NAL unit with header h.
func fuA(h byte, start, end bool, body []byte) []byte {
	fu := h & 0x1f
	if start {
		fu |= 0x80
	}
	if end {
		fu |= 0x40
	}
	return append([]byte{h&0xe0 | 28, fu}, body...)
}

// fu265 builds one H.265 FU payload of a NAL unit of type typ.
func fu265(typ byte, start, end bool, body []byte) []byte {
	fu := typ
	if start {
		fu |= 0x80
	}
	if end {
		fu |= 0x40
	}
	return append([]byte{49 << 1, 1, fu}, body...)
}

// fuAPayloads builds the FU-A payloads of one NAL unit with header h: a start
// and middles fragments of size bytes of body, then an end of last bytes.
func fuAPayloads(h byte, middles, size, last int, seed uint64) [][]byte {
	out := [][]byte{fuA(h, true, false, noise(size, seed))}
	for i := range middles {
		out = append(out, fuA(h, false, false, noise(size, seed+uint64(i)+1)))
	}
	return append(out, fuA(h, false, true, noise(last, seed+99)))
}

// fu265Payloads is fuAPayloads for H.265 FU payloads of a NAL unit of type typ.
func fu265Payloads(typ byte, middles, size, last int, seed uint64) [][]byte {
	out := [][]byte{fu265(typ, true, false, noise(size, seed))}
	for i := range middles {
		out = append(out, fu265(typ, false, false, noise(size, seed+uint64(i)+1)))
	}
	return append(out, fu265(typ, false, true, noise(last, seed+99)))
}

// depacketizer turns payloads into Annex-B, as a browser reassembles them.
type depacketizer interface {
	Unmarshal(payload []byte) ([]byte, error)
}

func newDepacketizer(h265 bool) depacketizer {
	if h265 {
		return &codecs.H265Depacketizer{}
	}
	return &codecs.H264Packet{}
}

// annexB depacketizes pkts in order into one Annex-B stream.
func annexB(t testing.TB, h265 bool, pkts []*rtp.Packet) []byte {
	t.Helper()
	d := newDepacketizer(h265)
	var out []byte
	for _, p := range pkts {
		b, err := d.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("depacketize %x...: %v", p.Payload[:min(4, len(p.Payload))], err)
		}
		out = append(out, b...)
	}
	return out
}

// clonePackets deep-copies pkts: split changes the packets it is given.
func clonePackets(pkts []*rtp.Packet) []*rtp.Packet {
	out := make([]*rtp.Packet, len(pkts))
	for i, p := range pkts {
		c := *p
		c.Payload = bytes.Clone(p.Payload)
		out[i] = &c
	}
	return out
}

func TestSplit(t *testing.T) {
	const idr, slice = 0x65, 0x41 // NRI 3 IDR, NRI 2 non-IDR slice
	cases := []struct {
		name     string
		h265     bool
		payloads [][]byte // the last packet has the marker
		want     int      // packets out
	}{
		{"small packets pass", false, [][]byte{nal(0x67, 20, 1), nal(0x68, 4, 2), nal(idr, 900, 3)}, 3},
		{"exactly at the limit", false, [][]byte{nal(idr, maxPlain, 4)}, 1},
		{"one byte over", false, [][]byte{nal(idr, maxPlain+1, 5)}, 2},
		{"single NAL unit of 5,000 bytes", false, [][]byte{nal(idr, 5000, 6)}, 5},
		// Cut again as a whole: 3,592 bytes in fragments of at most 1,186,
		// not 5 (each 1,448 cut in two).
		{"camera's FU-A of 1,448 bytes", false, [][]byte{
			fuA(idr, true, false, noise(1446, 7)),
			fuA(idr, false, false, noise(1446, 8)),
			fuA(idr, false, true, noise(700, 9)),
		}, 4},
		{"camera's P picture in 7 FU-As", false, [][]byte{
			fuA(slice, true, false, noise(1446, 30)), fuA(slice, false, false, noise(1446, 31)),
			fuA(slice, false, false, noise(1446, 32)), fuA(slice, false, false, noise(1446, 33)),
			fuA(slice, false, false, noise(1446, 34)), fuA(slice, false, false, noise(1446, 35)),
			fuA(slice, false, true, noise(800, 36)),
		}, 8}, // 9,476 bytes; 13 when each packet is cut in two
		{"FU-A without its start is cut packet by packet", false, [][]byte{
			fuA(slice, false, false, noise(1446, 37)),
			fuA(slice, false, true, noise(1446, 38)),
		}, 4},
		{"FU-A start and end in one", false, [][]byte{fuA(slice, true, true, noise(3000, 10))}, 3},
		{"FU-A at the limit passes", false, [][]byte{fuA(slice, true, false, noise(maxPlain-2, 11)), fuA(slice, false, true, noise(10, 12))}, 2},
		{"STAP-A over the limit", false, [][]byte{
			aggregate([]byte{0x78}, nal(0x67, 25, 13), nal(0x68, 4, 14), nal(0x06, 300, 15), nal(idr, 1100, 16)),
		}, 2},
		{"STAP-A with a large NAL unit", false, [][]byte{
			aggregate([]byte{0x78}, nal(0x67, 25, 17), nal(0x68, 4, 18), nal(idr, 2500, 19), nal(0x06, 30, 20), nal(0x06, 40, 21)),
		}, 5},
		{"H.265 single NAL unit", true, [][]byte{nal265(19, 3000, 22)}, 3},
		{"H.265 FU", true, [][]byte{fu265(1, true, false, noise(1445, 23)), fu265(1, false, true, noise(1445, 24))}, 3},
		{"H.265 AP over the limit", true, [][]byte{
			aggregate([]byte{48 << 1, 1}, nal265(32, 24, 25), nal265(33, 40, 26), nal265(34, 6, 27), nal265(19, 1300, 28)),
		}, 3},
		{"H.265 at the limit", true, [][]byte{nal265(1, maxPlain, 29)}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var in []*rtp.Packet
			for i, p := range tc.payloads {
				in = append(in, pkt(uint16(100+i), 9000, i == len(tc.payloads)-1, p))
			}
			want := annexB(t, tc.h265, clonePackets(in))
			orig := clonePackets(in)

			out, res := splitter{h265: tc.h265}.split(in)
			if len(out) != tc.want {
				t.Errorf("%d packets, want %d", len(out), tc.want)
			}
			if res.dropped != 0 {
				t.Errorf("%d dropped", res.dropped)
			}
			for i, p := range out {
				if size := p.MarshalSize(); size > MaxPacketSize {
					t.Errorf("packet %d: %d bytes", i, size)
				}
				if p.Marker != (i == len(out)-1) {
					t.Errorf("packet %d: marker %v", i, p.Marker)
				}
				if p.Timestamp != 9000 || p.SSRC != 1 || p.PayloadType != 96 {
					t.Errorf("packet %d: header %+v", i, p.Header)
				}
			}
			if got := annexB(t, tc.h265, out); !bytes.Equal(got, want) {
				t.Errorf("reassembled %d bytes differ from the camera's %d", len(got), len(want))
			}
			// Pieces carry the sequence number of the packet they come from,
			// in the camera's order.
			for i := 1; i < len(out); i++ {
				if d := out[i].SequenceNumber - out[i-1].SequenceNumber; d > 1 {
					t.Errorf("packet %d: sequence number %d after %d", i, out[i].SequenceNumber, out[i-1].SequenceNumber)
				}
			}
			if res.split == 0 {
				if &out[0] != &in[0] || len(out) != len(orig) {
					t.Errorf("nothing to split, yet the unit was copied")
				}
				for i := range out {
					if !bytes.Equal(out[i].Payload, orig[i].Payload) {
						t.Errorf("packet %d changed", i)
					}
				}
			}
		})
	}
}

// TestSplitFUBits checks the FU-A headers one by one: the indicator (F, NRI)
// is kept, and only the first piece of a start fragment has S, only the
// last piece of an end fragment has E.
func TestSplitFUBits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		start, end bool
	}{{"start", true, false}, {"middle", false, false}, {"end", false, true}, {"both", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			in := []*rtp.Packet{pkt(7, 1, tc.end, fuA(0x65, tc.start, tc.end, noise(2600, 30)))}
			body := bytes.Clone(in[0].Payload[2:])
			out, _ := splitter{}.split(in)
			if len(out) != 3 {
				t.Fatalf("%d pieces, want 3", len(out))
			}
			var got []byte
			for i, p := range out {
				if p.Payload[0] != 0x7c {
					t.Errorf("piece %d: indicator %#x, want 0x7c (NRI 3, FU-A)", i, p.Payload[0])
				}
				fu := p.Payload[1]
				wantS := tc.start && i == 0
				wantE := tc.end && i == len(out)-1
				if (fu&0x80 != 0) != wantS || (fu&0x40 != 0) != wantE || fu&0x1f != 5 {
					t.Errorf("piece %d: FU header %#x, want S=%v E=%v type 5", i, fu, wantS, wantE)
				}
				if p.SequenceNumber != 7 {
					t.Errorf("piece %d: sequence number %d, want the camera's 7", i, p.SequenceNumber)
				}
				got = append(got, p.Payload[2:]...)
			}
			if !bytes.Equal(got, body) {
				t.Error("fragment bodies differ from the camera's")
			}
			if &out[0].Payload[0] != &in[0].Payload[0] {
				t.Error("the first piece does not reuse the camera's buffer")
			}
		})
	}
}

// TestSplitAggregateHeaders checks the headers of rebuilt aggregates: NRI
// the highest of the NAL units (H.264), LayerId and TID the lowest (H.265).
func TestSplitAggregateHeaders(t *testing.T) {
	in := []*rtp.Packet{pkt(1, 1, true, aggregate([]byte{0x78},
		nal(0x27, 10, 1), nal(0x48, 10, 2), nal(0x06, 10, 3), nal(0x65, 1190, 4)))}
	out, _ := splitter{}.split(in)
	if len(out) != 3 || out[0].Payload[0] != 0x58 {
		t.Errorf("STAP-A header %#x in %d packets, want 0x58 (NRI 2, STAP-A) first", out[0].Payload[0], len(out))
	}

	a := nal265(32, 10, 5)
	a[1] = 2 // TID 2
	b := nal265(33, 10, 6)
	b[0] |= 1 // LayerId 32
	in = []*rtp.Packet{pkt(1, 1, true, aggregate([]byte{48 << 1, 1}, a, b, nal265(19, 1200, 7)))}
	out, _ = splitter{h265: true}.split(in)
	if len(out) < 2 || out[0].Payload[0] != 48<<1 || out[0].Payload[1] != 1 {
		t.Errorf("AP header %x, want 6001 (layer 0, TID 1)", out[0].Payload[:2])
	}
}

func TestSplitDropsWhatCannotBeCut(t *testing.T) {
	small := pkt(1, 1, false, nal(0x41, 100, 1))
	mtap := pkt(2, 1, true, nal(0x1a, 1500, 2)) // MTAP16
	out, res := splitter{}.split([]*rtp.Packet{small, mtap})
	if len(out) != 1 || res.dropped != 1 || !out[0].Marker {
		t.Fatalf("%d packets, %d dropped, marker %v; want the small one, with the marker", len(out), res.dropped, out[0].Marker)
	}
	bad := aggregate([]byte{0x78}, nal(0x41, 1500, 3))
	bad = bad[:len(bad)-1] // truncated entry
	out, res = splitter{}.split([]*rtp.Packet{pkt(3, 1, true, bad)})
	if len(out) != 0 || res.dropped != 1 {
		t.Fatalf("%d packets, %d dropped; want none, 1", len(out), res.dropped)
	}
}

// TestSplitCSRC: a packet whose CSRCs make its header longer gets smaller
// pieces, since readers send the CSRCs on.
func TestSplitCSRC(t *testing.T) {
	p := pkt(1, 1, true, nal(0x65, maxPlain, 1))
	p.CSRC = []uint32{1, 2}
	out, _ := splitter{}.split([]*rtp.Packet{p})
	for i, q := range out {
		if q.MarshalSize() > MaxPacketSize {
			t.Errorf("piece %d: %d bytes", i, q.MarshalSize())
		}
	}
	if len(out) != 2 {
		t.Errorf("%d pieces, want 2", len(out))
	}
}

func BenchmarkSplit(b *testing.B) {
	var payloads [][]byte
	payloads = append(payloads, fuA(0x65, true, false, noise(1446, 1)))
	for range 10 {
		payloads = append(payloads, fuA(0x65, false, false, noise(1446, 2)))
	}
	payloads = append(payloads, fuA(0x65, false, true, noise(500, 3)))
	in := make([]*rtp.Packet, len(payloads))
	for i, p := range payloads {
		in[i] = pkt(uint16(i), 1, i == len(payloads)-1, p)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = splitter{}.split(clonePackets(in))
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(nal(0x65, 3000, 1), false, uint8(0))
	f.Add(fuA(0x65, true, false, noise(1500, 2)), false, uint8(1))
	f.Add(aggregate([]byte{0x78}, nal(0x67, 25, 3), nal(0x65, 1300, 4), nal(0x06, 9, 5)), false, uint8(0))
	f.Add(nal265(19, 2000, 6), true, uint8(0))
	f.Add(fu265(19, false, true, noise(1300, 7)), true, uint8(0))
	f.Add(aggregate([]byte{48 << 1, 1}, nal265(32, 24, 8), nal265(19, 1300, 9)), true, uint8(3))
	f.Fuzz(func(t *testing.T, payload []byte, h265 bool, csrcs uint8) {
		if len(payload) == 0 {
			return
		}
		p := pkt(1, 1, true, bytes.Clone(payload))
		p.CSRC = make([]uint32, csrcs%16)
		// Depacketizing the camera's packet is the reference, when it works.
		want, wantErr := newDepacketizer(h265).Unmarshal(bytes.Clone(payload))

		out, res := splitter{h265: h265}.split([]*rtp.Packet{p})
		for i, q := range out {
			if q.MarshalSize() > MaxPacketSize {
				t.Fatalf("piece %d: %d bytes", i, q.MarshalSize())
			}
		}
		if res.split+res.dropped > 1 {
			t.Fatalf("result %+v for one packet", res)
		}
		if res.dropped == 0 && len(out) == 0 {
			t.Fatal("a packet vanished without being counted")
		}
		// A fragment without its start is not decodable alone, split or not;
		// pion's depacketizer drops the forbidden bit of fragmented NAL
		// units, so a NAL unit with it set (never valid) is not compared.
		if res.split == 1 && wantErr == nil && !midFragment(payload, h265) && !forbiddenBit(payload, h265) {
			d := newDepacketizer(h265)
			var got []byte
			for _, q := range out {
				b, err := d.Unmarshal(q.Payload)
				if err != nil {
					t.Fatalf("depacketize piece: %v", err)
				}
				got = append(got, b...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("reassembled %d bytes, the camera's %d", len(got), len(want))
			}
		}
	})
}

// midFragment tells an FU-A or FU payload without the start bit.
func midFragment(p []byte, h265 bool) bool {
	if h265 {
		return len(p) >= 3 && (p[0]>>1)&0x3f == 49 && p[2]&0x80 == 0
	}
	return len(p) >= 2 && p[0]&0x1f == 28 && p[1]&0x80 == 0
}

// forbiddenBit tells a payload whose NAL unit, or one of whose aggregated
// NAL units, has the forbidden_zero_bit set.
func forbiddenBit(p []byte, h265 bool) bool {
	if p[0]&0x80 != 0 {
		return true
	}
	hdr, agg := 1, h264STAPA
	typ := p[0] & 0x1f
	if h265 {
		hdr, agg, typ = 2, h265AP, (p[0]>>1)&0x3f
	}
	if int(typ) != agg || len(p) < hdr {
		return false
	}
	nals, _ := aggregated(p[hdr:])
	for _, n := range nals {
		if n[0]&0x80 != 0 {
			return true
		}
	}
	return false
}

// TestSplitRun checks a re-cut run's headers piece by piece: the FU-A
// indicator (F, NRI) or H.265 payload header (layer, TID) kept, S on the
// first piece only, E on the last only, the type kept, as few pieces as fit.
func TestSplitRun(t *testing.T) {
	for _, h265 := range []bool{false, true} {
		payloads := fuAPayloads(0x45, 3, 1446, 100, 70) // F 0, NRI 2, type 5
		hdr := 2
		if h265 {
			payloads = fu265Payloads(19, 3, 1446, 100, 70)
			for _, p := range payloads {
				p[0] |= 1  // LayerId 32
				p[1] = 0x3 // TID 3
			}
			hdr = 3
		}
		var in []*rtp.Packet
		var body []byte
		for i, p := range payloads {
			in = append(in, pkt(uint16(200+i), 1, i == len(payloads)-1, p))
			body = append(body, p[hdr:]...)
		}
		prefix := bytes.Clone(payloads[0][:hdr-1])
		out, res := splitter{h265: h265}.split(in)
		if res.split != 5 || len(out) != 5 { // 4,438 bytes of body
			t.Fatalf("h265 %v: %d pieces, result %+v; want 5 pieces of 5 packets", h265, len(out), res)
		}
		var got []byte
		for i, p := range out {
			if !bytes.Equal(p.Payload[:hdr-1], prefix) {
				t.Errorf("h265 %v piece %d: headers %x, want %x", h265, i, p.Payload[:hdr-1], prefix)
			}
			fu := p.Payload[hdr-1]
			if (fu&0x80 != 0) != (i == 0) || (fu&0x40 != 0) != (i == len(out)-1) || fu&0x3f != payloads[0][hdr-1]&0x3f {
				t.Errorf("h265 %v piece %d: FU header %#x", h265, i, fu)
			}
			if p.MarshalSize() > MaxPacketSize {
				t.Errorf("h265 %v piece %d: %d bytes", h265, i, p.MarshalSize())
			}
			got = append(got, p.Payload[hdr:]...)
		}
		if !bytes.Equal(got, body) {
			t.Errorf("h265 %v: bodies differ", h265)
		}
	}
}

// TestSplitRunWithLostFragment: a run with a gap in its sequence numbers
// (a fragment lost on the way) is cut packet by packet, as before.
func TestSplitRunWithLostFragment(t *testing.T) {
	payloads := fuAPayloads(0x65, 1, 1446, 1446, 80)
	in := []*rtp.Packet{pkt(1, 1, false, payloads[0]), pkt(2, 1, false, payloads[1]), pkt(4, 1, true, payloads[2])}
	out, res := splitter{}.split(in)
	if len(out) != 6 || res.split != 3 {
		t.Errorf("%d packets, result %+v; want 6, each cut in two", len(out), res)
	}
}

// FuzzSplitRun cuts a NAL unit into a run of FU-A or FU fragments of the
// camera's size (700 to 1,720 bytes of body) and checks that the re-cut
// run reassembles to the same NAL unit in packets of at most 1,200 bytes.
func FuzzSplitRun(f *testing.F) {
	f.Add(nal(0x65, 5000, 1), false, uint8(186))
	f.Add(nal265(19, 4000, 2), true, uint8(185))
	f.Fuzz(func(t *testing.T, unit []byte, h265 bool, size uint8) {
		hdr := 2
		if h265 {
			hdr = 3
		}
		if len(unit) < hdr || unit[0]&0x80 != 0 {
			return
		}
		frag := 700 + 4*int(size)
		prefix := []byte{unit[0]&0xe0 | h264FUA}
		typ := unit[0] & 0x1f
		if h265 {
			prefix = []byte{unit[0]&0x81 | h265FU<<1, unit[1]}
			typ = (unit[0] >> 1) & 0x3f
		}
		body := unit[hdr-1:]
		var in []*rtp.Packet
		for i := 0; len(body) > 0; i++ {
			n := min(frag, len(body))
			fu := typ
			if i == 0 {
				fu |= 0x80
			}
			if n == len(body) {
				fu |= 0x40
			}
			pl := append(append(bytes.Clone(prefix), fu), body[:n]...)
			in = append(in, pkt(uint16(i), 1, n == len(body), pl))
			body = body[n:]
		}
		want := annexB(t, h265, clonePackets(in))
		out, res := splitter{h265: h265}.split(in)
		if res.dropped != 0 {
			t.Fatalf("%d dropped", res.dropped)
		}
		for i, q := range out {
			if q.MarshalSize() > MaxPacketSize {
				t.Fatalf("piece %d: %d bytes", i, q.MarshalSize())
			}
			if q.Marker != (i == len(out)-1) {
				t.Fatalf("piece %d: marker %v", i, q.Marker)
			}
		}
		if got := annexB(t, h265, out); !bytes.Equal(got, want) {
			t.Fatalf("reassembled %d bytes, the camera's %d", len(got), len(want))
		}
		if len(in) > 1 && res.split > 0 {
			chunk := MaxPacketSize - 12 - hdr
			if full := (len(unit) - hdr + 1 + chunk - 1) / chunk; len(out) != full {
				t.Fatalf("%d pieces for %d bytes of body, want %d", len(out), len(unit)-hdr+1, full)
			}
		}
	})
}
