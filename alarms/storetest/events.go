package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skywatch/skywatch/alarms"
)

// base is the ReceivedAt of the first fixture event. Fixtures add odd
// sub-second parts so that bounds are checked below the millisecond.
var base = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func newEvent(device, id string, class alarms.Class, at time.Time) *alarms.Event {
	rssi := -71
	return &alarms.Event{
		ID:         id,
		Seq:        42,
		DeviceTime: at.Add(-3 * time.Hour).In(time.FixedZone("CST", 8*3600)),
		Class:      class,
		Qualifier:  alarms.QualifierNew,
		Code:       "130",
		Zone:       "003",
		Partition:  "1",
		RSSI:       &rssi,
		Text:       "burglary, zone 3",
		Device:     device,
		Area:       "area-" + device,
		ReceivedAt: at,
		Source:     "skywatch",
	}
}

// mustAppend appends e and fails unless stored equals want.
func mustAppend(t *testing.T, s alarms.Store, e *alarms.Event, window time.Duration, want bool) {
	t.Helper()
	stored, err := s.AppendEvent(context.Background(), e, window)
	if err != nil {
		t.Fatalf("append %s: %v", e.Key(), err)
	}
	if stored != want {
		t.Fatalf("append %s: stored = %v, want %v", e.Key(), stored, want)
	}
	if e.Offset == "" {
		t.Fatalf("append %s: no offset set", e.Key())
	}
}

// listAll pages through every event matching q and checks that pages are
// no longer than q.Limit.
func listAll(t *testing.T, s alarms.Store, q alarms.EventQuery) []alarms.Event {
	t.Helper()
	var all []alarms.Event
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("query %+v: more than 10000 pages", q)
		}
		p, err := s.Events(context.Background(), q)
		if err != nil {
			t.Fatalf("query %+v: %v", q, err)
		}
		if q.Limit > 0 && len(p.Events) > q.Limit {
			t.Fatalf("query %+v: page of %d events", q, len(p.Events))
		}
		all = append(all, p.Events...)
		if p.Next == "" {
			return all
		}
		if p.Next == q.Cursor {
			t.Fatalf("query %+v: cursor does not advance", q)
		}
		q.Cursor = p.Next
	}
}

func keys(es []alarms.Event) []string {
	out := make([]string, len(es))
	for i := range es {
		out[i] = es[i].Key()
	}
	return out
}

// sameJSON fails unless got and want encode to the same JSON.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// newestFirst sorts events as the stores must: by ReceivedAt, newest first,
// then by storing order, later first. order maps a key to its storing order.
func newestFirst(es []alarms.Event, order map[string]int) {
	slices.SortFunc(es, func(a, b alarms.Event) int {
		if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
			return c
		}
		return order[b.Key()] - order[a.Key()]
	})
}

func testAppendDedup(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}

	e := newEvent("d1", "e1", alarms.ClassAlarm, base)
	mustAppend(t, s, e, time.Hour, true)

	dup := newEvent("d1", "e1", alarms.ClassFire, base.Add(time.Minute))
	mustAppend(t, s, dup, time.Hour, false)
	if dup.Offset != e.Offset {
		t.Errorf("duplicate's offset = %q, want the stored event's %q", dup.Offset, e.Offset)
	}

	// The same event id from another device is another event.
	other := newEvent("d2", "e1", alarms.ClassAlarm, base.Add(time.Second))
	mustAppend(t, s, other, time.Hour, true)
	if other.Offset == e.Offset {
		t.Errorf("two events share offset %q", e.Offset)
	}

	got := listAll(t, s, alarms.EventQuery{})
	sameJSON(t, "stored events", got, []alarms.Event{*other, *e})

	// A cancelled context stores nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendEvent(cctx, newEvent("d1", "e2", alarms.ClassAlarm, base), time.Hour); err == nil {
		t.Error("append with a cancelled context: no error")
	}
	if n := len(listAll(t, s, alarms.EventQuery{})); n != 2 {
		t.Errorf("after a cancelled append: %d events, want 2", n)
	}
}

func testSyntheticWindow(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	synth := func(id string) *alarms.Event {
		e := newEvent("d1", id, alarms.ClassTamper, base)
		e.SyntheticID = true
		return e
	}

	// Within the window: deduplicated. The window is long so that a slow
	// machine cannot make this flaky.
	mustAppend(t, s, synth("h1"), time.Hour, true)
	mustAppend(t, s, synth("h1"), time.Hour, false)

	// After the window: the same content is a new event. Waiting longer
	// than the window can only make the key older, so this is not flaky
	// either.
	mustAppend(t, s, synth("h2"), time.Millisecond, true)
	time.Sleep(50 * time.Millisecond)
	mustAppend(t, s, synth("h2"), time.Millisecond, true)

	// A device's own id ignores the window.
	mustAppend(t, s, newEvent("d1", "r1", alarms.ClassAlarm, base), time.Millisecond, true)
	time.Sleep(50 * time.Millisecond)
	mustAppend(t, s, newEvent("d1", "r1", alarms.ClassAlarm, base), time.Millisecond, false)

	// No window: never deduplicated.
	mustAppend(t, s, synth("h3"), 0, true)
	mustAppend(t, s, synth("h3"), 0, true)

	if n := len(listAll(t, s, alarms.EventQuery{})); n != 6 {
		t.Errorf("%d events stored, want 6", n)
	}
}

func testConcurrentAppend(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	const workers, unique = 20, 100
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		storedBy = map[string]int{}
		errs     []error
	)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for _, i := range r.Perm(unique) {
				e := newEvent(fmt.Sprintf("d%d", i%7), fmt.Sprintf("e%d", i), alarms.ClassAlarm, base.Add(time.Duration(i)*time.Second))
				stored, err := s.AppendEvent(context.Background(), e, time.Hour)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if stored {
					storedBy[e.Key()]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(errs), errs[0])
	}
	if len(storedBy) != unique {
		t.Errorf("%d keys reported stored, want %d", len(storedBy), unique)
	}
	for k, n := range storedBy {
		if n != 1 {
			t.Errorf("%s reported stored %d times", k, n)
		}
	}
	got := keys(listAll(t, s, alarms.EventQuery{Limit: 30}))
	if len(got) != unique {
		t.Errorf("%d events listed, want %d", len(got), unique)
	}
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Errorf("%s listed twice", k)
		}
		seen[k] = true
	}
}

// fixture stores 48 events from three devices in two areas, in a shuffled
// order, and returns them with their storing order.
func fixture(t *testing.T, s alarms.Store) ([]alarms.Event, map[string]int) {
	t.Helper()
	classes := []alarms.Class{alarms.ClassAlarm, alarms.ClassFire, alarms.ClassPanic, alarms.ClassTest}
	var all []alarms.Event
	for i := range 48 {
		dev := fmt.Sprintf("d%d", i%3+1)
		at := base.Add(time.Duration(i)*time.Second + time.Duration(i)*7*time.Microsecond + 3)
		e := newEvent(dev, fmt.Sprintf("e%02d", i), classes[i%len(classes)], at)
		if dev == "d3" {
			e.Area = "south"
		} else {
			e.Area = "north"
		}
		all = append(all, *e)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	order := map[string]int{}
	for i := range all {
		mustAppend(t, s, &all[i], time.Hour, true)
		order[all[i].Key()] = i
	}
	return all, order
}

func testFilters(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	all, order := fixture(t, s)
	at := func(i int) time.Time {
		return base.Add(time.Duration(i)*time.Second + time.Duration(i)*7*time.Microsecond + 3)
	}
	tests := []struct {
		name string
		q    alarms.EventQuery
	}{
		{"all", alarms.EventQuery{}},
		{"device", alarms.EventQuery{Device: "d1"}},
		{"area north", alarms.EventQuery{Area: "north"}},
		{"area south", alarms.EventQuery{Area: "south"}},
		{"class", alarms.EventQuery{Class: alarms.ClassFire}},
		{"device and class", alarms.EventQuery{Device: "d2", Class: alarms.ClassAlarm}},
		{"area and class", alarms.EventQuery{Area: "north", Class: alarms.ClassPanic}},
		{"device and area", alarms.EventQuery{Device: "d3", Area: "south"}},
		{"device not in area", alarms.EventQuery{Device: "d3", Area: "north"}},
		{"unknown device", alarms.EventQuery{Device: "nobody"}},
		{"unknown class", alarms.EventQuery{Class: alarms.ClassDisarm}},
		// Since is inclusive and Until exclusive, to the nanosecond.
		{"since", alarms.EventQuery{Since: at(10)}},
		{"since just after", alarms.EventQuery{Since: at(10).Add(1)}},
		{"until", alarms.EventQuery{Until: at(20)}},
		{"until just after", alarms.EventQuery{Until: at(20).Add(1)}},
		{"since and until", alarms.EventQuery{Since: at(10), Until: at(20)}},
		{"empty range", alarms.EventQuery{Since: at(20), Until: at(10)}},
		{"range and device", alarms.EventQuery{Device: "d1", Since: at(10), Until: at(30)}},
		{"range, area and class", alarms.EventQuery{Area: "north", Class: alarms.ClassAlarm, Since: at(5), Until: at(40)}},
		{"range and class", alarms.EventQuery{Class: alarms.ClassTest, Until: at(30)}},
		// Areas: any of several exact areas (an area and those under it).
		{"areas", alarms.EventQuery{Areas: []string{"north", "south"}}},
		{"one area of areas", alarms.EventQuery{Areas: []string{"nowhere", "south"}}},
		{"areas over area", alarms.EventQuery{Area: "north", Areas: []string{"south"}}},
		{"areas and class", alarms.EventQuery{Areas: []string{"north", "south"}, Class: alarms.ClassPanic}},
		{"areas and device", alarms.EventQuery{Device: "d3", Areas: []string{"north", "south"}}},
		{"range, areas and class", alarms.EventQuery{Areas: []string{"north", "nowhere"}, Class: alarms.ClassAlarm, Since: at(5), Until: at(40)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []alarms.Event
			for _, e := range all {
				q := tc.q
				areas := q.AreaFilter()
				if (q.Device == "" || e.Device == q.Device) &&
					(len(areas) == 0 || slices.Contains(areas, e.Area)) &&
					(q.Class == "" || e.Class == q.Class) &&
					(q.Since.IsZero() || !e.ReceivedAt.Before(q.Since)) &&
					(q.Until.IsZero() || e.ReceivedAt.Before(q.Until)) {
					want = append(want, e)
				}
			}
			newestFirst(want, order)
			for _, limit := range []int{0, 7} {
				q := tc.q
				q.Limit = limit
				got := listAll(t, s, q)
				if strings.Join(keys(got), " ") != strings.Join(keys(want), " ") {
					t.Fatalf("limit %d:\n got %v\nwant %v", limit, keys(got), keys(want))
				}
				sameJSON(t, "events", got, want)
			}
		})
	}
}

func testPaging(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	const n = 57
	for i := range n {
		mustAppend(t, s, newEvent("d1", fmt.Sprintf("e%02d", i), alarms.ClassAlarm, base.Add(time.Duration(i)*time.Millisecond)), time.Hour, true)
	}
	p, err := s.Events(context.Background(), alarms.EventQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 10 || p.Next == "" {
		t.Fatalf("first page: %d events, next %q; want 10 and a cursor", len(p.Events), p.Next)
	}
	for _, q := range []alarms.EventQuery{{Limit: 10}, {Limit: 1}, {Limit: 57}, {Limit: 19, Device: "d1"}} {
		got := keys(listAll(t, s, q))
		var want []string
		for i := n - 1; i >= 0; i-- {
			want = append(want, fmt.Sprintf("d1/e%02d", i))
		}
		if !slices.Equal(got, want) {
			t.Errorf("paging %+v:\n got %v\nwant %v", q, got, want)
		}
	}
	// An event stored between pages, newer than the cursor, does not
	// appear in later pages; one older than the cursor does.
	p, err = s.Events(context.Background(), alarms.EventQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, newEvent("d1", "newer", alarms.ClassAlarm, base.Add(time.Hour)), time.Hour, true)
	mustAppend(t, s, newEvent("d1", "older", alarms.ClassAlarm, base.Add(-time.Hour)), time.Hour, true)
	rest := keys(listAll(t, s, alarms.EventQuery{Limit: 50, Cursor: p.Next}))
	want := []string{"d1/e06", "d1/e05", "d1/e04", "d1/e03", "d1/e02", "d1/e01", "d1/e00", "d1/older"}
	if !slices.Equal(rest, want) {
		t.Errorf("after storing between pages:\n got %v\nwant %v", rest, want)
	}
}

func testNewestFirst(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	// Stored out of ReceivedAt order, with a tie.
	mustAppend(t, s, newEvent("d1", "b", alarms.ClassAlarm, base.Add(2*time.Second)), time.Hour, true)
	mustAppend(t, s, newEvent("d1", "c", alarms.ClassAlarm, base.Add(3*time.Second)), time.Hour, true)
	mustAppend(t, s, newEvent("d1", "a", alarms.ClassAlarm, base.Add(1*time.Second)), time.Hour, true)
	mustAppend(t, s, newEvent("d1", "b2", alarms.ClassAlarm, base.Add(2*time.Second)), time.Hour, true)
	want := []string{"d1/c", "d1/b2", "d1/b", "d1/a"}
	for _, q := range []alarms.EventQuery{{}, {Limit: 1}, {Device: "d1"}, {Class: alarms.ClassAlarm, Limit: 3}} {
		if got := keys(listAll(t, s, q)); !slices.Equal(got, want) {
			t.Errorf("%+v: got %v, want %v", q, got, want)
		}
	}
}

func testLimits(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	const n = 1001
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				e := newEvent("d1", fmt.Sprintf("e%04d", i), alarms.ClassAlarm, base.Add(time.Duration(i)*time.Millisecond))
				if _, err := s.AppendEvent(context.Background(), e, time.Hour); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("append: %v", err)
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {1000, 1000}, {5000, 1000}} {
		p, err := s.Events(context.Background(), alarms.EventQuery{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != tc.want || p.Next == "" {
			t.Errorf("limit %d: %d events, next %q; want %d and a cursor", tc.limit, len(p.Events), p.Next, tc.want)
		}
		if tc.want == 1000 && len(p.Events) == 1000 {
			last, err := s.Events(context.Background(), alarms.EventQuery{Limit: tc.limit, Cursor: p.Next})
			if err != nil {
				t.Fatal(err)
			}
			if len(last.Events) != 1 || last.Events[0].ID != "e0000" || last.Next != "" {
				t.Errorf("limit %d, last page: %v, next %q; want [d1/e0000] and no cursor", tc.limit, keys(last.Events), last.Next)
			}
		}
	}
}

func testBadCursor(t *testing.T, open func() alarms.Store) {
	s := openT(t, open)
	mustAppend(t, s, newEvent("d1", "e1", alarms.ClassAlarm, base), time.Hour, true)
	for _, c := range []string{"x", "not a cursor", "0", "zz" + strings.Repeat("0", 40)} {
		if _, err := s.Events(context.Background(), alarms.EventQuery{Cursor: c}); err == nil {
			t.Errorf("cursor %q: no error", c)
		}
	}
}
