package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The browser test runs the demo and a real Chromium together inside a
// private network namespace that has only loopback, so that no ICE candidate
// can point anywhere else. The test re-executes its own binary under
// `unshare --net`; the child brings loopback up and does the work.
const inNetnsEnv = "SKYWATCH_TEST_IN_NETNS"

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SKYWATCH_TEST_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI: set SKYWATCH_TEST_CHROMIUM or install chromium")
	}
	t.Skip("chromium not found; set SKYWATCH_TEST_CHROMIUM to run the browser test")
	return ""
}

func TestChromiumPlaysDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium := chromiumPath(t)
	if os.Getenv(inNetnsEnv) == "" {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Fatalf("unshare (util-linux) is required for the browser test: %v", err)
		}
		shots := os.Getenv("SKYWATCH_TEST_SCREENSHOTS")
		if shots == "" {
			shots = t.TempDir()
		}
		cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run=^TestChromiumPlaysDemo$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), inNetnsEnv+"=1", "SKYWATCH_TEST_CHROMIUM="+chromium, "SKYWATCH_TEST_SCREENSHOTS="+shots)
		out, err := cmd.CombinedOutput()
		t.Logf("inside the network namespace:\n%s", out)
		if err != nil {
			t.Fatalf("browser test in network namespace: %v", err)
		}
		if !bytes.Contains(out, []byte("--- PASS: TestChromiumPlaysDemo")) {
			t.Fatal("browser test did not pass inside the network namespace")
		}
		return
	}
	runBrowserCheck(t, chromium, os.Getenv("SKYWATCH_TEST_SCREENSHOTS"))
}

func runBrowserCheck(t *testing.T, chromium, shots string) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback == 0 && ifc.Flags&net.FlagUp != 0 {
			t.Fatalf("network namespace has a non-loopback interface up: %s", ifc.Name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The demo, in-process, on ports the OS picks.
	demoCtx, stopDemo := context.WithCancel(ctx)
	var demoOut syncBuffer
	demoDone := make(chan int, 1)
	go func() {
		demoDone <- run(demoCtx, []string{"demo", "-http", "127.0.0.1:0", "-webrtc-udp", "127.0.0.1:0", "-webrtc-tcp", "127.0.0.1:0"}, &demoOut, &demoOut)
	}()
	defer func() {
		stopDemo()
		select {
		case code := <-demoDone:
			if code != 0 {
				t.Errorf("demo exited with %d", code)
			}
		case <-time.After(20 * time.Second):
			t.Error("demo did not stop within 20 s of its context ending")
		}
	}()
	consoleURL := waitForConsoleURL(ctx, t, &demoOut)
	t.Logf("console at %s", consoleURL)

	userData := t.TempDir()
	browser := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--allow-loopback-in-peer-connection",
		// Without this Chromium hides host candidates behind mDNS names, which
		// nothing resolves in a namespace that has only loopback.
		"--disable-features=WebRtcHideLocalIpsWithMdns", "--autoplay-policy=no-user-gesture-required",
		"--window-size=1280,800", "--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1", "--user-data-dir="+userData, "about:blank")
	browser.Stdout, browser.Stderr = io.Discard, io.Discard
	if err := browser.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	defer func() {
		_ = browser.Process.Kill()
		_ = browser.Wait()
	}()
	port, err := devToolsPort(ctx, userData)
	if err != nil {
		t.Fatal(err)
	}
	page, err := openPage(ctx, port, consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	defer page.close()
	page.logf = t.Logf
	loginConsole(ctx, t, page, demoOut.String(), shots)

	// Every camera tile must show moving video: frames decoded and time advancing.
	const probe = `(() => {
		const vs = [...document.querySelectorAll('video')];
		return vs.map(v => ({w: v.videoWidth, h: v.videoHeight, t: v.currentTime,
			frames: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0}));
	})()`
	type videoState struct {
		W, H   int
		T      float64
		Frames int
	}
	start := time.Now()
	pollUntil := start.Add(45 * time.Second)
	var first []videoState
	var firstPicture time.Duration
	for {
		var vs []videoState
		if err := page.eval(ctx, probe, &vs); err != nil {
			t.Fatal(err)
		}
		playing := len(vs) >= 4
		for _, v := range vs {
			if v.W == 0 || v.Frames == 0 {
				playing = false
			}
		}
		if playing && first == nil {
			first = vs
			firstPicture = time.Since(start)
		}
		if first != nil && time.Since(start) > firstPicture+3*time.Second {
			moving := true
			for i, v := range vs {
				if i < len(first) && (v.Frames <= first[i].Frames || v.T <= first[i].T) {
					moving = false
				}
			}
			if moving {
				t.Logf("%d videos playing; all showed a picture %v after the page opened; states %+v", len(vs), firstPicture.Round(10*time.Millisecond), vs)
				break
			}
		}
		if time.Now().After(pollUntil) {
			if shots != "" {
				_ = page.screenshot(ctx, filepath.Join(shots, "console-failed.png"))
			}
			t.Fatalf("videos did not play within 45 s: last states %+v\ndemo output:\n%s", vs, demoOut.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if shots != "" {
		path := filepath.Join(shots, "console.png")
		if err := page.screenshot(ctx, path); err != nil {
			t.Errorf("screenshot: %v", err)
		} else {
			t.Logf("screenshot saved to %s", path)
		}
	}

	waitFor(ctx, t, page, "four tiles playing", `document.querySelectorAll('[data-testid=tile][data-state=playing]').length >= 4`, shots, "console-failed.png")
	// The console speaks Chinese first; English is one switch away.
	var tab string
	if err := page.eval(ctx, `document.querySelector('[data-testid=tab-wall]').textContent`, &tab); err != nil || tab != "视频墙" {
		t.Errorf("wall tab before the switch: %q, %v", tab, err)
	}
	setLang := `(() => { const s = document.querySelector('[data-testid=lang-select]');
		s.value = 'en'; s.dispatchEvent(new Event('change')); return true; })()`
	var ignored bool
	if err := page.eval(ctx, setLang, &ignored); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, "the console in English", `document.querySelector('[data-testid=tab-wall]').textContent === 'Video wall' &&
		document.querySelector('[data-testid=tile]').querySelector('.tile-state').textContent === 'Live'`, shots, "console-failed.png")

	checkPatrolPage(ctx, t, port, consoleURL+"patrol/", demoOut.String(), shots)
}

// loginConsole logs in to the console as the demo's county supervisor,
// first with a wrong password (refused with a message).
func loginConsole(ctx context.Context, t *testing.T, page *cdpPage, demoOut, shots string) {
	t.Helper()
	m := regexp.MustCompile(`Console logins \(password (\S+)\): .*\b(\w+) \(county supervisor\)`).FindStringSubmatch(demoOut)
	if m == nil {
		t.Fatalf("the demo printed no console login:\n%s", demoOut)
	}
	password, user := m[1], m[2]
	login := func(user, pass string) string {
		return fmt.Sprintf(`(() => { const q = (id) => document.querySelector('[data-testid=' + id + ']');
			q('login-username').value = %q; q('login-password').value = %q; q('login-submit').click(); return true; })()`, user, pass)
	}
	waitFor(ctx, t, page, "the console's login form", `!document.getElementById('login').hidden`, shots, "console-failed.png")
	var ignored bool
	if err := page.eval(ctx, login(user, "not-"+password), &ignored); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, "a refused console login", `(() => { const e = document.querySelector('[data-testid=login-error]');
		return !e.hidden && e.textContent.trim() !== ''; })()`, shots, "console-failed.png")
	if err := page.eval(ctx, login(user, password), &ignored); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, page, "the console after login", `!document.getElementById('app').hidden &&
		document.querySelectorAll('[data-testid=tile]').length >= 4`, shots, "console-failed.png")
}

// waitFor evaluates expr until it is true, for 20 s; then it saves a
// screenshot as shot (in shots, when set) and fails.
func waitFor(ctx context.Context, t *testing.T, page *cdpPage, what, expr, shots, shot string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Until the page has loaded, the expression may throw.
		var ok bool
		err := page.eval(ctx, expr, &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("last evaluation: %v", err)
			if shots != "" {
				_ = page.screenshot(ctx, filepath.Join(shots, shot))
			}
			t.Fatalf("%s did not happen within 20 s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkPatrolPage logs in to the patrol page on a phone-sized screen, first
// with a wrong password (refused with a message), then as the demo unit the
// demo printed, and waits for the unit's status to show.
func checkPatrolPage(ctx context.Context, t *testing.T, port, url, demoOut, shots string) {
	m := regexp.MustCompile(`log in as (\S+), password (\S+)\)`).FindStringSubmatch(demoOut)
	if m == nil {
		t.Fatalf("the demo printed no patrol login:\n%s", demoOut)
	}
	unit, password := m[1], m[2]
	page, err := openPage(ctx, port, url)
	if err != nil {
		t.Fatal(err)
	}
	defer page.close()
	page.logf = t.Logf
	if err := page.callRetry(ctx, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 400, "height": 800, "deviceScaleFactor": 1, "mobile": true}, nil); err != nil {
		t.Fatal(err)
	}
	waitJS := func(what, expr string) {
		t.Helper()
		waitFor(ctx, t, page, "patrol page: "+what, expr, shots, "patrol-failed.png")
	}
	login := func(user, pass string) string {
		return fmt.Sprintf(`(() => { const f = document.getElementById('login');
			f.username.value = %q; f.password.value = %q; f.requestSubmit(); return true; })()`, user, pass)
	}
	waitJS("the login form", `!document.getElementById('login').hidden`)
	var ignored bool
	if err := page.eval(ctx, login(unit, "not-"+password), &ignored); err != nil {
		t.Fatal(err)
	}
	waitJS("a refused login", `(() => { const e = document.getElementById('login-error');
		return !e.hidden && e.textContent.trim() !== ''; })()`)
	if err := page.eval(ctx, login(unit, password), &ignored); err != nil {
		t.Fatal(err)
	}
	waitJS("the unit's page", fmt.Sprintf(`!document.getElementById('app').hidden &&
		document.getElementById('unit-name').textContent.includes(%q) &&
		document.getElementById('unit-status').textContent.trim() !== ''`, unit))
	if shots != "" {
		path := filepath.Join(shots, "patrol.png")
		if err := page.screenshot(ctx, path); err != nil {
			t.Errorf("screenshot: %v", err)
		} else {
			t.Logf("patrol page screenshot saved to %s", path)
		}
	}
}

// waitForConsoleURL reads the demo's output until it prints the console URL.
func waitForConsoleURL(ctx context.Context, t *testing.T, out *syncBuffer) string {
	t.Helper()
	for {
		for _, line := range strings.Split(out.String(), "\n") {
			if i := strings.Index(line, "http://127.0.0.1:"); i >= 0 {
				return strings.Fields(line[i:])[0]
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("demo printed no console URL:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
