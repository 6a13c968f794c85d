package cluster

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	r := newRig(t)
	a := r.node("sky-a")
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(a.Collector()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	led := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Lead(ctx, "engine", func(ctx context.Context, _ Fence) {
			close(led)
			<-ctx.Done()
		})
	}()
	<-led
	if ok, err := a.ClaimCamera(ctx, "cam1"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	got := gather(t, reg)
	for name, want := range map[string]float64{
		"skywatch_cluster_cameras_claimed":                        1,
		"skywatch_cluster_camera_claims_lost_total":               0,
		"skywatch_cluster_lease_acquisitions_total{lease=engine}": 1,
		"skywatch_cluster_lease_held{lease=engine}":               1,
		"skywatch_cluster_lease_losses_total{lease=engine}":       0,
		"skywatch_cluster_live_nodes":                             1,
		"skywatch_cluster_redis_up":                               1,
		"skywatch_cluster_heartbeat_errors_total":                 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	cancel()
	<-done
	if v := gather(t, reg)["skywatch_cluster_lease_held{lease=engine}"]; v != 0 {
		t.Errorf("lease held %v after the term", v)
	}
}

// gather returns each series as name{label=value} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.Gauge != nil:
				out[name] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
