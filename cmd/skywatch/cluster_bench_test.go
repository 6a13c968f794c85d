package main

import (
	"strings"
	"testing"
	"time"
)

// TestLoadTrackerIncident: an event's latency to its incident is counted
// once, from its publication, and only for events of the run.
func TestLoadTrackerIncident(t *testing.T) {
	tr := newLoadTracker(4)
	t0 := time.Now()
	tr.published("a", t0)
	tr.observedIncident("a", t0.Add(30*time.Millisecond))
	tr.observedIncident("a", t0.Add(90*time.Millisecond)) // joined again: not counted twice
	tr.observedIncident("other", t0.Add(10*time.Millisecond))
	r := tr.result(t0, t0.Add(time.Second))
	if r.incidents != 1 || r.incP50 != 30*time.Millisecond {
		t.Errorf("incidents %d, p50 %v; want 1, 30ms", r.incidents, r.incP50)
	}
	tr.reset()
	if r := tr.result(t0, t0.Add(time.Second)); r.incidents != 0 {
		t.Errorf("after reset: %d incident latencies", r.incidents)
	}
}

// TestClusterReport: the report's rows are the medians over the rounds'
// runs of each node count, and a node count without results says so.
func TestClusterReport(t *testing.T) {
	run := func(rate float64, p50 time.Duration) loadResult {
		return loadResult{rate: rate, ackRate: rate + 10, p50: p50, p99: 2 * p50, incP50: p50 + time.Millisecond}
	}
	s := clusterBenchSettings{nodes: []int{1, 2}, viewers: 30, viewDuration: 10 * time.Second}
	results := []clusterBenchResult{{
		nodes: 1, round: 1,
		events:   []loadResult{run(1000, 10*time.Millisecond), run(1200, 20*time.Millisecond), run(800, 30*time.Millisecond)},
		nodeCPU:  []float64{0.5, 0.6, 0.4},
		redisCPU: []float64{0.2, 0.2, 0.2}, brokerCPU: []float64{0.1, 0.1, 0.1},
		redisOpsPerEvent: 22, redisBytesPerEvent: 1300,
		joined: 30, withKey: 30, viewCPU: 1.0, idleCPU: 0.1, window: 10 * time.Second, packetsPerViewer: 248,
	}, {nodes: 2, round: 1, err: "start: no"}}
	var b strings.Builder
	writeClusterReport(&b, s, results)
	out := b.String()
	for _, want := range []string{
		"| 1 | 3 | 1000 | 1010 | 20ms | 40ms | 21ms |", // medians of the three runs
		"| 0.50 | 0.10 | 0.20 | 22.0 | 1300 | 0 |",
		"| 2 | 0 | (failed) |",
		"| 1 | 1 | 30 | 30 | 3.00 | 0.01 | 248 |", // (1.0/10 - 0.1/10) cores over 30 viewers
		"round 1, 2 node(s) failed: start: no",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
