package viewer

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// newOperatorFrom is a browser-like client whose connections come from
// ip, a loopback address other than 127.0.0.1 (Linux routes all of
// 127.0.0.0/8 to the loopback interface), so that the server sees another
// workstation.
func newOperatorFrom(t *testing.T, base, ip string) *operator {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &operator{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: tr}}
}

// An attacker who keeps sending wrong passwords for the duty officer's
// account locks only their own address out of it: the officer logs in
// from another workstation, a session already logged in keeps working,
// an admin lifts the lock (audited), and nobody else may.
func TestLockoutIsPerAccountAndAddress(t *testing.T) {
	s := startAuthServer(t, nil)
	duty := mustLogin(t, s.base, "op1") // logged in before the attack
	attacker := newOperatorFrom(t, s.base, "127.0.0.2")
	for i := range 5 {
		if code, body := attacker.login("op1", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i+1, code, body)
		}
	}
	code, body := attacker.login("op1", testPassword)
	var locked lockedJSON
	if err := json.Unmarshal([]byte(body), &locked); code != http.StatusTooManyRequests || err != nil || locked.Scope != "account" {
		t.Fatalf("attacker's address after 5 failures: %d %s", code, body)
	}

	// The officer's workstation is not locked, and the session already
	// logged in works.
	if code, body := duty.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Fatalf("session logged in before the lockout: %d %s", code, body)
	}
	if code, body := newOperator(t, s.base).login("op1", testPassword); code != http.StatusOK {
		t.Fatalf("officer's own workstation: %d %s", code, body)
	}

	// Only an admin lists and lifts lockouts.
	if code, _ := duty.do(http.MethodGet, "/api/admin/lockouts", "", false); code != http.StatusForbidden {
		t.Errorf("operator lists lockouts: %d", code)
	}
	if code, _ := duty.do(http.MethodPost, "/api/admin/unlock", `{"user":"op1","addr":"127.0.0.2"}`, true); code != http.StatusForbidden {
		t.Errorf("operator unlocks: %d", code)
	}
	if code, _ := attacker.login("op1", testPassword); code != http.StatusTooManyRequests {
		t.Errorf("a refused unlock lifted the lock: %d", code)
	}
	admin := mustLogin(t, s.base, "admin")
	code, body = admin.do(http.MethodGet, "/api/admin/lockouts", "", false)
	var list struct{ Lockouts []lockout }
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil ||
		len(list.Lockouts) != 1 || list.Lockouts[0].User != "op1" || list.Lockouts[0].Addr != "127.0.0.2" || list.Lockouts[0].RetryAfter < 1 {
		t.Fatalf("lockouts: %d %s", code, body)
	}
	if code, body := admin.do(http.MethodPost, "/api/admin/unlock", `{"user":"OP1","addr":"127.0.0.2"}`, true); code != http.StatusOK || !strings.Contains(body, `"lifted": 1`) {
		t.Fatalf("unlock: %d %s", code, body)
	}
	if code, body := attacker.login("op1", testPassword); code != http.StatusOK {
		t.Errorf("after the unlock: %d %s", code, body)
	}
	recs := auditActions(t, s, accounts.AuditQuery{Action: accounts.AuditLoginUnlocked})
	if len(recs) != 1 || recs[0].User != "admin" || recs[0].Target != "user:OP1" || !strings.Contains(recs[0].Detail, "127.0.0.2") {
		t.Errorf("unlock records: %+v", recs)
	}
	if recs := auditActions(t, s, accounts.AuditQuery{User: "op1", Action: "denied"}); len(recs) != 2 {
		t.Errorf("refused admin actions of op1 on record: %+v", recs)
	}
}

// Guessing one account from many addresses is slowed by the account's
// wide limit, which never refuses an address that has logged in to the
// account before.
func TestAccountWideLimitSparesKnownAddresses(t *testing.T) {
	s := startAuthServer(t, nil)
	mustLogin(t, s.base, "op1") // 127.0.0.1 is now known for op1
	// Many addresses, each under its own limit, as a botnet would.
	s.opLimiter.mu.Lock()
	s.opLimiter.wideRule = bucketRule{Burst: 3, Every: time.Hour}
	s.opLimiter.mu.Unlock()
	for i := range 3 {
		if code, _ := newOperatorFrom(t, s.base, fmt.Sprintf("127.0.1.%d", i+1)).login("op1", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	code, body := newOperatorFrom(t, s.base, "127.0.1.9").login("op1", testPassword)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "account_new_addresses") {
		t.Fatalf("a new address past the wide limit: %d %s", code, body)
	}
	if code, body := newOperator(t, s.base).login("op1", testPassword); code != http.StatusOK {
		t.Fatalf("the known workstation: %d %s", code, body)
	}
}

// summaryCount reads the count of a summary record's detail.
func summaryCount(t *testing.T, r accounts.AuditRecord) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(r.Detail, "refused %d times", &n); err != nil {
		t.Fatalf("summary %+v: %v", r, err)
	}
	return n
}

// 300 failed logins from one address write a small bounded number of
// records, and the records and the summaries' counts add up to 300: with
// user names too long to be anyone's, and with names of a valid length,
// most of which the rate limit refuses.
func TestAuditFloodIsSummarised(t *testing.T) {
	for name, user := range map[string]func(i int) string{
		"long names":  func(i int) string { return fmt.Sprintf("%03d%s", i, strings.Repeat("x", 192)) },
		"valid names": func(i int) string { return fmt.Sprintf("%03d%s", i, strings.Repeat("x", 60)) },
	} {
		t.Run(name, func(t *testing.T) {
			s := startAuthServer(t, nil)
			o := newOperator(t, s.base)
			for i := range 300 {
				code, body := o.login(user(i), "guess")
				if code != http.StatusBadRequest && code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
					t.Fatalf("attempt %d: %d %s", i, code, body)
				}
			}
			// Closing writes the open window's summaries.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			recs := auditActions(t, s, accounts.AuditQuery{Limit: 1000})
			total, summaries := 0, 0
			for _, r := range recs {
				switch r.Action {
				case accounts.AuditSummary:
					summaries++
					total += summaryCount(t, r)
					if r.Addr != "127.0.0.1" {
						t.Errorf("summary of %q", r.Addr)
					}
				case accounts.AuditLoginFailed, accounts.AuditLoginLocked:
					total++
					if len(r.User) > maxLoginName {
						t.Errorf("a %d-byte user name was written: %+v", len(r.User), r)
					}
				default:
					t.Errorf("unexpected record %+v", r)
				}
			}
			if name == "long names" && len(recs) != 1 {
				t.Errorf("long names wrote records of their own: %+v", recs)
			}
			if len(recs) > DefaultAuditUnauthPerAddr+1 || summaries != 1 || total != 300 {
				t.Errorf("%d records (%d summaries) for 300 attempts counting %d", len(recs), summaries, total)
			}
		})
	}
}
