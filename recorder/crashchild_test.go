package recorder

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skywatch/skywatch/ingest"
)

// A crash test runs one of this binary's TestChild... tests in a process
// of its own, which records from a camera into a directory, and kills it
// without warning.

// childSource is, in a child process, its directory and a manager pulling
// the camera named in env as cam1 (env holds "dir|camera URL"); the child
// is skipped when env is not set (a test run of its own).
func childSource(t *testing.T, env, runBy string) (string, *ingest.Manager) {
	arg := os.Getenv(env)
	if arg == "" {
		t.Skip("run by " + runBy)
	}
	dir, url, _ := strings.Cut(arg, "|")
	cfg := ingest.Config{Cameras: []ingest.CameraConfig{{ID: "cam1", URL: url, Transport: "tcp"}}}
	return dir, startSource(t, cfg, slog.New(slog.DiscardHandler))
}

// crashChild is a child process running a TestChild... test.
type crashChild struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	killed bool
}

// startCrashChild runs test in a child process with env set to dir and the
// camera's URL; the child is killed at the end of the test if it is still
// running.
func startCrashChild(t *testing.T, test, env, dir, url string) *crashChild {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c := &crashChild{cmd: exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")}
	c.cmd.Env = append(os.Environ(), env+"="+dir+"|"+url)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.killed {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// kill sends the child SIGKILL, waits for it to end and returns when it
// was killed.
func (c *crashChild) kill(t *testing.T) time.Time {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	_ = c.cmd.Wait()
	c.killed = true
	return at
}
