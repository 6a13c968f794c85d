package e2e

import (
	"bytes"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/hardware"
	"github.com/skywatch/skywatch/ingest"
)

// TestLargeCameraPacketsReachViewerSplit: a camera that sends RTP packets
// larger than 1,200 bytes (1,460 over UDP, as many do; 4,000 over TCP) is
// relayed to a pion WHEP viewer in packets of at most 1,200 bytes, and the
// access units the viewer reassembles are byte for byte the camera's.
func TestLargeCameraPacketsReachViewerSplit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		packetSize int
		transport  string
	}{
		{"1460 over UDP", 1460, "udp"},
		{"4000 over TCP", 4000, "tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *rig
			var cam *cameraRecord
			if tc.packetSize <= 1472 {
				r = newRig(t, rigOptions{clip: hardware.ClipGOP1s, packetSize: tc.packetSize, transport: tc.transport})
				// What the camera sends, read beside Skywatch (the camera
				// serves every session the same packets).
				cam = recordCamera(t, r.cam.URL(camPath), nil)
				waitFor(t, "the camera's first pictures", func() bool { return cam.count() >= 2 })
			} else {
				// Larger than the simulated camera sends: the same
				// pictures, packetized again by a camera of the test's.
				big := startBigCamera(t, tc.packetSize)
				r = newRig(t, rigOptions{clip: hardware.ClipGOP1s, transport: tc.transport, cameraURL: big.url()})
				recordCamera(t, r.cam.URL(camPath), func(au [][]byte) {
					if err := big.send(au); err != nil {
						t.Log(err)
					}
				})
				cam = &big.rec
			}

			peer := newViewerPeer(t)
			if code, body := peer.join(t, r.url("/whep/"+camID)); code != http.StatusCreated {
				t.Fatalf("POST /whep: %d %s", code, body)
			}
			aus := &auReader{t: t, peer: peer}
			const n = 50
			var got []accessUnit
			packets, largest := 0, 0
			for range n {
				au := aus.next()
				for _, p := range au.pkts {
					packets++
					largest = max(largest, p.MarshalSize())
				}
				got = append(got, au)
			}
			t.Logf("camera's largest packet %d bytes; viewer got %d packets, the largest %d bytes",
				cam.largestPacket(), packets, largest)
			if cam.largestPacket() <= ingest.MaxPacketSize {
				t.Fatalf("the camera sent no packet above %d bytes: nothing tested", ingest.MaxPacketSize)
			}
			if largest > ingest.MaxPacketSize {
				t.Errorf("the viewer got a packet of %d bytes, want %d at most", largest, ingest.MaxPacketSize)
			}

			// The viewer's access units are consecutive access units of the
			// camera's, byte for byte.
			want, camCounts := cam.waitFor(t, got[0].annexB, n)
			for i, au := range got {
				if !bytes.Equal(au.annexB, want[i]) {
					t.Fatalf("access unit %d (NAL types %v): %d bytes differ from the camera's %d",
						i, au.types, len(au.annexB), len(want[i]))
				}
			}
			// A NAL unit that the camera fragmented is cut again as a whole
			// into full packets: per access unit, no more packets than its
			// bytes in full fragments plus one per NAL unit (cutting each
			// camera packet in two gives up to twice as many).
			chunk := ingest.MaxPacketSize - 12 - 2
			camPackets, viewerPackets := 0, 0
			for i, au := range got {
				camPackets += camCounts[i]
				viewerPackets += len(au.pkts)
				nals := len(au.types)
				body := len(want[i]) - 4*nals
				if bound := (body+chunk-1)/chunk + nals; len(au.pkts) > bound {
					t.Errorf("access unit %d (NAL types %v, %d bytes; the camera's %d packets): %d packets, want %d at most",
						i, au.types, body, camCounts[i], len(au.pkts), bound)
				}
			}
			t.Logf("%d access units: the camera sent %d packets, the viewer got %d", n, camPackets, viewerPackets)
			if st := r.state(t); st.PacketsSplit == 0 {
				t.Error("no split packet counted")
			}
		})
	}
}

// cameraRecord is what a camera sends, read by an RTSP client of its own.
type cameraRecord struct {
	mu      sync.Mutex
	aus     [][]byte // Annex-B with 4-byte start codes, in order
	pkts    []int    // the number of packets of each of aus
	pending int      // packets read since the last access unit
	largest int
}

// recordCamera plays camURL over TCP until the test ends, and hands each
// access unit to onAU when not nil.
func recordCamera(t *testing.T, camURL string, onAU func([][]byte)) *cameraRecord {
	t.Helper()
	u, err := url.Parse(camURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(camUser, camPassword)
	bu, err := base.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := &gortsplib.Client{Scheme: bu.Scheme, Host: bu.Host, Transport: &tcp,
		// A gap would show as access units that differ; no log lines.
		OnPacketsLost: func(uint64) {}, OnDecodeError: func(error) {}}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(bu)
	if err != nil {
		t.Fatal(err)
	}
	var forma *format.H264
	media := desc.FindFormat(&forma)
	if media == nil {
		t.Fatal("camera: no H.264")
	}
	if _, err := c.Setup(desc.BaseURL, media, 0, 0); err != nil {
		t.Fatal(err)
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		t.Fatal(err)
	}
	rec := &cameraRecord{}
	c.OnPacketRTP(media, forma, func(pkt *rtp.Packet) {
		size := pkt.MarshalSize()
		au, err := dec.Decode(pkt)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.largest = max(rec.largest, size)
		rec.pending++
		if err != nil {
			return // more packets needed
		}
		if onAU != nil {
			onAU(au)
		}
		var b []byte
		for _, nalu := range au {
			b = append(b, 0, 0, 0, 1)
			b = append(b, nalu...)
		}
		rec.aus = append(rec.aus, b)
		rec.pkts = append(rec.pkts, rec.pending)
		rec.pending = 0
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return rec
}

func (c *cameraRecord) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.aus)
}

func (c *cameraRecord) largestPacket() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.largest
}

// waitFor returns the n access units from the first one equal to first, and
// the number of packets of each, waiting for the camera to have sent them.
func (c *cameraRecord) waitFor(t *testing.T, first []byte, n int) ([][]byte, []int) {
	t.Helper()
	var out [][]byte
	var counts []int
	waitFor(t, "the camera's access units", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, au := range c.aus {
			if bytes.Equal(au, first) {
				if len(c.aus)-i < n {
					return false
				}
				out = c.aus[i : i+n]
				counts = c.pkts[i : i+n]
				return true
			}
		}
		return false
	})
	return out, counts
}
