package alarms

import (
	"errors"
	"testing"
	"time"
)

// The back-off starts after the free failures, doubles, is capped (short
// for a user name everywhere), and is forgotten after forget_after.
func TestAuthLimiterDelays(t *testing.T) {
	cfg := AuthConfig{PairFailures: 2, AddressFailures: 100, UserFailures: 3, UserMaxDelay: 4 * time.Second}
	cfg.setDefaults()
	l := newAuthLimiter(cfg)
	now := time.Unix(1e9, 0)
	l.now = func() time.Time { return now }
	fail := func(user, addr string) {
		if by := l.blocked(user, addr); by != "" {
			t.Fatalf("%s at %s: blocked by %s before failing", user, addr, by)
		}
		l.failed(user, addr)
	}
	fail("d", "a")
	fail("d", "a") // second failure: 1 s
	if by := l.blocked("d", "a"); by != limitPair {
		t.Fatalf("after 2 failures: %q, want %q", by, limitPair)
	}
	now = now.Add(time.Second)
	fail("d", "a") // third: 2 s, and the user name's first back-off: 1 s
	if by := l.blocked("d", "b"); by != limitUser {
		t.Fatalf("user name after 3 failures: %q", by)
	}
	now = now.Add(time.Second)
	if by := l.blocked("d", "a"); by != limitPair {
		t.Fatalf("pair 1 s into its 2 s back-off: %q", by)
	}
	now = now.Add(time.Second)
	for range 20 { // the delays double up to their caps
		l.failed("d", "c")
		now = now.Add(4 * time.Second)
	}
	if b := l.users["d"]; b.until.Sub(b.last) != 4*time.Second {
		t.Errorf("user back-off %v, want the 4 s cap", b.until.Sub(b.last))
	}
	if b := l.pairs[pairKey("d", "c")]; b.until.Sub(b.last) != 15*time.Minute {
		t.Errorf("pair back-off %v, want the 15 min cap", b.until.Sub(b.last))
	}
	now = now.Add(15*time.Minute + cfg.ForgetAfter + time.Second)
	fail("d", "c") // neither the pair nor the user name is still in back-off
	if b := l.pairs[pairKey("d", "c")]; b.failures != 1 {
		t.Errorf("failures after forget_after: %d, want 1", b.failures)
	}
}

// The limiter tracks at most max_tracked keys of each kind; keys not in
// back-off make room, and a key of any length costs a bounded key.
func TestAuthLimiterBounded(t *testing.T) {
	cfg := AuthConfig{MaxTracked: 3, PairFailures: 1, AddressFailures: 1, UserFailures: 1}
	cfg.setDefaults()
	l := newAuthLimiter(cfg)
	long := string(make([]byte, 70000))
	for _, u := range []string{"a", "b", "c", "d", long} {
		l.failed(u, "x-"+u)
	}
	if len(l.users) > 3 || len(l.pairs) > 3 || len(l.addrs) > 3 {
		t.Fatalf("tracked %d users, %d pairs, %d addresses; max 3", len(l.users), len(l.pairs), len(l.addrs))
	}
	for k := range l.users {
		if len(k) > 100 {
			t.Errorf("a user key of %d bytes", len(k))
		}
	}
}

// With every bcrypt worker busy and the queue full, a login is refused at
// once with ErrLoginBusy and is not counted as a wrong password.
func TestCredentialsQueueBounded(t *testing.T) {
	cfg := AuthConfig{BcryptWorkers: 1, BcryptQueue: 1}
	cfg.setDefaults()
	c := newCredentials([]DeviceConfig{{ID: "d", Username: "d", PasswordHash: dummyHash}}, nil, cfg)
	defer c.close()
	c.workers <- struct{}{} // the only worker is busy
	done := make(chan error, 1)
	go func() {
		_, err := c.login("d", []byte("x"), "127.0.0.1:1", "", viaMQTT)
		done <- err
	}()
	for c.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.login("d", []byte("y"), "127.0.0.1:2", "", viaMQTT); !errors.Is(err, ErrLoginBusy) {
		t.Errorf("with the queue full: %v, want ErrLoginBusy", err)
	}
	if b := c.limits.users["d"]; b != nil && b.failures != 0 {
		t.Errorf("a busy refusal counted as a failure")
	}
	c.close() // the waiting check gives up
	if err := <-done; !errors.Is(err, ErrLoginBusy) {
		t.Errorf("waiting check after close: %v", err)
	}
	<-c.workers
}

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":             "127.0.0.1",
		"[::ffff:10.0.0.1]:1":        "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"10.1.1.1":                   "10.1.1.1",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// A check that waits longer than bcrypt_wait for a worker is refused with
// ErrLoginBusy, not answered after the device gave up.
func TestCredentialsWaitBounded(t *testing.T) {
	cfg := AuthConfig{BcryptWorkers: 1, BcryptWait: time.Millisecond}
	cfg.setDefaults()
	c := newCredentials([]DeviceConfig{{ID: "d", Username: "d", PasswordHash: dummyHash}}, nil, cfg)
	defer c.close()
	c.workers <- struct{}{} // the only worker stays busy
	if _, err := c.login("d", []byte("x"), "127.0.0.1:1", "", viaMQTT); !errors.Is(err, ErrLoginBusy) {
		t.Errorf("after waiting past bcrypt_wait: %v, want ErrLoginBusy", err)
	}
	<-c.workers
}

// One address may have at most address_pending checks in progress: it
// cannot fill the bcrypt queue before its first failure is counted.
func TestCredentialsAddressPending(t *testing.T) {
	cfg := AuthConfig{BcryptWorkers: 1, AddressPending: 2}
	cfg.setDefaults()
	c := newCredentials([]DeviceConfig{{ID: "d", Username: "d", PasswordHash: dummyHash}}, nil, cfg)
	defer c.close()
	c.workers <- struct{}{} // the only worker is busy: checks wait
	done := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := c.login("d", []byte("x"), "10.0.0.1:"+string(rune('1'+i)), "", viaMQTT)
			done <- err
		}()
	}
	for c.waiting.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.login("d", []byte("y"), "10.0.0.1:9", "", viaMQTT); !errors.Is(err, ErrLoginBusy) {
		t.Errorf("a third check from the address: %v, want ErrLoginBusy", err)
	}
	c.close()
	for range 2 {
		<-done
	}
	<-c.workers
	if len(c.limits.pending) != 0 {
		t.Errorf("pending checks left: %v", c.limits.pending)
	}
}
