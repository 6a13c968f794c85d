package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procRSS is a process's resident memory in bytes (VmRSS), or -1.
func procRSS(pid int) float64 { return procStatusKB(pid, "VmRSS") }

// procStatusKB reads one kB field of /proc/PID/status (VmRSS, VmHWM) in
// bytes, or -1.
func procStatusKB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return -1
			}
			return kb * 1024
		}
	}
	return -1
}

// procIO reads a process's write system calls and the bytes it sent to
// the block device (/proc/PID/io syscw and write_bytes); -1 unknown.
func procIO(pid int) (syscw, writeBytes int64) {
	syscw, writeBytes = -1, -1
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "syscw":
			syscw = n
		case "write_bytes":
			writeBytes = n
		}
	}
	return
}

// straceCount attaches strace -c to pid for d and returns its summary of
// the write and sync calls: "N write/s, N fsync/s ...".
func straceCount(ctx context.Context, pid int, d time.Duration, dir string) (summary string, writes, fsyncs, writeSecs float64, err error) {
	out := filepath.Join(dir, "strace.txt")
	cmd := exec.CommandContext(ctx, "strace", "-f", "-c", "-o", out,
		"-e", "trace=write,writev,pwrite64,fsync,fdatasync,sync_file_range,openat,rename,renameat,ftruncate",
		"-p", strconv.Itoa(pid))
	if err := cmd.Start(); err != nil {
		return "", 0, 0, 0, fmt.Errorf("strace: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	// strace writes its summary when interrupted.
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return "", 0, 0, 0, err
	}
	// Lines: % time, seconds, usecs/call, calls, [errors,] syscall.
	var parts []string
	secs := d.Seconds()
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		name := f[len(f)-1]
		calls, err1 := strconv.ParseFloat(f[3], 64)
		sec, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || name == "total" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f/s", name, calls/secs))
		switch name {
		case "write", "writev", "pwrite64":
			writes += calls / secs
			writeSecs += sec
		case "fsync", "fdatasync", "sync_file_range":
			fsyncs += calls / secs
		}
	}
	if len(parts) == 0 {
		return "no calls", 0, 0, 0, nil
	}
	return strings.Join(parts, ", "), writes, fsyncs, writeSecs, nil
}

// exportResult is one timed export.
type exportResult struct {
	camera      string
	span        time.Duration
	status      int
	ttfb, total time.Duration
	bytes       int64
	err         string
}

func (e exportResult) String() string {
	if e.err != "" {
		return fmt.Sprintf("export %s of %s: %s", roundDur(e.span), e.camera, e.err)
	}
	return fmt.Sprintf("export %s of %s: first byte %s, total %s, %.1f MB", roundDur(e.span), e.camera,
		roundDur(e.ttfb), roundDur(e.total), float64(e.bytes)/1e6)
}

// timeExport GETs an export and times its first body byte and its end.
func timeExport(ctx context.Context, client *http.Client, camera string, span time.Duration, url string) exportResult {
	res := exportResult{camera: camera, span: span}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		res.err = err.Error()
		return res
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res.err = err.Error()
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		res.err = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return res
	}
	var first [1]byte
	if _, err := io.ReadFull(resp.Body, first[:]); err != nil {
		res.err = "no body: " + err.Error()
		return res
	}
	res.ttfb = time.Since(start)
	n, err := io.Copy(io.Discard, resp.Body)
	res.total, res.bytes = time.Since(start), n+1
	if err != nil && !errors.Is(err, io.EOF) {
		res.err = "body: " + err.Error()
	}
	return res
}
