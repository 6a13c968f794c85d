package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// runInNetns runs test name again in a network namespace of its own, with
// the screenshots directory (SKYWATCH_TEST_SCREENSHOTS, else a temporary
// one), and fails when it fails there.
func runInNetns(t *testing.T, chromium, name string) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is required for the browser test: %v", err)
	}
	shots := os.Getenv("SKYWATCH_TEST_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots go to %s", shots)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1", "-test.timeout=4m")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1", "SKYWATCH_TEST_CHROMIUM="+chromium, "SKYWATCH_TEST_SCREENSHOTS="+shots)
	out, err := cmd.CombinedOutput()
	t.Logf("inside the network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("browser test in network namespace: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatal("browser test did not pass inside the network namespace")
	}
}

// loopbackOnly brings loopback up in the new namespace and checks that
// nothing else is up.
func loopbackOnly(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback == 0 && ifc.Flags&net.FlagUp != 0 {
			t.Fatalf("network namespace has a non-loopback interface up: %s", ifc.Name)
		}
	}
}

// browserRig is one Chromium with one console tab on the demo, shared by
// the subtests of a browser test, and the record of everything the tab
// did.
type browserRig struct {
	ctx   context.Context
	demo  *demoRig
	port  string // DevTools
	page  *cdpPage
	rec   *sessionRecord
	shots string
}

// startBrowser starts Chromium on a tab that records its session and
// opens the console of demo; everything stops when t ends.
func startBrowser(t *testing.T, chromium string, demo *demoRig, shots string) *browserRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	userData := t.TempDir()
	browser := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--allow-loopback-in-peer-connection",
		// Without this Chromium hides host candidates behind mDNS names, which
		// nothing resolves in a namespace that has only loopback.
		"--disable-features=WebRtcHideLocalIpsWithMdns", "--autoplay-policy=no-user-gesture-required",
		"--window-size=1600,1000", "--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1",
		"--user-data-dir="+userData, "about:blank")
	browser.Stdout, browser.Stderr = io.Discard, io.Discard
	if err := browser.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		_ = browser.Process.Kill()
		_ = browser.Wait()
	})
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	port, err := devToolsPort(sctx, userData)
	if err != nil {
		t.Fatal(err)
	}
	b := &browserRig{ctx: ctx, demo: demo, port: port, rec: newSessionRecord(), shots: shots}
	if b.page, err = openPage(sctx, port, b.rec.onEvent); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.page.close)
	for _, domain := range []string{"Runtime.enable", "Log.enable", "Page.enable", "Network.enable"} {
		if err := b.page.call(sctx, domain, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	var fetcher sync.WaitGroup
	fetcher.Add(1)
	go func() {
		defer fetcher.Done()
		b.rec.fetchBodies(ctx, b.page)
	}()
	t.Cleanup(func() {
		cancel()
		fetcher.Wait()
	})
	// Before anyone logs in, the page asks who is logged in: 401.
	b.rec.expectFailure("/api/me", 401)
	if err := b.page.navigate(sctx, demo.base+"/"); err != nil {
		t.Fatal(err)
	}
	return b
}

// eval evaluates expr in the console tab into out (nil: ignored).
func (b *browserRig) eval(t *testing.T, expr string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := b.page.eval(ctx, expr, out); err != nil {
		b.shot(t, t.Name()+"-failed")
		t.Fatal(err)
	}
}

// waitJS waits up to timeout for the expression to be true, polling.
func (b *browserRig) waitJS(t *testing.T, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		var ok bool
		err := b.page.eval(ctx, expr, &ok) // may throw until the page has what it needs
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.shot(t, t.Name()+"-failed")
			t.Fatalf("%s did not happen within %v (last evaluation: %v)", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shot saves a screenshot named name.png in the screenshots directory.
func (b *browserRig) shot(t *testing.T, name string) {
	t.Helper()
	if b.shots == "" {
		return
	}
	path := filepath.Join(b.shots, strings.NewReplacer("/", "-", " ", "_").Replace(name)+".png")
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := b.page.screenshot(ctx, path); err != nil {
		t.Errorf("screenshot %s: %v", path, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// click clicks the element that the selector finds.
func (b *browserRig) click(t *testing.T, selector string) {
	t.Helper()
	var ok bool
	b.eval(t, fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) return false; e.click(); return true; })()`, js(selector)), &ok)
	if !ok {
		b.shot(t, t.Name()+"-failed")
		t.Fatalf("nothing to click at %s", selector)
	}
}

// loginAs logs user in through the login form, logging out whoever is
// logged in first, and waits for the console.
func (b *browserRig) loginAs(t *testing.T, user string) {
	t.Helper()
	var current string
	b.eval(t, `window.Skywatch && Skywatch.me ? Skywatch.me.username : ''`, &current)
	if current == user {
		return
	}
	if current != "" {
		b.logout(t)
	}
	b.submitLogin(t, user, demoConsolePassword)
	b.waitJS(t, "the console for "+user, fmt.Sprintf(`!!Skywatch.me && Skywatch.me.username === %s &&
		!document.getElementById('app').hidden && !!document.querySelector('[data-testid=tab-wall]')`, js(user)), 15*time.Second)
}

// submitLogin fills the login form and submits it.
func (b *browserRig) submitLogin(t *testing.T, user, password string) {
	t.Helper()
	b.waitJS(t, "the login form", `!document.getElementById('login').hidden &&
		!document.querySelector('[data-testid=login-submit]').disabled`, 15*time.Second)
	b.eval(t, fmt.Sprintf(`(() => {
		document.querySelector('[data-testid=login-username]').value = %s;
		document.querySelector('[data-testid=login-password]').value = %s;
		document.querySelector('[data-testid=login-submit]').click();
	})()`, js(user), js(password)), nil)
}

// logout logs out with the header's button.
func (b *browserRig) logout(t *testing.T) {
	t.Helper()
	b.click(t, "[data-testid=logout]")
	b.waitJS(t, "the login form after logout", `!Skywatch.me && !document.getElementById('login').hidden`, 10*time.Second)
}

// setLang switches the language with the language select.
func (b *browserRig) setLang(t *testing.T, lang string) {
	t.Helper()
	b.eval(t, fmt.Sprintf(`(() => { const s = document.querySelector('[data-testid=lang-select]');
		s.value = %s; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, js(lang)), nil)
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
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
