package recorder

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// FuzzDepacketize feeds camera payloads (split at 0xff bytes into packets)
// to the depacketizer: it may refuse them, never panic or exceed its
// bounds.
func FuzzDepacketize(f *testing.F) {
	f.Add(false, []byte{0x65, 1, 2, 3})
	f.Add(false, []byte{24, 0, 2, 0x67, 1, 0, 1, 0x68, 0xff, 28, 0x85, 1, 2, 0xff, 28, 0x45, 3})
	f.Add(true, []byte{48 << 1, 1, 0, 3, 64, 1, 0xaa, 0xff, 49 << 1, 1, 0x93, 1, 0xff, 49 << 1, 1, 0x53, 2})
	f.Fuzz(func(t *testing.T, h265 bool, data []byte) {
		codec := ingest.CodecH264
		if h265 {
			codec = ingest.CodecH265
		}
		var pkts []*rtp.Packet
		for _, p := range bytes.Split(data, []byte{0xff}) {
			pkts = append(pkts, &rtp.Packet{Payload: p})
		}
		au, err := depacketize(codec, pkts)
		if err != nil {
			return
		}
		n := 0
		for _, nalu := range au {
			if len(nalu) == 0 {
				t.Fatal("empty NALU")
			}
			n += len(nalu)
		}
		if n > maxAUBytes || len(au) > maxAUNALUs {
			t.Fatal("bounds exceeded")
		}
		paramSets(codec, au)
	})
}

// FuzzScanFile reads arbitrary files as segments: a file a crash or a
// stranger left must be refused or cut, never crash the recorder.
func FuzzScanFile(f *testing.F) {
	out, _ := writeClip(&testing.T{}, loadTestClip(f, "gop1s"), 8, true)
	f.Add(out)
	f.Add(out[:len(out)/2])
	f.Add([]byte("not an mp4"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := scanFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if s.valid > int64(len(b)) || s.valid < s.initSize {
			t.Fatalf("valid %d of %d", s.valid, len(b))
		}
		for _, fr := range s.frags {
			if fr.off+fr.size > s.valid || fr.seqOff+4 > fr.moofSize {
				t.Fatalf("fragment %+v out of bounds", fr)
			}
			for _, tr := range fr.tracks {
				if tr.baseOff+8 > fr.moofSize {
					t.Fatalf("traf %+v out of bounds", tr)
				}
			}
		}
		s.videoEnd()
	})
}
