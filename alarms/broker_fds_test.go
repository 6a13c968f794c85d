package alarms

import (
	"net/netip"
	"slices"
	"testing"
)

func TestEffectiveMaxConnections(t *testing.T) {
	for _, tt := range []struct {
		want, reserved int
		limit          uint64
		known          bool
		n              int
		lowered        bool
	}{
		{20000, 512, 1 << 20, true, 20000, false},
		{20000, 512, 20000, true, 19488, true},
		{20000, 512, 1024, true, 512, true}, // half of a small limit
		{20000, 512, 0, false, 20000, false},
	} {
		n, lowered := effectiveMaxConnections(tt.want, tt.reserved, tt.limit, tt.known)
		if n != tt.n || lowered != tt.lowered {
			t.Errorf("%+v: %d %v, want %d %v", tt, n, lowered, tt.n, tt.lowered)
		}
	}
}

// The total cap holds across addresses, the per-address cap for each.
func TestConnLimiterCaps(t *testing.T) {
	l := newConnLimiter(3, 2, 0)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	conns := []*limitedConn{{addr: a}, {addr: a}, {addr: a}, {addr: b}, {addr: b}}
	var ok []bool
	for _, c := range conns {
		ok = append(ok, l.acquire(c))
	}
	if want := []bool{true, true, false, true, false}; !slices.Equal(ok, want) {
		t.Fatalf("acquired %v, want %v", ok, want)
	}
	if l.refusedAddr.Load() != 1 || l.refusedTotal.Load() != 1 {
		t.Fatalf("refused %d by address and %d in total, want 1 and 1", l.refusedAddr.Load(), l.refusedTotal.Load())
	}
	// Loopback peers count against the total only.
	l = newConnLimiter(3, 1, 0)
	lo := netip.MustParseAddr("127.0.0.1")
	for i := range 3 {
		if !l.acquire(&limitedConn{addr: lo}) {
			t.Fatalf("loopback connection %d refused under the total cap", i)
		}
	}
	if l.acquire(&limitedConn{addr: lo}) {
		t.Fatal("loopback connection accepted past the total cap")
	}
	l = newConnLimiter(3, 2, 0)
	for _, c := range conns[:2] {
		l.acquire(c)
	}
	l.release(conns[0])
	if !l.acquire(&limitedConn{addr: a}) || l.count() != 2 {
		t.Fatalf("a released slot was not reused: %d open", l.count())
	}
}
