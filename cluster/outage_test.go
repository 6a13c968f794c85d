package cluster

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/internal/testproxy"
)

// Redis goes away from one node (its connections cut, new ones refused)
// while it leads: it stops its term before the lease can expire, logs the
// outage once, another node leads, and when Redis comes back the node
// registers again and waits its turn.
func TestRedisOutageLosesTheLeaseSafelyAndRecovers(t *testing.T) {
	r := newRig(t)
	opts, err := redis.ParseURL(r.url)
	if err != nil {
		t.Fatal(err)
	}
	p := testproxy.Start(t, "127.0.0.1:0", opts.Addr, nil)
	var logs syncBuffer
	a, err := New(Config{Node: "sky-a", HTTPURL: "http://127.0.0.1:1", Failover: testFailover},
		strings.Replace(r.url, opts.Addr, p.Addr(), 1), r.prefix, 200*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := r.newNode("sky-b", io.Discard)
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	type cancelled struct {
		node, fence, atCancel string
	}
	terms := make(chan Fence, 10)
	ends := make(chan cancelled, 10)
	leadOn := func(n *Cluster) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.Lead(ctx, "engine", func(ctx context.Context, f Fence) {
				terms <- f
				<-ctx.Done()
				ends <- cancelled{n.Node(), f.Value, r.get(f.Key)}
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	leadOn(a)
	first := <-terms
	if !strings.HasPrefix(first.Value, "sky-a/") {
		t.Fatalf("first term %+v", first)
	}
	leadOn(b.Cluster)

	p.Stop()
	stoppedAt := time.Now()
	select {
	case e := <-ends:
		if e.node != "sky-a" || e.atCancel != first.Value {
			t.Fatalf("sky-a's term ended with the lease at %q, want still %q (before it expired)", e.atCancel, first.Value)
		}
		t.Logf("term stopped %s after Redis went away (failover %s)", time.Since(stoppedAt).Round(time.Millisecond), testFailover)
	case <-time.After(2 * testFailover):
		t.Fatal("sky-a's term not stopped while Redis was away")
	}
	select {
	case f := <-terms:
		if !strings.HasPrefix(f.Value, "sky-b/") || f.Token <= first.Token {
			t.Fatalf("next term %+v after %+v", f, first)
		}
	case <-time.After(2 * testFailover):
		t.Fatal("sky-b did not take over")
	}
	eventually(t, 2*testFailover, "sky-b sees sky-a gone", func() bool { return slices.Equal(ids(b.Live()), []string{"sky-b"}) })

	testproxy.Start(t, p.Addr(), opts.Addr, nil)
	eventually(t, 3*testFailover, "sky-a back in the live set", func() bool {
		return slices.Equal(ids(b.Live()), []string{"sky-a", "sky-b"}) && slices.Equal(ids(a.Live()), []string{"sky-a", "sky-b"})
	})
	if n := strings.Count(logs.String(), "redis unavailable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "redis back") {
		t.Fatalf("no log of Redis's return:\n%s", logs.String())
	}
	select {
	case f := <-terms:
		t.Fatalf("a second leader while sky-b leads: %+v", f)
	case <-time.After(2 * a.interval):
	}

	// sky-b leaves: sky-a leads again, with a larger token.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-terms:
		if !strings.HasPrefix(f.Value, "sky-a/") || f.Token <= first.Token+1 {
			t.Fatalf("term after sky-b left: %+v", f)
		}
	case <-time.After(2 * testFailover):
		t.Fatal("sky-a did not lead again")
	}
}
