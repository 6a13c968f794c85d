package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metricLines reads a Prometheus text page within timeout and returns its
// sample lines (not comments); nil when it cannot, an empty list for a page
// without samples.
func metricLines(ctx context.Context, url string, timeout time.Duration) []string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	lines := []string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			lines = append(lines, l)
		}
	}
	return lines
}

// sumLines sums the samples of metric name whose labels hold every one of
// labels (`key="value"`).
func sumLines(lines []string, name string, labels ...string) float64 {
	sum := 0.0
	for _, l := range lines {
		if !strings.HasPrefix(l, name+" ") && !strings.HasPrefix(l, name+"{") {
			continue
		}
		match := true
		for _, lb := range labels {
			match = match && strings.Contains(l, lb)
		}
		if !match {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// scrapeMetrics reads the unlabelled samples of a Prometheus text page;
// nil when it cannot.
func scrapeMetrics(ctx context.Context, url string) map[string]float64 {
	lines := metricLines(ctx, url, 5*time.Second)
	if lines == nil {
		return nil
	}
	out := map[string]float64{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// sumMetric sums every sample of one metric (all its label sets) on a
// Prometheus text page; -1 when the page cannot be read.
func sumMetric(ctx context.Context, url, name string) float64 {
	lines := metricLines(ctx, url, 5*time.Second)
	if lines == nil {
		return -1
	}
	return sumLines(lines, name)
}
