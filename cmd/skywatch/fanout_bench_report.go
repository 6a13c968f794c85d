package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Derived figures of one measurement.

// netCPU is the server's CPU-seconds over the window less its idle CPU
// over an equal window: what the viewers cost.
func (r fanoutResult) netCPU() float64 { return r.cpu - r.idleCPU }

// perViewer is the viewers' cost in CPU-milliseconds per second per
// viewer.
func (r fanoutResult) perViewer() float64 {
	return r.netCPU() / float64(r.joined) / r.window.Seconds() * 1000
}

// perPacket is the viewers' cost in CPU-microseconds per packet received
// by a viewer.
func (r fanoutResult) perPacket() float64 {
	if r.packets == 0 {
		return 0
	}
	return r.netCPU() / r.packets * 1e6
}

// packetRate is the packets each viewer received per second.
func (r fanoutResult) packetRate() float64 {
	return r.packets / float64(r.joined) / r.window.Seconds()
}

// lossPct is the share of packets lost, in percent.
func (r fanoutResult) lossPct() float64 {
	if r.packets+r.lost == 0 {
		return 0
	}
	return r.lost / (r.packets + r.lost) * 100
}

// medianKey is the median time to the first keyframe; -1 without one.
func (r fanoutResult) medianKey() time.Duration {
	if len(r.firstKey) == 0 {
		return -1
	}
	return r.firstKey[len(r.firstKey)/2]
}

// fanoutHeader is the table's header; fanoutRow gives a result's cells.
func fanoutHeader() []string {
	return []string{"server", "viewers", "CPU-s in window", "idle CPU-s", "viewers' CPU-s",
		"per viewer (CPU-ms/s)", "per packet per viewer (CPU-µs)", "peak RSS (MB)", "VmHWM (MB)",
		"packets/s per viewer", "lost", "first keyframe (median)", "first unit a keyframe", "bench CPU-s"}
}

func fanoutRow(r fanoutResult, runLabel string) []string {
	name := r.server
	if runLabel != "" {
		name += " " + runLabel
	}
	if r.err != "" {
		return []string{name, fmt.Sprint(r.n), "failed: " + strings.ReplaceAll(r.err, "|", "/")}
	}
	key := keyString(r.medianKey())
	joined := fmt.Sprint(r.n)
	if r.joined != r.n {
		joined = fmt.Sprintf("%d of %d", r.joined, r.n)
	}
	if r.retries > 0 {
		joined += fmt.Sprintf(" (%d retried)", r.retries)
	}
	return []string{name, joined,
		fmt.Sprintf("%.2f", r.cpu), fmt.Sprintf("%.2f", r.idleCPU), fmt.Sprintf("%.2f", r.netCPU()),
		fmt.Sprintf("%.2f", r.perViewer()), fmt.Sprintf("%.1f", r.perPacket()),
		fmt.Sprintf("%.0f", r.rssPeak/1e6), fmt.Sprintf("%.0f", r.hwm/1e6),
		fmt.Sprintf("%.0f", r.packetRate()), fmt.Sprintf("%.0f (%.3f%%)", r.lost, r.lossPct()),
		key, fmt.Sprintf("%d of %d", r.keyFirst, r.joined), fmt.Sprintf("%.2f", r.selfCPU)}
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// medianFanout merges the runs of one server and viewer count: the median
// of each figure separately (first-keyframe times of all runs pooled).
func medianFanout(rs []fanoutResult) fanoutResult {
	var ok []fanoutResult
	for _, r := range rs {
		if r.err == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	med := func(f func(fanoutResult) float64) float64 {
		v := make([]float64, 0, len(ok))
		for _, r := range ok {
			v = append(v, f(r))
		}
		slices.Sort(v)
		if len(v)%2 == 0 {
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return v[len(v)/2]
	}
	// The derived figures are medians of their own, not figures of the
	// medians: scale the window's CPU so that they come out right.
	m := fanoutResult{server: ok[0].server, n: ok[0].n, window: ok[0].window}
	m.joined = int(med(func(r fanoutResult) float64 { return float64(r.joined) }))
	m.retries = int(med(func(r fanoutResult) float64 { return float64(r.retries) }))
	secs := m.window.Seconds()
	perViewer := med(fanoutResult.perViewer)
	m.idleCPU = med(func(r fanoutResult) float64 { return r.idleCPU })
	m.cpu = m.idleCPU + perViewer/1000*float64(m.joined)*secs
	m.selfCPU = med(func(r fanoutResult) float64 { return r.selfCPU })
	m.rssPeak = med(func(r fanoutResult) float64 { return r.rssPeak })
	m.hwm = med(func(r fanoutResult) float64 { return r.hwm })
	m.packets = med(func(r fanoutResult) float64 { return r.packetRate() }) * float64(m.joined) * secs
	m.lost = med(func(r fanoutResult) float64 { return r.lost })
	m.keyFirst = int(med(func(r fanoutResult) float64 { return float64(r.keyFirst) }))
	for _, r := range ok {
		m.firstKey = append(m.firstKey, r.firstKey...)
	}
	slices.Sort(m.firstKey)
	// Per packet, from its own median.
	perPacket := med(fanoutResult.perPacket)
	if m.packets > 0 && perPacket > 0 {
		m.packets = m.netCPU() / perPacket * 1e6
	}
	return m
}

// writeFanoutReport prints the medians, each run and the ratios the goals
// use, as Markdown.
func writeFanoutReport(w io.Writer, s fanoutSettings, results []fanoutResult) {
	audio := "with G.711 audio"
	if !s.audio {
		audio = "video only"
	}
	fmt.Fprintf(w, "One camera: 1920x1080 H.264 25 fps, 2 Mbit/s, GOP %s, RTP packets up to %d bytes, %s. "+
		"Windows of %s; viewers joined over %s, then %s before measuring. %d run(s).\n\n",
		s.gop, s.packetSize, audio, s.duration, s.join, s.settle, s.runs)
	groups := map[string][]fanoutResult{}
	var keys []string
	for _, r := range results {
		k := fmt.Sprintf("%s/%d", r.server, r.n)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	// Medians, by viewer count, servers in the order measured.
	slices.SortStableFunc(keys, func(a, b string) int { return groups[a][0].n - groups[b][0].n })
	medians := map[string]fanoutResult{}
	fmt.Fprintln(w, "Medians:")
	fmt.Fprintln(w)
	writeRow(w, fanoutHeader())
	writeRow(w, slices.Repeat([]string{"---"}, len(fanoutHeader())))
	for _, k := range keys {
		m := medianFanout(groups[k])
		medians[k] = m
		writeRow(w, fanoutRow(m, ""))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each run:")
	fmt.Fprintln(w)
	writeRow(w, fanoutHeader())
	writeRow(w, slices.Repeat([]string{"---"}, len(fanoutHeader())))
	for _, r := range results {
		writeRow(w, fanoutRow(r, fmt.Sprintf("(run %d)", r.run)))
	}
	fmt.Fprintln(w)
	for _, n := range s.viewers {
		sky, okS := medians[fmt.Sprintf("skywatch/%d", n)]
		for _, other := range []string{"mediamtx", "go2rtc"} {
			o, okO := medians[fmt.Sprintf("%s/%d", other, n)]
			if !okS || !okO || sky.err != "" || o.err != "" {
				continue
			}
			fmt.Fprintf(w, "- %d viewers, Skywatch/%s: CPU per viewer %.2fx, CPU per packet %.2fx, peak memory %.2fx; first keyframe %s vs %s\n",
				n, other, ratio(sky.perViewer(), o.perViewer()), ratio(sky.perPacket(), o.perPacket()), ratio(sky.rssPeak, o.rssPeak),
				keyString(sky.medianKey()), keyString(o.medianKey()))
		}
	}
	fmt.Fprintln(w, "\nGoals (Skywatch/MediaMTX): CPU per viewer at most 0.5x at 50 and 200 viewers, peak memory at most 0.3x at 50.")
	fmt.Fprintln(w, "The viewers and the camera run in the bench process, on the same cores as the server (bench CPU-s).")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// keyString shows a first-keyframe time in milliseconds.
func keyString(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}
