package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"runtime"
	"slices"
	"sync"
	"time"
)

// latencies are request latencies; p gives percentiles.
type latencies []time.Duration

func (l latencies) p(pct int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*pct/100)]
}

func (l latencies) String() string {
	if len(l) == 0 {
		return "no answers"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s (%d requests)", roundDur(l.p(50)), roundDur(l.p(99)), roundDur(l.p(100)), len(l))
}

// consoleProber asks Skywatch's console what an operator's page would,
// one request after the other, and keeps the latencies of the answers.
// Requests before the server listens are not counted; the first answer
// of /healthz marks it up.
type consoleProber struct {
	base   string
	client *http.Client

	mu          sync.Mutex
	up          time.Duration
	health, api latencies
}

func newConsoleProber(base string) *consoleProber {
	jar, _ := cookiejar.New(nil)
	return &consoleProber{base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (p *consoleProber) run(ctx context.Context, start time.Time) {
	loggedIn := false
	for ctx.Err() == nil {
		t := time.Now()
		code, err := p.get(ctx, "/healthz")
		if err != nil {
			if p.upSince() == 0 {
				select { // not listening yet
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			continue
		}
		d := time.Since(t)
		p.mu.Lock()
		if p.up == 0 && code == http.StatusOK {
			p.up = time.Since(start)
		}
		p.health = append(p.health, d)
		p.mu.Unlock()
		if !loggedIn {
			loggedIn = p.login(ctx)
			continue
		}
		t = time.Now()
		code, err = p.get(ctx, "/api/events?limit=10")
		if err != nil {
			continue
		}
		if code == http.StatusUnauthorized {
			loggedIn = false
			continue
		}
		p.mu.Lock()
		p.api = append(p.api, time.Since(t))
		p.mu.Unlock()
	}
}

func (p *consoleProber) upSince() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

func (p *consoleProber) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func (p *consoleProber) login(ctx context.Context) bool {
	_, err := benchLogin(ctx, p.client, p.base)
	return err == nil
}

func (p *consoleProber) results() (up time.Duration, health, api latencies) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up, slices.Clone(p.health), slices.Clone(p.api)
}

// waitHealthy waits for /healthz to answer 200, or the process to end.
func waitHealthy(ctx context.Context, base string, exited <-chan struct{}, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/healthz not ready within %s", wait)
		}
		select {
		case <-exited:
			return fmt.Errorf("skywatch exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tokenOf is a simulated device's password used as its token, and the
// token's SHA-256 for token_sha256.
func tokenOf(password string) (token, sum string) {
	h := sha256.Sum256([]byte(password))
	return password, hex.EncodeToString(h[:])
}

func numCPU() int { return runtime.NumCPU() }
