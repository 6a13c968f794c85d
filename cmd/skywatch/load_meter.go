package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// loadMeter samples the CPU and memory of Skywatch (from its /metrics,
// summed over the nodes of a cluster) and of other processes (from Linux's
// /proc), and the loader's own CPU.
type loadMeter struct {
	metricsURLs []string
	pids        []int
}

func newLoadMeter(httpURLs []string, pids []int) *loadMeter {
	m := &loadMeter{pids: pids}
	for _, u := range httpURLs {
		m.metricsURLs = append(m.metricsURLs, strings.TrimSuffix(u, "/")+"/metrics")
	}
	return m
}

// loadSample is what a meter read at one time.
type loadSample struct {
	at      time.Time
	metrics map[string]float64 // summed over the nodes; nil when a /metrics could not be read
	pids    []int
	pidCPU  []float64 // seconds; -1 when unknown
	selfCPU float64
}

func (m *loadMeter) sample(ctx context.Context) loadSample {
	s := loadSample{at: time.Now(), pids: m.pids, selfCPU: procCPU("self")}
	for _, u := range m.metricsURLs {
		page := scrapeMetrics(ctx, u)
		if page == nil {
			s.metrics = nil // one node unread: no figure rather than a wrong one
			break
		}
		if s.metrics == nil {
			s.metrics = map[string]float64{}
		}
		for k, v := range page {
			s.metrics[k] += v
		}
	}
	for _, pid := range m.pids {
		s.pidCPU = append(s.pidCPU, procCPU(strconv.Itoa(pid)))
	}
	return s
}

// loadUsageDelta is the resource use between two samples, in cores.
type loadUsageDelta struct {
	metrics    bool // Skywatch's /metrics was read
	cpu        float64
	rssMB      float64
	storedRate float64 // skywatch_alarms_events_stored_total per second
	pids       []int
	pidCPU     []float64
	selfCPU    float64
}

func (s loadSample) since(before loadSample) loadUsageDelta {
	wall := s.at.Sub(before.at).Seconds()
	d := loadUsageDelta{pids: s.pids, selfCPU: (s.selfCPU - before.selfCPU) / wall}
	if s.metrics != nil && before.metrics != nil {
		d.metrics = true
		d.cpu = (s.metrics["process_cpu_seconds_total"] - before.metrics["process_cpu_seconds_total"]) / wall
		d.rssMB = s.metrics["process_resident_memory_bytes"] / 1e6
		d.storedRate = (s.metrics["skywatch_alarms_events_stored_total"] - before.metrics["skywatch_alarms_events_stored_total"]) / wall
	}
	for i := range s.pidCPU {
		d.pidCPU = append(d.pidCPU, (s.pidCPU[i]-before.pidCPU[i])/wall)
	}
	return d
}

func (d loadUsageDelta) String() string {
	var parts []string
	if d.metrics {
		parts = append(parts, fmt.Sprintf("skywatch cpu %.2f cores, rss %.0f MB, stored %.0f/s (metrics, whole run)", d.cpu, d.rssMB, d.storedRate))
	}
	for i, c := range d.pidCPU {
		parts = append(parts, fmt.Sprintf("pid %d cpu %.2f cores", d.pids[i], c))
	}
	parts = append(parts, fmt.Sprintf("loader cpu %.2f cores", d.selfCPU))
	return strings.Join(parts, ", ")
}

// procCPU is a process's user and system CPU time in seconds from
// /proc/PID/stat, or -1 where there is no /proc. It assumes the usual
// 100 ticks per second.
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (ut + st) / 100
}
