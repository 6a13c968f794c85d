package viewer

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/skywatch/skywatch/ingest"
)

// recorder keeps copies of what a trackWriter writes.
type recorder struct {
	pkts []rtp.Packet
	fail bool
}

func (r *recorder) WriteRTP(p *rtp.Packet) error {
	if r.fail {
		return errors.New("closed pipe")
	}
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	r.pkts = append(r.pkts, c)
	return nil
}

func unitAt(epoch uint64, seq uint16, ts uint32, received time.Time, n int) *ingest.Unit {
	u := &ingest.Unit{Epoch: epoch, Received: received}
	for i := range n {
		u.Packets = append(u.Packets, &rtp.Packet{
			Header: rtp.Header{
				Version: 2, PayloadType: 96, SequenceNumber: seq + uint16(i), Timestamp: ts,
				SSRC: 42, Marker: i == n-1,
			},
			Payload: []byte{byte(i), 0xaa},
		})
		if err := u.Packets[i].SetExtension(1, []byte{1}); err != nil {
			panic(err)
		}
	}
	return u
}

func TestTrackWriterContinuity(t *testing.T) {
	rec := &recorder{}
	w := newTrackWriter(rec, 8000)
	t0 := time.Unix(500, 0)
	units := []*ingest.Unit{
		unitAt(1, 65534, 4294967000, t0, 3), // wraps both counters
		unitAt(1, 1, 4294967000+160, t0.Add(20*time.Millisecond), 1),
		// A reconnect 1.5 s later: numbering starts over.
		unitAt(2, 100, 10, t0.Add(1520*time.Millisecond), 2),
		unitAt(2, 102, 170, t0.Add(1540*time.Millisecond), 1),
		// A unit without a receive time takes now.
		unitAt(3, 9, 0, time.Time{}, 1),
	}
	now := t0.Add(2540 * time.Millisecond)
	for _, u := range units {
		if n, err := w.writeUnit(u, now); err != nil || n != len(u.Packets) {
			t.Fatalf("writeUnit: %d, %v", n, err)
		}
	}
	wantSteps := []uint32{0, 0, 160, 1500 * 8, 0, 160, 1000 * 8}
	for i := 1; i < len(rec.pkts); i++ {
		p, prev := rec.pkts[i], rec.pkts[i-1]
		if p.SequenceNumber != prev.SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, p.SequenceNumber, prev.SequenceNumber)
		}
		if step := p.Timestamp - prev.Timestamp; step != wantSteps[i-1] {
			t.Errorf("packet %d: timestamp step %d, want %d", i, step, wantSteps[i-1])
		}
	}
	for i, p := range rec.pkts {
		if p.Extension || len(p.Extensions) != 0 || p.Version != 2 {
			t.Errorf("packet %d: camera header extensions passed on", i)
		}
	}
	// The camera's shared packets are untouched.
	if units[0].Packets[0].SequenceNumber != 65534 || units[0].Packets[0].Timestamp != 4294967000 ||
		!units[0].Packets[0].Extension {
		t.Error("writer changed a shared packet")
	}
}

func TestTrackWriterCountsFailures(t *testing.T) {
	rec := &recorder{fail: true}
	w := newTrackWriter(rec, 90000)
	n, err := w.writeUnit(unitAt(1, 0, 0, time.Unix(1, 0), 3), time.Now())
	if n != 0 || err == nil {
		t.Fatalf("got %d, %v; want 0 and an error", n, err)
	}
	// Sequence numbers are used even by lost packets, as on a lossy link.
	rec.fail = false
	first := w.seq
	if _, err := w.writeUnit(unitAt(1, 3, 3000, time.Unix(1, 0), 1), time.Now()); err != nil {
		t.Fatal(err)
	}
	if rec.pkts[0].SequenceNumber != first {
		t.Errorf("seq %d, want %d", rec.pkts[0].SequenceNumber, first)
	}
}

type discard struct{}

func (discard) WriteRTP(*rtp.Packet) error { return nil }

func TestTrackWriterDoesNotAllocate(t *testing.T) {
	w := newTrackWriter(discard{}, 90000)
	u := unitAt(1, 0, 0, time.Unix(1, 0), 10)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = w.writeUnit(u, time.Time{})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per unit", allocs)
	}
}

func BenchmarkTrackWriter(b *testing.B) {
	w := newTrackWriter(discard{}, 90000)
	u := unitAt(1, 0, 0, time.Unix(1, 0), 10)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = w.writeUnit(u, time.Time{})
	}
}
