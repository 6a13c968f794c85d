package viewer

import (
	"fmt"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// The budget writes at most perAddr records per address and total in
// all per window, a lockout refusal once per address; the rest come back
// as one summary per address (at most maxSummaryAddrs, then "*") when the
// window closes, and the counts add up.
func TestAuditBudget(t *testing.T) {
	b := newAuditBudget(2, 3)
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	failed := func(addr string) accounts.AuditRecord {
		return accounts.AuditRecord{Addr: addr, Action: accounts.AuditLoginFailed}
	}
	written := 0
	for _, rec := range []accounts.AuditRecord{
		failed("a"), {Addr: "b", Action: accounts.AuditLoginLocked}, {Addr: "b", Action: accounts.AuditLoginLocked},
		failed("a"), failed("a"), failed("c"),
	} {
		ok, sums := b.admit(rec, t0)
		if len(sums) != 0 {
			t.Fatalf("summaries within the window: %+v", sums)
		}
		written += btoi(ok)
	}
	if written != 3 { // a, b's first refusal, a; then the total is spent
		t.Errorf("%d written, want 3", written)
	}
	for i := range 2 * maxSummaryAddrs {
		b.hold(fmt.Sprint("x", i), nameTooLong, t0)
	}
	ok, sums := b.admit(failed("a"), t0.Add(auditWindow))
	if !ok {
		t.Error("a new window refused a record")
	}
	if len(sums) != maxSummaryAddrs+1 {
		t.Fatalf("%d summaries, want %d", len(sums), maxSummaryAddrs+1)
	}
	held := 0
	for _, s := range sums {
		held += summaryCount(t, s)
		if s.Action != accounts.AuditSummary || !s.End.Equal(t0.Add(auditWindow)) {
			t.Errorf("summary %+v", s)
		}
	}
	if held != 3+2*maxSummaryAddrs {
		t.Errorf("summaries count %d, want %d", held, 3+2*maxSummaryAddrs)
	}
	if sums := b.flush(t0.Add(auditWindow+time.Second), true); len(sums) != 0 {
		t.Errorf("nothing held, yet %+v", sums)
	}
}
