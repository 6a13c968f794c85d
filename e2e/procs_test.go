package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Processes that the alarm no-loss tests start: Skywatch itself, built
// once per run so that a SIGKILL is real, and private Mosquitto and Redis
// servers on free ports, so that no machine-wide service is needed or
// disturbed.

// procStopWait bounds a polite stop before a process is killed.
const procStopWait = 20 * time.Second

// requireProgram returns the path of an outside program: the test is
// skipped without it, and fails under CI, where .ci/run installs it.
func requireProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	// Debian installs mosquitto in /usr/sbin, which a non-root PATH lacks.
	if path, err := exec.LookPath(filepath.Join("/usr/sbin", name)); err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on the PATH under CI (Debian package %s)", name, pkg)
	}
	t.Skipf("%s is not on the PATH (Debian package %s): skipping", name, pkg)
	return ""
}

// moduleRoot is the directory of go.mod above the test's working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildSkywatch builds cmd/skywatch into a directory removed after t.
func buildSkywatch(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build skywatch: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "skywatch")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/skywatch")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/skywatch: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// servers that must come back on the same port after a restart.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// waitListening waits until something accepts TCP connections at addr,
// or p exits.
func waitListening(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if p.exited() {
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.name, addr, p.exitErr(), p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %s: %v\n%s", p.name, addr, err, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childEnv is the environment of a child process without Skywatch's own
// variables, which would override its config file.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKYWATCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// proc is a child process with its output kept in memory. The test's
// cleanup kills it and waits for it.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // why it exited; read after done
}

// startProc starts path with args.
func startProc(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{
		name: name,
		cmd:  exec.Command(path, args...),
		out:  &syncBuffer{},
		done: make(chan struct{}),
	}
	p.cmd.Env = childEnv()
	// exec copies the output in its own goroutines, which Wait waits for.
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s (last 6 KiB):\n%s", name, tail(p.out.String(), 6<<10))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitErr is why the process exited, once it has.
func (p *proc) exitErr() error {
	if !p.exited() {
		return nil
	}
	return p.err
}

// kill sends SIGKILL and waits until the process is gone. It is
// idempotent.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop asks the process to end (SIGTERM) and waits, killing it if it
// does not end in time; it returns an error if it had to, or if the
// process exited with an error.
func (p *proc) stop() error {
	if p.exited() {
		return fmt.Errorf("%s had exited already: %v", p.name, p.err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.name, p.err)
		}
		return nil
	case <-time.After(procStopWait):
		p.kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.name, procStopWait)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// startMosquitto starts a private Mosquitto on a free port and returns its
// URL. It queues without limit for a disconnected persistent session (the
// default, 1000, would drop QoS 1 messages of a flood while Skywatch is
// down) and keeps nothing on disk: only Skywatch is killed, never it.
func startMosquitto(t *testing.T) string {
	t.Helper()
	return startMosquittoWith(t, mosquittoOptions{})
}

// mosquittoOptions are what a private Mosquitto may add to the settings of
// startMosquitto.
type mosquittoOptions struct {
	// persistence keeps sessions and their queued messages in a file (in
	// the test's directory), as production brokers should.
	persistence bool
	// noDelay turns Nagle's algorithm off (set_tcp_nodelay), as
	// docs/benchmarks.md advises for deployments.
	noDelay bool
}

// startMosquittoWith starts a private Mosquitto with o on a free port and
// returns its URL.
func startMosquittoWith(t *testing.T, o mosquittoOptions) string {
	t.Helper()
	bin := requireProgram(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 100
persistence %t
connection_messages false
log_dest stderr
log_type error
log_type warning
`, port, o.persistence)
	if o.persistence {
		conf += "persistence_location " + dir + "/\n"
	}
	if o.noDelay {
		conf += "set_tcp_nodelay true\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "mosquitto", bin, "-c", path)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, p, addr)
	return "tcp://" + addr
}

// redisServer is a private redis-server with an append-only file, which
// can be stopped and started again on the same port and directory.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	p    *proc
}

// startRedis starts a private Redis on a free port.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{
		t:    t,
		bin:  requireProgram(t, "redis-server", "redis-server"),
		dir:  t.TempDir(),
		port: freePort(t),
	}
	r.start()
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// url is the Redis URL of database 0.
func (r *redisServer) url() string { return "redis://" + r.addr() + "/0" }

// start starts (or starts again) the server.
func (r *redisServer) start() {
	r.t.Helper()
	r.p = startProc(r.t, "redis-server", r.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--dir", r.dir, "--appendonly", "yes", "--save", "", "--daemonize", "no")
	waitListening(r.t, r.p, r.addr())
	// Listening is not answering: Redis says LOADING while it reads its
	// append-only file.
	rdb := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(failAfter)
	for {
		err := rdb.Ping(r.t.Context()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not answer PING within %v: %v", failAfter, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop stops the server politely (SIGTERM) and waits for it to exit.
func (r *redisServer) stop() {
	r.t.Helper()
	if err := r.p.stop(); err != nil {
		r.t.Fatal(err)
	}
}

// skywatchProc runs the skywatch binary with one config file, and starts
// it again after it was killed or stopped.
type skywatchProc struct {
	t      *testing.T
	bin    string
	config string
	name   string // in the process's name in logs, when several run
	client *http.Client

	p    *proc
	base string // http://host:port of the current run
	mqtt string // the embedded broker's host:port (or the external one's)
	runs int
}

func newSkywatchProc(t *testing.T, bin, config string) *skywatchProc {
	return &skywatchProc{
		t:      t,
		bin:    bin,
		config: config,
		// No idle connections: each run's port differs, and none may be
		// left behind at the end of the test.
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}, Jar: newJar()},
	}
}

// start runs skywatch serve and waits for its "skywatch serving" line,
// which carries the HTTP address the OS chose.
func (s *skywatchProc) start() {
	s.t.Helper()
	s.launch()
	s.waitServing()
}

// launch starts skywatch serve without waiting, so that several can start
// together; waitServing waits for it.
func (s *skywatchProc) launch() {
	s.t.Helper()
	s.runs++
	name := fmt.Sprintf("skywatch (run %d)", s.runs)
	if s.name != "" {
		name = fmt.Sprintf("skywatch %s (run %d)", s.name, s.runs)
	}
	s.p = startProc(s.t, name, s.bin, "serve", "-config", s.config)
}

// waitServing waits for the current run's "skywatch serving" line, which
// carries the HTTP address the OS chose.
func (s *skywatchProc) waitServing() {
	s.t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		for line := range strings.Lines(s.p.out.String()) {
			if !strings.Contains(line, `msg="skywatch serving"`) {
				continue
			}
			s.base = strings.TrimSuffix(logField(line, "http"), "/")
			s.mqtt = logField(line, "mqtt")
			if !strings.HasPrefix(s.base, "http://") {
				s.t.Fatalf("no http address in %q", line)
			}
			return
		}
		if s.p.exited() {
			s.t.Fatalf("%s exited before serving: %v\n%s", s.p.name, s.p.err, s.p.out.String())
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not log \"skywatch serving\" within %v\n%s", s.p.name, failAfter, s.p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logField returns the value of key=value in a text log line.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// kill kills the current run with SIGKILL and waits until it is gone.
func (s *skywatchProc) kill() { s.p.kill() }

// stop ends the current run with SIGTERM, as an operator would.
func (s *skywatchProc) stop() {
	s.t.Helper()
	if err := s.p.stop(); err != nil {
		s.t.Fatal(err)
	}
}

// get fetches a path of the current run, logging in as the operator of
// writeConfig when the API asks for it (a restart logs everyone out).
func (s *skywatchProc) get(ctx context.Context, path string) (int, string, error) {
	code, body, err := s.fetch(ctx, path)
	if err != nil || code != http.StatusUnauthorized {
		return code, body, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/api/login",
		strings.NewReader(`{"username":"`+e2eOperator+`","password":"`+e2eOperatorPassword+`"}`))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", fmt.Errorf("login as %s: %s", e2eOperator, resp.Status)
	}
	return s.fetch(ctx, path)
}

func (s *skywatchProc) fetch(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady waits for /readyz to answer 200: the intake is subscribed at
// its broker (or its broker serves) and the store takes writes.
func (s *skywatchProc) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(failAfter)
	for {
		code, body, err := s.get(s.t.Context(), "/readyz")
		if err == nil && code == http.StatusOK {
			return
		}
		if s.p.exited() {
			s.t.Fatalf("%s exited: %v", s.p.name, s.p.err)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready within %v: %d %q %v", s.p.name, failAfter, code, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one unlabelled metric of the current run from /metrics.
func (s *skywatchProc) metric(ctx context.Context, name string) (float64, error) {
	code, body, err := s.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: status %d", code)
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics: no %s", name)
}

func newJar() http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err) // cookiejar.New fails only with a bad public suffix list
	}
	return jar
}
