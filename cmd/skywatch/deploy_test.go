package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies runs systemd-analyze verify on deploy/skywatch.service
// where systemd is installed. verify wants the Exec binaries to exist, so the
// binary is built into a temporary directory and the unit's path rewritten in
// a temporary copy. Warnings that name the unit (an unknown key, a bad value:
// systemd ignores those and starts anyway, less hardened) fail the test too.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "skywatch.service"))
	if err != nil {
		t.Fatalf("read unit: %v", err)
	}
	const installed = "/usr/local/bin/skywatch"
	if !strings.Contains(string(unit), "ExecStart="+installed+" serve ") ||
		!strings.Contains(string(unit), "ExecStartPre="+installed+" check ") {
		t.Fatalf("unit does not run %s check before %s serve", installed, installed)
	}
	// systemctl reload must send SIGHUP, which serve takes as "reload the config".
	if !strings.Contains(string(unit), "\nExecReload=/bin/kill -HUP $MAINPID\n") {
		t.Fatal("unit has no ExecReload=/bin/kill -HUP $MAINPID: systemctl reload skywatch would fail")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "skywatch")
	// The flags of .ci/run's static build, so that this one comes from the cache.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	copyPath := filepath.Join(dir, "skywatch.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), installed, bin)), 0o644); err != nil {
		t.Fatalf("write unit copy: %v", err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Other units on the machine may draw warnings of their own; only ours count.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, copyPath) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}
