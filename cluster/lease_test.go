package cluster

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fencedWriteLua is a store write fenced as the contract says: it happens
// only while the lease still holds the fence's value.
var fencedWrite = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`)

// term is what one call of a Lead's fn saw.
type term struct {
	node  string
	fence Fence
	start time.Time
	// atCancel is the lease key's value when fn's ctx was cancelled.
	atCancel string
	end      time.Time
}

// leaders runs Lead("engine") on each node and records every term.
type leaders struct {
	mu     sync.Mutex
	terms  []*term
	active atomic.Int32
	most   atomic.Int32
	wg     sync.WaitGroup
	cancel map[string]context.CancelFunc
}

func (r *rig) lead(nodes ...*node) *leaders {
	l := &leaders{cancel: map[string]context.CancelFunc{}}
	for _, n := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel[n.Node()] = cancel
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			n.Lead(ctx, "engine", func(ctx context.Context, f Fence) {
				if a := l.active.Add(1); a > l.most.Load() {
					l.most.Store(a)
				}
				tm := &term{node: n.Node(), fence: f, start: time.Now()}
				l.mu.Lock()
				l.terms = append(l.terms, tm)
				l.mu.Unlock()
				<-ctx.Done()
				v := r.get(f.Key)
				l.mu.Lock()
				tm.atCancel, tm.end = v, time.Now()
				l.mu.Unlock()
				l.active.Add(-1)
			})
		}()
	}
	r.t.Cleanup(func() {
		for _, c := range l.cancel {
			c()
		}
		l.wg.Wait()
	})
	return l
}

func (l *leaders) snapshot() []term {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]term, len(l.terms))
	for i, t := range l.terms {
		out[i] = *t
	}
	return out
}

func (l *leaders) current() (term, bool) {
	ts := l.snapshot()
	if len(ts) == 0 || !ts[len(ts)-1].end.IsZero() {
		return term{}, false
	}
	return ts[len(ts)-1], true
}

func TestLeadOneHolderAndFencedTakeover(t *testing.T) {
	r := newRig(t)
	nodes := map[string]*node{}
	for _, id := range []string{"sky-a", "sky-b", "sky-c"} {
		nodes[id] = r.node(id)
	}
	l := r.lead(nodes["sky-a"], nodes["sky-b"], nodes["sky-c"])
	eventually(t, testFailover, "a leader", func() bool { _, ok := l.current(); return ok })

	ctx := context.Background()
	dataKey := r.prefix + "data"
	var fences []Fence
	for range 2 {
		old, _ := l.current()
		holder, token, expires, err := nodes[old.node].LeaseHolder(ctx, "engine")
		if err != nil || holder != old.node || token != old.fence.Token || time.Until(expires) <= 0 {
			t.Fatalf("LeaseHolder = %s %d %v %v, want %s %d", holder, token, expires, err, old.node, old.fence.Token)
		}
		if old.fence.Key != r.prefix+"cluster:lease:engine" || old.fence.Value != old.node+"/"+strconv.FormatInt(old.fence.Token, 10) {
			t.Fatalf("fence %+v", old.fence)
		}
		if n, err := fencedWrite.Run(ctx, r.rdb, []string{old.fence.Key, dataKey}, old.fence.Value, "by "+old.node).Int(); err != nil || n != 1 {
			t.Fatalf("fenced write by the holder: %d %v", n, err)
		}
		fences = append(fences, old.fence)

		// The holder "dies": it cannot reach Redis, and does not release.
		cutAt := time.Now()
		nodes[old.node].cut.cut.Store(true)
		eventually(t, testFailover+2*nodes[old.node].interval, "a new leader", func() bool {
			cur, ok := l.current()
			return ok && cur.node != old.node
		})
		t.Logf("takeover from %s after %s (failover %s)", old.node, time.Since(cutAt).Round(time.Millisecond), testFailover)
		ts := l.snapshot()
		var ended term
		for _, tm := range ts {
			if tm.fence == old.fence {
				ended = tm
			}
		}
		if ended.end.IsZero() {
			t.Fatalf("the old holder's term did not end: %+v", ts)
		}
		if ended.atCancel != old.fence.Value {
			t.Fatalf("the old holder's ctx was cancelled when the lease held %q, want still %q (before it could expire)", ended.atCancel, old.fence.Value)
		}
		// Its write, late, is refused.
		if n, err := fencedWrite.Run(ctx, r.rdb, []string{old.fence.Key, dataKey}, old.fence.Value, "late by "+old.node).Int(); err != nil || n != 0 {
			t.Fatalf("fenced write with an old fence: %d %v, want refused", n, err)
		}
		cur, _ := l.current()
		if cur.fence.Token <= old.fence.Token {
			t.Fatalf("token %d after %d, want it to increase", cur.fence.Token, old.fence.Token)
		}
		if !cur.start.After(ended.end) {
			t.Fatalf("new term began %s before the old ended", ended.end.Sub(cur.start))
		}
	}
	lastNode, _, _ := parseLeaseValue(fences[1].Value)
	if got := r.get(dataKey); got != "by "+lastNode {
		t.Fatalf("data %q", got)
	}
	if m := l.most.Load(); m != 1 {
		t.Fatalf("%d terms at once", m)
	}

	// The dead come back: they do not take the lease from the holder.
	for _, n := range nodes {
		n.cut.cut.Store(false)
	}
	holder, _ := l.current()
	time.Sleep(2 * nodes["sky-a"].interval)
	if cur, ok := l.current(); !ok || cur.fence != holder.fence {
		t.Fatalf("the lease moved after the others came back: %+v", l.snapshot())
	}

	// Close releases the lease at once: another node takes it within a
	// poll, well before the failover time.
	closedAt := time.Now()
	if err := nodes[holder.node].Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, testFailover, "a leader after Close", func() bool {
		cur, ok := l.current()
		return ok && cur.node != holder.node
	})
	t.Logf("takeover after Close in %s", time.Since(closedAt).Round(time.Millisecond))
	if err := nodes[holder.node].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if m := l.most.Load(); m != 1 {
		t.Fatalf("%d terms at once", m)
	}
}

func TestLeadFnReturnsReleasesAndLeadsAgain(t *testing.T) {
	r := newRig(t)
	a := r.node("sky-a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var tokens []int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Lead(ctx, "engine", func(_ context.Context, f Fence) {
			if r.get(f.Key) != f.Value {
				t.Errorf("lease %q during the term, want %q", r.get(f.Key), f.Value)
			}
			tokens = append(tokens, f.Token)
			if len(tokens) == 2 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(3 * testFailover):
		t.Fatal("Lead did not return after its ctx ended")
	}
	if len(tokens) != 2 || tokens[1] <= tokens[0] {
		t.Fatalf("tokens %v", tokens)
	}
	if v := r.get(a.LeaseKey("engine")); v != "" {
		t.Fatalf("lease %q after fn returned", v)
	}
	if node, _, _, err := a.LeaseHolder(context.Background(), "engine"); node != "" || err != nil {
		t.Fatalf("LeaseHolder of a free lease: %q %v", node, err)
	}
	// A bad name is refused, not turned into a key.
	a.Lead(context.Background(), "bad name*", func(context.Context, Fence) { t.Error("led a bad name") })
}

func TestLeadEndsWhenClusterCloses(t *testing.T) {
	r := newRig(t)
	a := r.node("sky-a")
	started := make(chan Fence, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Lead(context.Background(), "engine", func(ctx context.Context, f Fence) {
			started <- f
			<-ctx.Done()
		})
	}()
	f := <-started
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	<-done // Close waited for it
	if v := r.get(f.Key); v != "" {
		t.Fatalf("lease %q after Close", v)
	}
	if v := r.get(r.prefix + "cluster:node:sky-a"); v != "" {
		t.Fatalf("node record %q after Close", v)
	}
	a.Lead(context.Background(), "engine", func(context.Context, Fence) { t.Error("led after Close") })
}
