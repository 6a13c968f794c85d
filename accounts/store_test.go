package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// store is what both stores provide.
type store interface {
	AppendAudit(ctx context.Context, r AuditRecord) error
	QueryAudit(ctx context.Context, q AuditQuery) (AuditPage, error)
	Prefs(ctx context.Context, username string) (json.RawMessage, error)
	SetPrefs(ctx context.Context, username string, prefs json.RawMessage) error
	SaveSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, key string) error
	Sessions(ctx context.Context) ([]Session, error)
	SaveToken(ctx context.Context, t Token) error
	DeleteToken(ctx context.Context, name string) (bool, error)
	Tokens(ctx context.Context) ([]Token, error)
	TouchToken(ctx context.Context, name string, at time.Time, uses uint64) error
	Close() error
}

var (
	_ store = (*FileStore)(nil)
	_ store = (*RedisStore)(nil)
)

// testStore runs the tests every store must pass. newStore is called once
// for each subtest and returns an opener: each call of the opener opens the
// same, initially empty, storage again.
func testStore(t *testing.T, newStore func(t *testing.T) func() store) {
	tests := []struct {
		name string
		run  func(t *testing.T, open func() store)
	}{
		{"Empty", testEmpty},
		{"NewestFirst", testNewestFirst},
		{"Filters", testFilters},
		{"Paging", testPaging},
		{"DefaultLimit", testDefaultLimit},
		{"BadCursor", testBadCursor},
		{"TimeAndLongFields", testTimeAndLongFields},
		{"ConcurrentAppends", testConcurrentAppends},
		{"Reopen", testReopen},
		{"Prefs", testPrefs},
		{"Sessions", testSessions},
		{"Tokens", testTokens},
		{"Closed", testClosed},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// openT opens a store that is closed at the end of the test.
func openT(t *testing.T, open func() store) store {
	t.Helper()
	s := open()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// base is the time of the test records.
var base = time.Date(2026, 3, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))

// sample returns the ten test records, oldest first: users a, b, c in
// turn, actions watch and incident_action in turn, targets by i%3.
func sample() []AuditRecord {
	var rs []AuditRecord
	for i := range 10 {
		r := AuditRecord{
			Time:    base.Add(time.Duration(i) * time.Minute),
			User:    string(rune('a' + i%3)),
			Role:    "operator",
			Addr:    fmt.Sprintf("192.0.2.%d:5%d", i, i),
			Action:  AuditIncidentAction,
			Target:  fmt.Sprintf("incident:%d", i%3),
			Outcome: "ok",
			Detail:  fmt.Sprintf("record %d", i),
		}
		if i%2 == 0 {
			r.Action = AuditWatch
			r.Target = fmt.Sprintf("camera:cam%d", i%3)
			r.Start = r.Time.Add(-time.Hour)
			r.End = r.Time
		}
		rs = append(rs, r)
	}
	return rs
}

func appendAll(t *testing.T, s store, rs []AuditRecord) {
	t.Helper()
	for _, r := range rs {
		if err := s.AppendAudit(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func query(t *testing.T, s store, q AuditQuery) AuditPage {
	t.Helper()
	p, err := s.QueryAudit(context.Background(), q)
	if err != nil {
		t.Fatalf("%+v: %v", q, err)
	}
	return p
}

// details lists the records' Detail, which the tests make unique.
func details(rs []AuditRecord) string {
	var d []string
	for _, r := range rs {
		d = append(d, strings.TrimPrefix(r.Detail, "record "))
	}
	return strings.Join(d, ",")
}

func sameRecord(a, b AuditRecord) bool {
	return a.Time.Equal(b.Time) && a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		a.User == b.User && a.Role == b.Role && a.Addr == b.Addr && a.Action == b.Action &&
		a.Target == b.Target && a.Outcome == b.Outcome && a.Detail == b.Detail
}

func testEmpty(t *testing.T, open func() store) {
	s := openT(t, open)
	p := query(t, s, AuditQuery{})
	if len(p.Records) != 0 || p.Next != "" {
		t.Errorf("empty store: %+v", p)
	}
	p = query(t, s, AuditQuery{User: "a", Limit: 5})
	if len(p.Records) != 0 || p.Next != "" {
		t.Errorf("empty store, filtered: %+v", p)
	}
}

func testNewestFirst(t *testing.T, open func() store) {
	s := openT(t, open)
	rs := sample()
	appendAll(t, s, rs)
	p := query(t, s, AuditQuery{})
	if got := details(p.Records); got != "9,8,7,6,5,4,3,2,1,0" || p.Next != "" {
		t.Fatalf("records %s next %q, want 9..0 and no next", got, p.Next)
	}
	for i, r := range p.Records {
		want := rs[len(rs)-1-i]
		if !sameRecord(r, want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, r, want)
		}
	}
}

func testFilters(t *testing.T, open func() store) {
	s := openT(t, open)
	appendAll(t, s, sample())
	tests := []struct {
		q    AuditQuery
		want string
	}{
		{AuditQuery{User: "a"}, "9,6,3,0"},
		{AuditQuery{User: "A"}, "9,6,3,0"},
		{AuditQuery{User: "z"}, ""},
		{AuditQuery{Action: AuditWatch}, "8,6,4,2,0"},
		{AuditQuery{Action: "watc"}, ""},
		{AuditQuery{Target: "camera:cam0"}, "6,0"},
		{AuditQuery{Target: "incident:1"}, "7,1"},
		{AuditQuery{Target: "incident:"}, ""},
		{AuditQuery{From: base.Add(7 * time.Minute)}, "9,8,7"},
		{AuditQuery{To: base.Add(2 * time.Minute)}, "1,0"},
		{AuditQuery{From: base.Add(3 * time.Minute), To: base.Add(6 * time.Minute)}, "5,4,3"},
		{AuditQuery{From: base.Add(3*time.Minute - 1), To: base.Add(6*time.Minute + 1)}, "6,5,4,3"},
		{AuditQuery{From: base.Add(6 * time.Minute).UTC(), To: base.Add(6 * time.Minute)}, ""},
		{AuditQuery{From: base.Add(time.Hour)}, ""},
		{AuditQuery{User: "b", Action: AuditIncidentAction}, "7,1"},
		{AuditQuery{User: "b", Action: AuditIncidentAction, From: base.Add(2 * time.Minute)}, "7"},
	}
	for _, tc := range tests {
		p := query(t, s, tc.q)
		if got := details(p.Records); got != tc.want || p.Next != "" {
			t.Errorf("%+v: %s next %q, want %s", tc.q, got, p.Next, tc.want)
		}
	}
}

// pages follows Next from q to the end and returns every page.
func pages(t *testing.T, s store, q AuditQuery) []string {
	t.Helper()
	var out []string
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatalf("%+v: more than 100 pages", q)
		}
		p := query(t, s, q)
		out = append(out, details(p.Records))
		if len(p.Records) > max(q.Limit, 0) {
			t.Fatalf("%+v: %d records, more than the limit", q, len(p.Records))
		}
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func testPaging(t *testing.T, open func() store) {
	s := openT(t, open)
	appendAll(t, s, sample())
	tests := []struct {
		q    AuditQuery
		want string // pages separated by |
	}{
		{AuditQuery{Limit: 3}, "9,8,7|6,5,4|3,2,1|0"},
		{AuditQuery{Limit: 5}, "9,8,7,6,5|4,3,2,1,0"},
		{AuditQuery{Limit: 1}, "9|8|7|6|5|4|3|2|1|0"},
		{AuditQuery{Limit: 10}, "9,8,7,6,5,4,3,2,1,0"},
		{AuditQuery{Limit: 2, Action: AuditWatch}, "8,6|4,2|0"},
		{AuditQuery{Limit: 2, User: "c"}, "8,5|2"},
		{AuditQuery{Limit: 2, User: "a", To: base.Add(7 * time.Minute)}, "6,3|0"},
	}
	for _, tc := range tests {
		got := strings.Join(pages(t, s, tc.q), "|")
		// A full last page may be followed by an empty one.
		got = strings.TrimSuffix(got, "|")
		if got != tc.want {
			t.Errorf("%+v: pages %s, want %s", tc.q, got, tc.want)
		}
	}

	// Records added after a page was read come first, not in later pages.
	p := query(t, s, AuditQuery{Limit: 4})
	appendAll(t, s, []AuditRecord{{Time: base.Add(time.Hour), User: "a", Action: "login", Detail: "record 10"}})
	p = query(t, s, AuditQuery{Limit: 4, Cursor: p.Next})
	if got := details(p.Records); got != "5,4,3,2" {
		t.Errorf("page after an append: %s, want 5,4,3,2", got)
	}
	if got := details(query(t, s, AuditQuery{Limit: 2}).Records); got != "10,9" {
		t.Errorf("first page after an append: %s, want 10,9", got)
	}
}

func testDefaultLimit(t *testing.T, open func() store) {
	s := openT(t, open)
	var rs []AuditRecord
	for i := range DefaultAuditLimit + 5 {
		rs = append(rs, AuditRecord{Time: base.Add(time.Duration(i) * time.Second), Action: "login", Detail: fmt.Sprint(i)})
	}
	appendAll(t, s, rs)
	p := query(t, s, AuditQuery{})
	if len(p.Records) != DefaultAuditLimit || p.Next == "" {
		t.Fatalf("%d records next %q, want %d and a next", len(p.Records), p.Next, DefaultAuditLimit)
	}
	if p.Records[0].Detail != "104" || p.Records[99].Detail != "5" {
		t.Errorf("page from %s to %s, want 104 to 5", p.Records[0].Detail, p.Records[99].Detail)
	}
	p = query(t, s, AuditQuery{Cursor: p.Next, Limit: -1})
	if got := details(p.Records); got != "4,3,2,1,0" || p.Next != "" {
		t.Errorf("second page %s next %q, want 4..0", got, p.Next)
	}
	p = query(t, s, AuditQuery{Limit: MaxAuditLimit + 1})
	if len(p.Records) != len(rs) || p.Next != "" {
		t.Errorf("limit above the maximum: %d records next %q", len(p.Records), p.Next)
	}
}

func testBadCursor(t *testing.T, open func() store) {
	s := openT(t, open)
	appendAll(t, s, sample())
	for _, c := range []string{"x", "-1", "1", "1-", "-1-1", "+1-1", "0-0", "99999999999", "99999999999999999999-1", "1e3", " 5"} {
		_, err := s.QueryAudit(context.Background(), AuditQuery{Cursor: c})
		if !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

func testTimeAndLongFields(t *testing.T, open func() store) {
	s := openT(t, open)
	before := time.Now()
	long := strings.Repeat("路", 5000) // 3 bytes each
	appendAll(t, s, []AuditRecord{{User: "a", Action: AuditDenied, Target: "camera:x", Detail: long}})
	after := time.Now()
	p := query(t, s, AuditQuery{})
	if len(p.Records) != 1 {
		t.Fatalf("%d records", len(p.Records))
	}
	r := p.Records[0]
	if r.Time.Before(before.Add(-time.Second)) || r.Time.After(after.Add(time.Second)) {
		t.Errorf("time %v, want now (%v)", r.Time, before)
	}
	if !r.Start.IsZero() || !r.End.IsZero() {
		t.Errorf("start %v end %v, want zero", r.Start, r.End)
	}
	if len(r.Detail) > maxAuditField || !strings.HasSuffix(r.Detail, "…") || !strings.HasPrefix(long, strings.TrimSuffix(r.Detail, "…")) {
		t.Errorf("long detail stored as %d bytes: ...%q", len(r.Detail), r.Detail[max(0, len(r.Detail)-10):])
	}
}

func testConcurrentAppends(t *testing.T, open func() store) {
	s := openT(t, open)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := AuditRecord{Time: base, User: fmt.Sprint("w", w), Action: AuditWatch, Detail: fmt.Sprintf("%d/%d", w, i)}
				errs <- s.AppendAudit(context.Background(), r)
			}
		})
	}
	// Reading while others write sees whole records only.
	wg.Go(func() {
		for range 20 {
			p, err := s.QueryAudit(context.Background(), AuditQuery{Limit: MaxAuditLimit})
			if err != nil {
				errs <- err
				return
			}
			for _, r := range p.Records {
				if r.Action != AuditWatch || !strings.HasPrefix(r.User, "w") {
					errs <- fmt.Errorf("read a partial record %+v", r)
					return
				}
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p := query(t, s, AuditQuery{Limit: MaxAuditLimit})
	seen := map[string]bool{}
	last := map[string]int{} // per writer, the index seen last (newest first)
	for _, r := range p.Records {
		seen[r.Detail] = true
		var w, i int
		fmt.Sscanf(r.Detail, "%d/%d", &w, &i)
		if l, ok := last[r.User]; ok && i >= l {
			t.Errorf("writer %d: record %d after %d, want newest first", w, i, l)
		}
		last[r.User] = i
	}
	if len(p.Records) != writers*each || len(seen) != writers*each {
		t.Errorf("%d records, %d distinct; want %d", len(p.Records), len(seen), writers*each)
	}
}

func testReopen(t *testing.T, open func() store) {
	s := open()
	appendAll(t, s, sample())
	if err := s.SetPrefs(context.Background(), "a", json.RawMessage(`{"x":"<&>"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, open)
	if got := details(query(t, s, AuditQuery{Limit: 3}).Records); got != "9,8,7" {
		t.Errorf("after reopening: %s, want 9,8,7", got)
	}
	prefs, err := s.Prefs(context.Background(), "a")
	if err != nil || string(prefs) != `{"x":"<&>"}` {
		t.Errorf("prefs after reopening: %s, %v", prefs, err)
	}
	appendAll(t, s, []AuditRecord{{Action: "login", Detail: "record 10"}})
	if got := details(query(t, s, AuditQuery{Limit: 2}).Records); got != "10,9" {
		t.Errorf("append after reopening: %s, want 10,9", got)
	}
}

func testPrefs(t *testing.T, open func() store) {
	s := openT(t, open)
	ctx := context.Background()
	prefs, err := s.Prefs(ctx, "li")
	if prefs != nil || err != nil {
		t.Errorf("no prefs: %q, %v; want nil, nil", prefs, err)
	}
	set := func(user, prefs string) error {
		return s.SetPrefs(ctx, user, json.RawMessage(prefs))
	}
	get := func(user string) string {
		t.Helper()
		p, err := s.Prefs(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	if err := set("Li", `{ "language": "en",
		"wall": {"layout": 4, "tiles": ["cam1", null]} }`); err != nil {
		t.Fatal(err)
	}
	if err := set("wang", `{"language":"zh-CN"}`); err != nil {
		t.Fatal(err)
	}
	if got, want := get("li"), `{"language":"en","wall":{"layout":4,"tiles":["cam1",null]}}`; got != want {
		t.Errorf("li: %s, want %s", got, want)
	}
	if got := get("LI"); got != get("li") {
		t.Errorf("LI: %s, want li's", got)
	}
	if got := get("wang"); got != `{"language":"zh-CN"}` {
		t.Errorf("wang: %s", got)
	}
	if err := set("li", `{}`); err != nil {
		t.Fatal(err)
	}
	if got := get("Li"); got != `{}` {
		t.Errorf("li after replacing: %s, want {}", got)
	}

	// The limit is 16 KB, whitespace included.
	fits := `{"a":"` + strings.Repeat("x", MaxPrefsSize-8) + `"}`
	if err := set("li", fits); err != nil {
		t.Errorf("%d bytes: %v", len(fits), err)
	}
	if got := get("li"); got != fits {
		t.Errorf("%d bytes stored as %d", len(fits), len(got))
	}
	for _, big := range []string{
		`{"a":"` + strings.Repeat("x", MaxPrefsSize-7) + `"}`,
		`{"a":1}` + strings.Repeat(" ", MaxPrefsSize),
	} {
		if err := set("li", big); !errors.Is(err, ErrPrefsTooLarge) {
			t.Errorf("%d bytes: %v, want ErrPrefsTooLarge", len(big), err)
		}
	}
	if got := get("li"); got != fits {
		t.Error("refused prefs replaced the stored ones")
	}
	for _, bad := range []string{``, `null`, `[1]`, `"s"`, `3`, `{`, `{"a":1}{}`, `{"a":1} x`} {
		if err := set("li", bad); !errors.Is(err, ErrPrefsNotObject) {
			t.Errorf("%q: %v, want ErrPrefsNotObject", bad, err)
		}
	}
	if err := set("", `{}`); err == nil {
		t.Error("prefs of an empty user name: no error")
	}
	if _, err := s.Prefs(ctx, ""); err == nil {
		t.Error("prefs of an empty user name: no error")
	}
}

func testClosed(t *testing.T, open func() store) {
	s := open()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	ctx := context.Background()
	errs := []error{
		s.AppendAudit(ctx, AuditRecord{Action: "login"}),
		s.SetPrefs(ctx, "a", json.RawMessage(`{}`)),
	}
	_, err := s.QueryAudit(ctx, AuditQuery{})
	errs = append(errs, err)
	_, err = s.Prefs(ctx, "a")
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("operation %d after close: %v, want ErrClosed", i, err)
		}
	}
}

func testCancelled(t *testing.T, open func() store) {
	s := openT(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := []error{
		s.AppendAudit(ctx, AuditRecord{Action: "login"}),
		s.SetPrefs(ctx, "a", json.RawMessage(`{}`)),
	}
	_, err := s.QueryAudit(ctx, AuditQuery{})
	errs = append(errs, err)
	_, err = s.Prefs(ctx, "a")
	errs = append(errs, err)
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("operation %d with a cancelled context: %v, want context.Canceled", i, err)
		}
	}
	if p := query(t, s, AuditQuery{}); len(p.Records) != 0 {
		t.Errorf("a cancelled append stored %d records", len(p.Records))
	}
}
