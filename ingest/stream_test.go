package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var testTracks = []Track{
	{Kind: KindVideo, Codec: CodecH264, ClockRate: 90000, PayloadType: 96, SPS: testSPS352, PPS: testPPS},
	{Kind: KindAudio, Codec: CodecPCMU, ClockRate: 8000, Channels: 1},
}

// testStream is a stream with counters of releases, for tests of the
// fan-out without a camera.
type testStream struct {
	*stream
	epoch    uint64
	ts       uint32
	released int
}

func newTestStream(queueSize int) *testStream {
	ts := &testStream{stream: newStream(queueSize, slog.New(slog.DiscardHandler), func() {})}
	ts.epoch = ts.begin(testTracks)
	return ts
}

func (s *testStream) add(t *testing.T) *Reader {
	t.Helper()
	r := s.addReader(func() { s.released++ })
	if r == nil {
		t.Fatal("addReader: stream not ready")
	}
	return r
}

func (s *testStream) video(key bool) *Unit {
	s.ts += 3600
	u := &Unit{Track: 0, Keyframe: key, Epoch: s.epoch, Received: time.Now(),
		Packets: []*rtp.Packet{pkt(uint16(s.ts), s.ts, true, h264PSlice)}}
	s.push(u)
	return u
}

func (s *testStream) audio() *Unit {
	u := &Unit{Track: 1, Epoch: s.epoch, Received: time.Now(), Packets: []*rtp.Packet{pkt(1, s.ts, false, []byte{0xff})}}
	s.push(u)
	return u
}

// drain reads what is queued without waiting.
func drain(t *testing.T, r *Reader) []*Unit {
	t.Helper()
	var out []*Unit
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		u, err := r.Read(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, u)
	}
}

func TestReaderStartsAtKeyframe(t *testing.T) {
	s := newTestStream(16)
	r := s.add(t)
	s.video(false)
	s.audio()
	k := s.video(true)
	p := s.video(false)
	got := drain(t, r)
	// The audio before the first keyframe passes; video waits for it.
	if len(got) != 3 || got[0].Track != 1 || got[1] != k || got[2] != p {
		t.Fatalf("got %v, want audio, keyframe, P", got)
	}
	if r.Dropped() != 0 {
		t.Errorf("Dropped() = %d: waiting for the first keyframe is not a drop", r.Dropped())
	}
}

func TestKeyframeCachePrefillsNewReader(t *testing.T) {
	s := newTestStream(16)
	s.video(false)
	k := s.video(true)
	a := s.audio()
	p := s.video(false)
	r := s.add(t)
	got := drain(t, r)
	if len(got) != 3 || got[0] != k || got[1] != a || got[2] != p {
		t.Fatalf("new reader got %v, want the cached group [keyframe audio P]", got)
	}
	// A new epoch empties the cache.
	s.epoch = s.begin(testTracks)
	r2 := s.add(t)
	if got := drain(t, r2); len(got) != 0 {
		t.Errorf("reader after reconnect got %d cached units of the old epoch", len(got))
	}
	// Units of the old epoch are ignored.
	s.push(&Unit{Track: 0, Keyframe: true, Epoch: s.epoch - 1, Packets: k.Packets})
	if got := drain(t, r2); len(got) != 0 {
		t.Errorf("stale unit delivered")
	}
}

func TestKeyframeCacheBounded(t *testing.T) {
	s := newTestStream(1000)
	s.video(true)
	for range maxCachedUnits {
		s.video(false)
	}
	r := s.add(t)
	if got := drain(t, r); len(got) != 0 {
		t.Fatalf("group longer than %d units was cached (%d units)", maxCachedUnits, len(got))
	}
	k := s.video(true)
	r2 := s.add(t)
	if got := drain(t, r2); len(got) != 1 || got[0] != k {
		t.Fatalf("cache did not restart at the next keyframe")
	}
}

// A field camera's 10 s GOP with G.711 sound (250 pictures, about 500
// sound packets) is longer than the default reader queue: it is cached, and a new
// reader still starts on its keyframe.
func TestKeyframeCacheHoldsLongGOPWithSound(t *testing.T) {
	s := newTestStream(DefaultQueueSize)
	k := s.video(true)
	for i := range 249 {
		s.audio()
		s.audio()
		if i < 248 {
			s.video(false)
		}
	}
	last := s.video(false)
	r := s.add(t)
	got := drain(t, r)
	// 250 pictures and 498 sound packets.
	if len(got) != 748 || got[0] != k || got[len(got)-1] != last {
		t.Fatalf("new reader got %d units (first is the keyframe: %v), want the whole group of 748 from its keyframe",
			len(got), len(got) > 0 && got[0] == k)
	}
	// The reader still has room for what comes next.
	u := s.video(false)
	if got := drain(t, r); len(got) != 1 || got[0] != u {
		t.Fatalf("after the group the reader got %d units, want the next picture", len(got))
	}
}

func TestSlowReaderDropsToKeyframe(t *testing.T) {
	s := newTestStream(4)
	slow := s.add(t)
	fast := s.add(t)
	var fastGot int
	s.video(true)
	fastGot += len(drain(t, fast))
	for range 3 {
		s.video(false)
		fastGot += len(drain(t, fast))
	}
	// slow's queue is full now: the next P frame is dropped, and so is
	// every P frame until a keyframe; audio passes when there is room.
	s.video(false)
	fastGot += len(drain(t, fast))
	s.video(false)
	fastGot += len(drain(t, fast))
	if slow.Dropped() != 2 {
		t.Fatalf("Dropped() = %d, want 2", slow.Dropped())
	}
	got := drain(t, slow)
	if len(got) != 4 || !got[0].Keyframe {
		t.Fatalf("slow reader kept %d units, want the 4 first", len(got))
	}
	p := s.video(false) // room now, but not a keyframe: dropped
	a := s.audio()      // audio passes
	k := s.video(true)  // keyframe: back in sync
	q := s.video(false)
	fastGot += len(drain(t, fast))
	got = drain(t, slow)
	if len(got) != 3 || got[0] != a || got[1] != k || got[2] != q {
		t.Fatalf("after the drop got %v, want audio, keyframe, P (not %p)", got, p)
	}
	if slow.Dropped() != 3 || s.dropped.Load() != 3 {
		t.Errorf("Dropped() = %d, stream total %d, want 3", slow.Dropped(), s.dropped.Load())
	}
	if fast.Dropped() != 0 || fastGot != 10 {
		t.Errorf("fast reader: dropped %d, got %d units, want 0 and 10", fast.Dropped(), fastGot)
	}
}

func TestReaderClose(t *testing.T) {
	s := newTestStream(4)
	r := s.add(t)
	done := make(chan error)
	go func() {
		_, err := r.Read(context.Background())
		done <- err
	}()
	r.Close()
	r.Close()
	if err := <-done; !errors.Is(err, ErrReaderClosed) {
		t.Errorf("Read after Close = %v, want ErrReaderClosed", err)
	}
	if s.released != 1 {
		t.Errorf("released %d times, want 1", s.released)
	}
	if _, n := s.snapshot(); n != 0 {
		t.Errorf("%d readers left", n)
	}
}

func TestCodecChangeClosesReaders(t *testing.T) {
	s := newTestStream(4)
	same := s.add(t)
	s.epoch = s.begin(testTracks)
	s.video(true)
	if got := drain(t, same); len(got) != 1 || got[0].Epoch != s.epoch {
		t.Fatalf("reader did not survive a reconnect with the same tracks")
	}
	h265 := []Track{{Kind: KindVideo, Codec: CodecH265, ClockRate: 90000, PayloadType: 96}}
	s.begin(h265)
	if _, err := same.Read(context.Background()); !errors.Is(err, ErrReaderClosed) {
		t.Errorf("Read after codec change = %v, want ErrReaderClosed", err)
	}
	if s.released != 1 {
		t.Errorf("released %d times, want 1", s.released)
	}
	if s.ready() {
		t.Errorf("stream ready without H.265 parameter sets")
	}
}

// BenchmarkFanout measures pushing one unit to N readers that keep up.
// Units are shared: the cost per reader must not allocate.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			s := newStream(512, slog.New(slog.DiscardHandler), func() {})
			epoch := s.begin(testTracks)
			readers := make([]*Reader, n)
			for i := range readers {
				readers[i] = s.addReader(func() {})
			}
			ctx := context.Background()
			key := &Unit{Track: 0, Keyframe: true, Epoch: epoch, Packets: []*rtp.Packet{pkt(1, 1, true, h264IDRSlice)}}
			p := &Unit{Track: 0, Epoch: epoch, Packets: []*rtp.Packet{pkt(2, 2, true, h264PSlice)}}
			s.push(key)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				u := p
				if i%100 == 0 {
					u = key
				}
				s.push(u)
				for _, r := range readers {
					if _, err := r.Read(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
