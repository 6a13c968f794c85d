package viewer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// auditWindow is the span of the unauthenticated audit budget.
const auditWindow = time.Minute

// maxSummaryAddrs bounds the addresses summarised one by one per window;
// the others share one summary under the address "*".
const maxSummaryAddrs = 100

// otherAddrs is the address of the summary of the addresses past
// maxSummaryAddrs.
const otherAddrs = "*"

// auditBudget bounds what requests without a session (failed and refused
// logins) write to the audit log: per window, at most perAddr records from
// one address and total in all, and a login refused by the rate limit is
// written once per address and window. What is held back is counted and
// written at the window's end as one summary record per address: "refused
// N times", with the count by action. It is a small locked API.
type auditBudget struct {
	perAddr, total int

	mu     sync.Mutex
	start  time.Time      // of the current window
	used   map[string]int // records written per address
	all    int            // records written in all
	locked map[string]bool
	held   map[string]map[string]int // address -> action -> count
}

func newAuditBudget(perAddr, total int) *auditBudget {
	return &auditBudget{perAddr: perAddr, total: total, used: map[string]int{},
		locked: map[string]bool{}, held: map[string]map[string]int{}}
}

// admit says whether rec, made at now, is to be written; when not, it is
// counted for its address's summary. It also returns the summaries of the
// window that now has closed, if any, to be written.
func (b *auditBudget) admit(rec accounts.AuditRecord, now time.Time) (write bool, summaries []accounts.AuditRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	summaries = b.rollLocked(now)
	addr := rec.Addr
	switch {
	case rec.Action == accounts.AuditLoginLocked && b.locked[addr]:
	case b.used[addr] >= b.perAddr || b.all >= b.total:
	default:
		if rec.Action == accounts.AuditLoginLocked {
			b.locked[addr] = true
		}
		if _, ok := b.used[addr]; ok || len(b.used) < maxLoginBuckets {
			b.used[addr]++
		}
		b.all++
		return true, summaries
	}
	b.holdLocked(addr, rec.Action)
	return false, summaries
}

// hold counts an attempt of addr for its summary without writing a record
// of its own (what says nothing a count does not, such as a user name too
// long to be anyone's), and returns the summaries of the window that now
// has closed, if any.
func (b *auditBudget) hold(addr, what string, now time.Time) []accounts.AuditRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	summaries := b.rollLocked(now)
	b.holdLocked(addr, what)
	return summaries
}

func (b *auditBudget) holdLocked(addr, what string) {
	if _, ok := b.held[addr]; !ok && len(b.held) >= maxSummaryAddrs {
		addr = otherAddrs
	}
	if b.held[addr] == nil {
		b.held[addr] = map[string]int{}
	}
	b.held[addr][what]++
}

// flush returns the summaries of the window when it has closed at now.
// force ends the window now (the server is closing).
func (b *auditBudget) flush(now time.Time, force bool) []accounts.AuditRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	if force {
		b.start = now.Add(-auditWindow)
	}
	return b.rollLocked(now)
}

// rollLocked starts a new window when the current one has closed at now
// and returns its summaries.
func (b *auditBudget) rollLocked(now time.Time) []accounts.AuditRecord {
	if !b.start.IsZero() && now.Before(b.start.Add(auditWindow)) {
		return nil
	}
	var out []accounts.AuditRecord
	end := now
	if !b.start.IsZero() {
		if e := b.start.Add(auditWindow); e.Before(now) {
			end = e
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(b.held)) {
		counts := b.held[addr]
		n, parts := 0, make([]string, 0, len(counts))
		for _, action := range slices.Sorted(maps.Keys(counts)) {
			n += counts[action]
			parts = append(parts, fmt.Sprintf("%s %d", action, counts[action]))
		}
		out = append(out, accounts.AuditRecord{Time: end.UTC(), Addr: addr, Action: accounts.AuditSummary,
			Outcome: "denied", Start: b.start.UTC(), End: end.UTC(),
			Detail: fmt.Sprintf("refused %d times: %s", n, strings.Join(parts, ", "))})
	}
	b.start = now
	clear(b.used)
	clear(b.locked)
	clear(b.held)
	b.all = 0
	return out
}
