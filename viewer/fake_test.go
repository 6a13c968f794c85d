package viewer

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/skywatch/skywatch/ingest"
)

// fakeReader is a MediaReader fed from a channel. Closing units ends the
// stream (ErrReaderClosed), as ingest does when a camera goes away for good.
type fakeReader struct {
	tracks    []ingest.Track
	units     chan *ingest.Unit
	closed    chan struct{}
	closeOnce sync.Once
}

func newFakeReader(tracks []ingest.Track, units ...*ingest.Unit) *fakeReader {
	r := &fakeReader{
		tracks: tracks,
		units:  make(chan *ingest.Unit, len(units)+64),
		closed: make(chan struct{}),
	}
	for _, u := range units {
		r.units <- u
	}
	return r
}

func (r *fakeReader) Tracks() []ingest.Track { return r.tracks }

func (r *fakeReader) Read(ctx context.Context) (*ingest.Unit, error) {
	select {
	case u, ok := <-r.units:
		if !ok {
			return nil, ingest.ErrReaderClosed
		}
		return u, nil
	case <-r.closed:
		return nil, ingest.ErrReaderClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *fakeReader) Close() { r.closeOnce.Do(func() { close(r.closed) }) }

func (r *fakeReader) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// fakeSource is a CameraSource whose behaviour the test sets.
type fakeSource struct {
	open   func(ctx context.Context, id string) (MediaReader, error)
	states func() []ingest.CameraState
	opened atomic.Int32
	// subOpened counts the OpenReader calls that asked for a sub stream.
	subOpened atomic.Int32
}

func (s *fakeSource) OpenReader(ctx context.Context, id string, sub bool) (MediaReader, error) {
	s.opened.Add(1)
	if sub {
		s.subOpened.Add(1)
	}
	if s.open == nil {
		return nil, fmt.Errorf("camera %s: %w", id, ingest.ErrUnknownCamera)
	}
	return s.open(ctx, id)
}

func (s *fakeSource) Cameras() []ingest.CameraState {
	if s.states == nil {
		return nil
	}
	return s.states()
}

func (s *fakeSource) Camera(id string) (ingest.CameraState, error) {
	for _, c := range s.Cameras() {
		if c.ID == id {
			return c, nil
		}
	}
	return ingest.CameraState{}, fmt.Errorf("camera %s: %w", id, ingest.ErrUnknownCamera)
}

var _ CameraSource = (*fakeSource)(nil)

func h264Track() ingest.Track {
	return ingest.Track{
		Kind: ingest.KindVideo, Codec: ingest.CodecH264, ClockRate: 90000, PayloadType: 96,
		FMTP:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		Width: 640, Height: 360,
	}
}

func pcmuTrack() ingest.Track {
	return ingest.Track{Kind: ingest.KindAudio, Codec: ingest.CodecPCMU, ClockRate: 8000, Channels: 1}
}

// camera makes H.264 access units as a camera would send them: RTP
// packetized (STAP-A for SPS+PPS, FU-A for big slices), with its own
// sequence numbers and timestamps.
type camera struct {
	epoch    uint64
	seq      uint16
	ts       uint32
	received time.Time
	frame    int
}

// nextAU returns one access unit: a keyframe (SPS, PPS, IDR) or a P slice.
// Every payload is distinct so that the receiver can check it arrived
// untouched.
func (c *camera) nextAU(keyframe bool) *ingest.Unit {
	c.frame++
	var annexB []byte
	start := []byte{0, 0, 0, 1}
	if keyframe {
		annexB = append(annexB, start...)
		annexB = append(annexB, 0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80, 0xbf, 0xe5)
		annexB = append(annexB, start...)
		annexB = append(annexB, 0x68, 0xce, 0x3c, 0x80)
		annexB = append(annexB, start...)
		annexB = append(annexB, 0x65)
		annexB = append(annexB, pattern(c.frame, 3000)...)
	} else {
		annexB = append(annexB, start...)
		annexB = append(annexB, 0x41)
		annexB = append(annexB, pattern(c.frame, 700)...)
	}
	payloader := &codecs.H264Payloader{}
	payloads := payloader.Payload(1200, annexB)
	u := &ingest.Unit{Track: 0, Keyframe: keyframe, Epoch: c.epoch, Received: c.received}
	for i, p := range payloads {
		u.Packets = append(u.Packets, &rtp.Packet{
			Header: rtp.Header{
				Version: 2, PayloadType: 96, SequenceNumber: c.seq, Timestamp: c.ts,
				SSRC: 0xcafe, Marker: i == len(payloads)-1,
			},
			Payload: p,
		})
		c.seq++
	}
	c.ts += 3000 // 30 fps
	c.received = c.received.Add(33 * time.Millisecond)
	return u
}

// pattern is n bytes that differ from frame to frame and never contain a
// start code.
func pattern(frame, n int) []byte {
	b := bytes.Repeat([]byte{byte(frame%200 + 1)}, n)
	for i := 0; i < n; i += 50 {
		b[i] = byte(i%250 + 1)
	}
	return b
}
