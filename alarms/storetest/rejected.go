package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

func newRejected(device string, i int) *alarms.Rejected {
	return &alarms.Rejected{
		Device:     device,
		Topic:      "skywatch/dev/" + device + "/event",
		Payload:    []byte{0xff, 0x00, '{', byte(i), 0x80},
		Truncated:  i%5 == 0,
		Reason:     fmt.Sprintf("bad json at byte %d", i),
		ReceivedAt: base.Add(time.Duration(i) * time.Second),
	}
}

// listRejected pages through every rejected message for device.
func listRejected(t *testing.T, s alarms.Store, q alarms.RejectedQuery) []alarms.Rejected {
	t.Helper()
	var all []alarms.Rejected
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("rejected %+v: more than 10000 pages", q)
		}
		rs, err := s.Rejected(context.Background(), q)
		if err != nil {
			t.Fatalf("rejected %+v: %v", q, err)
		}
		if q.Limit > 0 && len(rs) > q.Limit {
			t.Fatalf("rejected %+v: page of %d", q, len(rs))
		}
		all = append(all, rs...)
		if q.Limit <= 0 || len(rs) < q.Limit {
			return all
		}
		q.Before = rs[len(rs)-1].Offset
	}
}

func testRejected(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	ctx := context.Background()
	if rs, err := s.Rejected(ctx, alarms.RejectedQuery{}); err != nil || len(rs) != 0 {
		t.Fatalf("empty store: %d rejected, err %v", len(rs), err)
	}
	var added []alarms.Rejected
	offsets := map[string]bool{}
	for i := range 25 {
		r := newRejected(fmt.Sprintf("d%d", i%2+1), i)
		if dropped, err := s.AddRejected(ctx, r, alarms.RejectedLimits{}); err != nil || dropped != 0 {
			t.Fatalf("add rejected without limits: dropped %d, err %v", dropped, err)
		}
		if r.Offset == "" || offsets[r.Offset] {
			t.Fatalf("rejected %d: offset %q is empty or not unique", i, r.Offset)
		}
		offsets[r.Offset] = true
		added = append(added, *r)
	}
	slices.Reverse(added) // newest first

	filter := func(device string) []alarms.Rejected {
		var out []alarms.Rejected
		for _, r := range added {
			if device == "" || r.Device == device {
				out = append(out, r)
			}
		}
		return out
	}
	for _, tc := range []struct {
		q    alarms.RejectedQuery
		want []alarms.Rejected
	}{
		{alarms.RejectedQuery{}, filter("")},
		{alarms.RejectedQuery{Limit: 10}, filter("")},
		{alarms.RejectedQuery{Limit: 1}, filter("")},
		{alarms.RejectedQuery{Device: "d1"}, filter("d1")},
		{alarms.RejectedQuery{Device: "d2", Limit: 4}, filter("d2")},
		{alarms.RejectedQuery{Device: "nobody"}, nil},
		{alarms.RejectedQuery{Before: added[10].Offset}, added[11:]},
		{alarms.RejectedQuery{Device: "d1", Before: added[10].Offset, Limit: 3}, filter("d1")[6:]},
	} {
		got := listRejected(t, s, tc.q)
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		sameJSON(t, fmt.Sprintf("rejected %+v", tc.q), got, tc.want)
	}

	rs, err := s.Rejected(ctx, alarms.RejectedQuery{Limit: 3})
	if err != nil || len(rs) != 3 {
		t.Fatalf("limit 3: %d rejected, err %v", len(rs), err)
	}
	for _, b := range []string{"x", "not an offset", "zz00"} {
		if _, err := s.Rejected(ctx, alarms.RejectedQuery{Before: b}); err == nil {
			t.Errorf("before %q: no error", b)
		}
	}
}

// testRejectedBounded floods the rejected list of one device and then of
// many: each device keeps its newest PerDevice messages, all devices
// together their newest Total, the oldest are dropped from every listing
// and counted, and the bounds hold across a restart.
func testRejectedBounded(t *testing.T, open func() alarms.Store) {
	ctx := context.Background()
	lim := alarms.RejectedLimits{PerDevice: 5, Total: 12}
	s := open()
	add := func(s alarms.Store, device string, i int) (*alarms.Rejected, int) {
		t.Helper()
		r := newRejected(device, i)
		dropped, err := s.AddRejected(ctx, r, lim)
		if err != nil {
			t.Fatalf("add rejected %s %d: %v", device, i, err)
		}
		return r, dropped
	}
	kept := map[string][]alarms.Rejected{} // per device, newest first
	var all []alarms.Rejected              // newest first
	drops := 0
	note := func(r *alarms.Rejected, dropped int) {
		drops += dropped
		kept[r.Device] = append([]alarms.Rejected{*r}, kept[r.Device]...)
		all = append([]alarms.Rejected{*r}, all...)
	}
	// One device floods: only its newest five stay.
	for i := range 9 {
		note(add(s, "flood", i))
	}
	if drops != 4 {
		t.Fatalf("flood of 9 with 5 per device: %d dropped, want 4", drops)
	}
	sameJSON(t, "flooding device's rejected", listRejected(t, s, alarms.RejectedQuery{Device: "flood"}), kept["flood"][:5])
	sameJSON(t, "all rejected after one device's flood", listRejected(t, s, alarms.RejectedQuery{}), kept["flood"][:5])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Many devices, three messages each: the total bound drops the oldest
	// of any device, after a restart too.
	s = openT(t, open)
	all = all[:5]
	drops = 0
	for i := range 4 {
		for j := range 3 {
			note(add(s, fmt.Sprintf("m%d", i), 100+3*i+j))
		}
	}
	if drops != 5 {
		t.Fatalf("17 messages kept within a total of 12: %d dropped, want 5", drops)
	}
	sameJSON(t, "all rejected past the total", listRejected(t, s, alarms.RejectedQuery{Limit: 5}), all[:12])
	if got := listRejected(t, s, alarms.RejectedQuery{Device: "flood"}); len(got) != 0 {
		t.Fatalf("the oldest device keeps %d rejected past the total, want 0", len(got))
	}
	if got := listRejected(t, s, alarms.RejectedQuery{Device: "m3"}); len(got) != 3 {
		t.Fatalf("the newest device keeps %d rejected, want 3", len(got))
	}
}
