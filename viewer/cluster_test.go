package viewer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// startNodes starts two servers sharing one Redis store, as two nodes of
// a cluster behind a load balancer.
func startNodes(t *testing.T, opts authOpts) (a, b *authServer) {
	t.Helper()
	cfg := testRedis(t)
	open := func() *accounts.RedisStore {
		st, err := accounts.OpenRedisStore(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	users := testUsers(t)
	for _, s := range []**authServer{&a, &b} {
		st := open()
		o := opts
		o.records, o.shared, o.users = st, st, users
		*s = startAuthServerOpts(t, o)
	}
	return a, b
}

// on is o sending to another node: the cookie jar holds the session of
// 127.0.0.1 whatever the port.
func on(o *operator, s *authServer) *operator {
	c := *o
	c.base = s.base
	return &c
}

func TestClusterSessionOnEveryNode(t *testing.T) {
	a, b := startNodes(t, authOpts{})
	op := mustLogin(t, a.base, "op1")
	if code, body := on(op, b).do(http.MethodGet, "/api/me", "", false); code != http.StatusOK || !strings.Contains(compact(body), `"op1"`) {
		t.Fatalf("the cookie of node A on node B: %d %s", code, body)
	}
	// A change with the CSRF token A gave works on B too.
	if code, body := on(op, b).do(http.MethodPut, "/api/me/prefs", `{"layout":"2x2"}`, true); code != http.StatusNoContent {
		t.Fatalf("prefs on B: %d %s", code, body)
	}
	if code, body := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK || !strings.Contains(compact(body), `"2x2"`) {
		t.Fatalf("prefs set on B, read on A: %d %s", code, body)
	}
	// Logout on B ends the session on A.
	if code, body := on(op, b).do(http.MethodPost, "/api/logout", "", true); code != http.StatusNoContent {
		t.Fatalf("logout on B: %d %s", code, body)
	}
	if code, body := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Fatalf("after logout on B, A: %d %s", code, body)
	}
}

// Failed logins spread over two nodes lock the account after as many as
// on one node; the lockout is listed on both; an unlock on B lifts it on A.
func TestClusterLockoutSpreadOverNodes(t *testing.T) {
	a, b := startNodes(t, authOpts{})
	nodes := []*authServer{a, b}
	guesser := newOperator(t, a.base)
	for i := range DefaultLoginFailures {
		if code, body := on(guesser, nodes[i%2]).login("sup", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i+1, code, body)
		}
	}
	for _, n := range nodes {
		code, body := on(guesser, n).login("sup", testPassword)
		if code != http.StatusTooManyRequests || !strings.Contains(compact(body), `"scope":"account"`) {
			t.Fatalf("after %d failures over two nodes, %s: %d %s", DefaultLoginFailures, n.base, code, body)
		}
	}
	admin := mustLogin(t, a.base, "admin")
	for _, n := range nodes {
		code, body := on(admin, n).do(http.MethodGet, "/api/admin/lockouts", "", false)
		if code != http.StatusOK || !strings.Contains(compact(body), `"user":"sup","addr":"127.0.0.1"`) {
			t.Fatalf("lockouts on %s: %d %s", n.base, code, body)
		}
	}
	if code, body := on(admin, b).do(http.MethodPost, "/api/admin/unlock", `{"user":"sup"}`, true); code != http.StatusOK || strings.Contains(compact(body), `"lifted":0`) {
		t.Fatalf("unlock on B: %d %s", code, body)
	}
	if code, body := guesser.login("sup", testPassword); code != http.StatusOK {
		t.Fatalf("login on A after the unlock on B: %d %s", code, body)
	}
	if code, body := admin.do(http.MethodGet, "/api/admin/lockouts", "", false); code != http.StatusOK || !strings.Contains(compact(body), `"lockouts":[]`) {
		t.Fatalf("lockouts after unlock: %d %s", code, body)
	}
}

// An admin's end-sessions on A logs the user out on B: B's next request
// is refused, and B's sweep ends what the session had open there.
func TestClusterEndSessionsOnEveryNode(t *testing.T) {
	a, b := startNodes(t, authOpts{})
	op := mustLogin(t, a.base, "op1")
	if code, _ := on(op, b).do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Fatal("B does not take A's session")
	}
	admin := mustLogin(t, b.base, "admin")
	code, body := on(admin, b).do(http.MethodGet, "/api/admin/sessions", "", false)
	if code != http.StatusOK || !strings.Contains(compact(body), `"user":"op1"`) || !strings.Contains(compact(body), `"user":"admin"`) {
		t.Fatalf("sessions of the cluster on B: %d %s", code, body)
	}
	if code, body := on(admin, a).do(http.MethodPost, "/api/admin/users/op1/end-sessions", "", true); code != http.StatusOK || !strings.Contains(compact(body), `"ended":1`) {
		t.Fatalf("end sessions on A: %d %s", code, body)
	}
	// B still holds its copy until a request or its sweep.
	held := 0
	for _, k := range b.opSessions.keysBefore(time.Now()) {
		if se, ok := b.opSessions.remove(k); ok {
			if se.User.Username == "op1" {
				held++
			}
			b.opSessions.add(&se)
		}
	}
	if held != 1 {
		t.Fatalf("B holds %d sessions of op1 before its sweep, want 1", held)
	}
	b.syncSessions()
	for _, k := range b.opSessions.keysBefore(time.Now()) {
		if se, ok := b.opSessions.remove(k); ok {
			if se.User.Username == "op1" {
				t.Fatal("B's sweep kept the session ended on A")
			}
			b.opSessions.add(&se)
		}
	}
	if code, _ := on(op, b).do(http.MethodGet, "/api/me", "", false); code != http.StatusUnauthorized {
		t.Fatalf("op1 on B after end-sessions on A: %d", code)
	}
	if code, _ := on(admin, b).do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Fatalf("the admin's own session on B: %d", code)
	}
}

// A session used on one node only is not ended by another node's idle
// timeout: the store carries the later use.
func TestClusterIdleCountsUseOnOtherNodes(t *testing.T) {
	a, b := startNodes(t, authOpts{})
	op := mustLogin(t, a.base, "op1")
	if code, _ := on(op, b).do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Fatal("B does not take A's session")
	}
	// B's copy was last used long ago; A's use since is in the store.
	key := ""
	for _, k := range b.opSessions.keysBefore(time.Now()) {
		key = k
	}
	b.opSessions.mu.Lock()
	b.opSessions.byKey[key].LastSeen = time.Now().Add(-DefaultSessionIdle - time.Hour)
	b.opSessions.mu.Unlock()
	b.syncSessions()
	if ended := b.opSessions.sweep(time.Now()); len(ended) != 0 {
		t.Fatalf("B's sweep ended %d sessions used on A", len(ended))
	}
	if code, _ := on(op, b).do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Fatal("the session used on A was ended on B")
	}
}

// compact is a JSON answer without its indentation.
func compact(body string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(body)) != nil {
		return body
	}
	return b.String()
}

type fakeCluster struct{ st ClusterStatus }

func (f fakeCluster) ClusterStatus(context.Context) (ClusterStatus, error) { return f.st, nil }

func TestClusterAPI(t *testing.T) {
	seen := time.Now().UTC().Truncate(time.Second)
	fc := fakeCluster{ClusterStatus{Node: "sky-a", Engine: "sky-b",
		Nodes: []ClusterNode{
			{ID: "sky-a", HTTPURL: "http://10.0.0.11:8080", WebRTCIPs: []string{"10.0.0.11"}, Seen: seen, Alive: true,
				Cameras: []string{"yard"}, Stats: &NodeStats{Viewers: 3, IntakeConnected: true}},
			{ID: "sky-b", HTTPURL: "http://10.0.0.12:8080", Seen: seen, Alive: true, Leases: []string{"engine"}},
		},
		Leases: []ClusterLease{{Name: "engine", Holder: "sky-b", Token: 7, Expires: seen.Add(10 * time.Second)}},
	}}
	s := startAuthServerOpts(t, authOpts{cluster: fc})
	admin := mustLogin(t, s.base, "admin")
	code, body := admin.do(http.MethodGet, "/api/cluster", "", false)
	var got struct {
		Cluster bool `json:"cluster"`
		ClusterStatus
	}
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
		t.Fatalf("cluster: %d %s", code, body)
	}
	if !got.Cluster || got.Engine != "sky-b" || len(got.Nodes) != 2 || got.Nodes[0].Stats.Viewers != 3 ||
		got.Nodes[1].Cameras == nil || len(got.Leases) != 1 || got.Leases[0].Token != 7 {
		t.Fatalf("cluster: %s", body)
	}
	sup := mustLogin(t, s.base, "sup")
	if code, _ := sup.do(http.MethodGet, "/api/cluster", "", false); code != http.StatusForbidden {
		t.Fatalf("supervisor: %d, want 403", code)
	}
	recs := auditActions(t, s, accounts.AuditQuery{User: "sup"})
	if len(recs) == 0 || recs[0].Action != "denied" || recs[0].Target != "cluster" {
		t.Fatalf("refusal not audited: %+v", recs)
	}

	one := startAuthServerOpts(t, authOpts{})
	admin = mustLogin(t, one.base, "admin")
	code, body = admin.do(http.MethodGet, "/api/cluster", "", false)
	if code != http.StatusOK || !strings.Contains(compact(body), `"cluster":false`) || !strings.Contains(compact(body), `"started"`) {
		t.Fatalf("without cluster: %d %s", code, body)
	}
}

// The patrol page on two nodes: a login on A works on B, a logout on B
// ends it on A, and wrong passwords spread over both count as on one.
func TestClusterPatrolSessionsAndLimits(t *testing.T) {
	cfg := testRedis(t)
	var nodes []*Server
	for range 2 {
		st, err := accounts.OpenRedisStore(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		nodes = append(nodes, startIncidentServer(t, &fakeIncidents{unit: unitViews(30, 120)}, func(d *Deps) {
			d.CheckUnit = plainUnits()
			d.Records, d.Shared, d.SharedPatrol = st, st, st
		}))
	}
	a, b := baseURL(nodes[0]), baseURL(nodes[1])
	p := newPatrolClient(t, a)
	if code, body := p.login("u1", "pw-u1"); code != 200 {
		t.Fatalf("login on A: %d %s", code, body)
	}
	p.base = b
	if code, body, _ := p.do("GET", "me", nil, false); code != 200 || !strings.Contains(body, `"u1"`) {
		t.Fatalf("A's patrol session on B: %d %s", code, body)
	}
	p.mustDo("POST", "logout", map[string]string{}, 204, nil)
	p.base = a
	if code, _, _ := p.do("GET", "me", nil, false); code != 401 {
		t.Fatalf("on A after logout on B: %d", code)
	}

	g := newPatrolClient(t, a)
	for i := range int(defaultUnitLoginRule.Burst) {
		g.base = []string{a, b}[i%2]
		if code, body := g.login("u2", "guess"); code != 401 {
			t.Fatalf("attempt %d: %d %s", i+1, code, body)
		}
	}
	for _, base := range []string{a, b} {
		g.base = base
		if code, body := g.login("u2", "pw-u2"); code != 429 || !strings.Contains(body, "user name") {
			t.Fatalf("after %v failures over two nodes, %s: %d %s", defaultUnitLoginRule.Burst, base, code, body)
		}
	}
}

// failingShared is a shared store that does not answer.
type failingShared struct{ SharedLogins }

var errAway = errors.New("redis away")

func (failingShared) Session(context.Context, string) (accounts.Session, bool, error) {
	return accounts.Session{}, false, errAway
}
func (failingShared) TakeLogin(context.Context, []accounts.LoginBucket, time.Time) (int, time.Duration, error) {
	return -1, 0, errAway
}
func (failingShared) LoginLocks(context.Context, time.Time, int) ([]accounts.LoginLock, error) {
	return nil, errAway
}
func (failingShared) ResetLogin(context.Context, []string, func(string) bool) (int, error) {
	return 0, errAway
}
func (failingShared) KnowLoginAddr(context.Context, string, string, int, time.Time) error {
	return errAway
}
func (failingShared) KnownLoginAddr(context.Context, string, string) (bool, error) {
	return false, errAway
}

// While the shared store does not answer, a node limits logins by itself
// and keeps the sessions it made: logins go on, guessing is still slowed.
func TestClusterSharedStoreAway(t *testing.T) {
	s := startAuthServerOpts(t, authOpts{shared: failingShared{}})
	op := mustLogin(t, s.base, "op1")
	if code, _ := op.do(http.MethodGet, "/api/me", "", false); code != http.StatusOK {
		t.Fatalf("this node's session while the store is away: %d", code)
	}
	g := newOperator(t, s.base)
	for i := range DefaultLoginFailures {
		if code, body := g.login("sup", "guess"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i+1, code, body)
		}
	}
	if code, body := g.login("sup", testPassword); code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures with the store away: %d %s", DefaultLoginFailures, code, body)
	}
	admin := mustLogin(t, s.base, "admin")
	if code, body := admin.do(http.MethodGet, "/api/admin/lockouts", "", false); code != http.StatusOK || !strings.Contains(compact(body), `"user":"sup"`) {
		t.Fatalf("this node's lockouts: %d %s", code, body)
	}
}
