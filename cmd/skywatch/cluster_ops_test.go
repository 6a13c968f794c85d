package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/internal/testredis"
)

// Two nodes on one Redis: each shows both, with the engine's lease and
// holder, the cameras each claims and the figures each publishes; a node
// that closes is shown as not alive with its last figures' time.
func TestClusterOpsStatus(t *testing.T) {
	url := os.Getenv("SKYWATCH_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	prefix := testredis.Prefix(t, url, "skywatch-test:")
	logger := slog.New(slog.DiscardHandler)
	ctx := t.Context()
	start := func(id string) (*cluster.Cluster, *clusterOps, *prometheus.Registry) {
		c, err := cluster.New(cluster.Config{Node: id, HTTPURL: "http://127.0.0.1:1", WebRTCIPs: []string{"127.0.0.1"},
			Failover: cluster.MinFailover}, url, prefix, time.Second, logger)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		reg := prometheus.NewRegistry()
		events := prometheus.NewCounter(prometheus.CounterOpts{Name: "skywatch_alarms_events_stored_total"})
		reg.MustRegister(events)
		events.Add(5)
		o, err := newClusterOps(ctx, c, url, prefix, time.Second, reg, logger)
		if err != nil {
			t.Fatal(err)
		}
		o.Start()
		t.Cleanup(func() { _ = o.Close() })
		return c, o, reg
	}
	a, opsA, regA := start("ops-a")
	b, opsB, _ := start("ops-b")

	leading := make(chan struct{})
	leadCtx, stopLead := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Lead(leadCtx, engineLease, func(ctx context.Context, _ cluster.Fence) {
			close(leading)
			<-ctx.Done()
		})
	}()
	defer func() { stopLead(); <-done }()
	<-leading
	if ok, err := a.ClaimCamera(ctx, "yard"); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}

	// Wait for both registrations and figures (a heartbeat or two).
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := opsA.ClusterStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := len(st.Nodes) == 2 && st.Engine == "ops-b" && st.Node == "ops-a"
		for _, n := range st.Nodes {
			ok = ok && n.Alive && n.Stats != nil
			if n.ID == "ops-a" {
				ok = ok && strings.Join(n.Cameras, ",") == "yard"
			}
		}
		if ok && len(st.Leases) == 1 && st.Leases[0].Holder == "ops-b" && st.Leases[0].Token > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The node's info metric carries its id.
	fams, err := regA.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() == "skywatch_node_info" && len(f.GetMetric()) == 1 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				found = found || (l.GetName() == "node" && l.GetValue() == "ops-a")
			}
		}
	}
	if !found {
		t.Error("no skywatch_node_info{node=\"ops-a\"}")
	}

	// B goes away: A shows it as not alive, from its last figures.
	stopLead()
	<-done
	_ = opsB.Close()
	_ = b.Close()
	st, err := opsA.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[1].ID != "ops-b" || st.Nodes[1].Alive || st.Engine != "" {
		t.Fatalf("after B closed: %+v", st)
	}
}
