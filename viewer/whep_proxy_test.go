package viewer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/skywatch/skywatch/ingest"
)

// fakePeers is a cluster of this node "a" and a node "b" that pulls every
// camera, at url.
type fakePeers struct {
	url  string
	peer bool // IsPeer's answer
}

func (p *fakePeers) Node() string { return "a" }
func (p *fakePeers) CameraOwner(context.Context, string) (string, error) {
	return "b", nil
}
func (p *fakePeers) PeerURL(node string) (string, bool) { return p.url, node == "b" }
func (p *fakePeers) IsPeer(string) bool                 { return p.peer }

// fakeOwner is node b's HTTP server: it records what reaches it and
// answers an offer with 201 and a session of its own.
type fakeOwner struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func startFakeOwner(t *testing.T) *fakeOwner {
	o := &fakeOwner{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.reqs = append(o.reqs, r)
		o.body = append(o.body, string(b))
		o.mu.Unlock()
		if r.Method == http.MethodPost {
			w.Header().Set("Location", r.URL.Path+"/b.SESSION")
			w.Header().Set("Content-Type", "application/sdp")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "v=0 answer of b")
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *fakeOwner) hits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.reqs)
}

func (o *fakeOwner) last() (*http.Request, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reqs[len(o.reqs)-1], o.body[len(o.body)-1]
}

// elsewhereCameras is node a's camera source: every camera is pulled by
// another node.
func elsewhereCameras() *fakeSource {
	return &fakeSource{states: testStates, open: func(_ context.Context, id string) (MediaReader, error) {
		return nil, &ingest.UnavailableError{State: ingest.CameraState{ID: id}, Err: ingest.ErrPulledElsewhere}
	}}
}

// A WHEP offer for a camera that another node pulls is proxied there, but
// only once authenticated and in scope here; the owner gets the user's
// cookie and CSRF token, the browser's Host, the client's address and the
// mark of a proxied request, and its answer and Location come back as they
// are. The DELETE (and GET) of the owner's session follows it. A request that was
// proxied already is never proxied again (503 when this node does not pull
// the camera), and an owner that does not answer is a 502.
func TestWHEPProxiedToTheOwner(t *testing.T) {
	owner := startFakeOwner(t)
	peers := &fakePeers{url: owner.URL}
	s := startAuthServerOpts(t, authOpts{cameras: elsewhereCameras(), peers: peers})
	_, offer := newWHEPClient(t)

	post := func(o *operator, camera string, hdr map[string]string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.base+"/whep/"+camera, strings.NewReader(offer))
		req.Header.Set("Content-Type", "application/sdp")
		if o.csrf != "" {
			req.Header.Set(csrfHeader, o.csrf)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := o.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	if code, body, _ := post(newOperator(t, s.base), "yard", nil); code != http.StatusUnauthorized {
		t.Fatalf("offer without a session: %d %s", code, body)
	}
	op := mustLogin(t, s.base, "op1")
	if code, body, _ := post(op, "gate", nil); code != http.StatusForbidden {
		t.Fatalf("offer for a camera out of scope: %d %s", code, body)
	}
	if n := owner.hits(); n != 0 {
		t.Fatalf("the owner got %d requests that this node should have refused", n)
	}

	code, body, hdr := post(op, "yard", map[string]string{"X-Forwarded-For": "198.51.100.7"})
	if code != http.StatusCreated || body != "v=0 answer of b" || hdr.Get("Location") != "/whep/yard/b.SESSION" {
		t.Fatalf("proxied offer: %d %q, Location %q", code, body, hdr.Get("Location"))
	}
	r, got := owner.last()
	host := strings.TrimPrefix(s.base, "http://")
	checks := []struct{ what, got, want string }{
		{"body", got, offer},
		{"Host", r.Host, host},
		{proxiedHeader, r.Header.Get(proxiedHeader), "a"},
		{"X-Forwarded-For (the client's claim is not passed on)", r.Header.Get("X-Forwarded-For"), "127.0.0.1"},
		{csrfHeader, r.Header.Get(csrfHeader), op.csrf},
		{"Content-Type", r.Header.Get("Content-Type"), "application/sdp"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("owner got %s %q, want %q", c.what, c.got, c.want)
		}
	}
	if c, err := r.Cookie(sessionCookie); err != nil || c.Value == "" {
		t.Errorf("owner got no session cookie: %v", err)
	}

	if code, body := op.do(http.MethodDelete, "/whep/yard/b.SESSION", "", true); code != http.StatusOK {
		t.Fatalf("DELETE of the owner's session: %d %s", code, body)
	}
	if r, _ := owner.last(); r.Method != http.MethodDelete || r.URL.Path != "/whep/yard/b.SESSION" {
		t.Fatalf("owner got %s %s, want the DELETE", r.Method, r.URL.Path)
	}
	if code, _ := op.do(http.MethodDelete, "/whep/yard/zz.SESSION", "", true); code != http.StatusNotFound {
		t.Fatalf("DELETE of a session of no live node: %d", code)
	}
	// The console's question whether its session goes on follows it too.
	if code, body := op.do(http.MethodGet, "/whep/yard/b.SESSION", "", false); code != http.StatusOK {
		t.Fatalf("GET of the owner's session: %d %s", code, body)
	}
	if r, _ := owner.last(); r.Method != http.MethodGet || r.URL.Path != "/whep/yard/b.SESSION" {
		t.Fatalf("owner got %s %s, want the GET", r.Method, r.URL.Path)
	}

	hits := owner.hits()
	code, body, hdr = post(op, "yard", map[string]string{proxiedHeader: "b"})
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("an offer proxied already, for a camera pulled elsewhere: %d %s", code, body)
	}
	if owner.hits() != hits {
		t.Fatal("a proxied offer was proxied again")
	}

	owner.Close()
	if code, body, _ := post(op, "yard", nil); code != http.StatusBadGateway || !strings.Contains(body, "node b") {
		t.Fatalf("owner down: %d %s", code, body)
	}
	if got := counterValue(t, s.Server, "skywatch_viewer_whep_proxied_total"); got < 3 {
		t.Fatalf("proxied requests counted: %v", got)
	}
}

// counterValue sums a counter family of the server's registry.
func counterValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	mfs, err := s.deps.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// Only a live node's X-Forwarded-For is believed, and only on a request
// marked as proxied.
func TestPeerForwardedAddress(t *testing.T) {
	for _, tc := range []struct {
		peer    bool
		proxied bool
		want    string
	}{
		{peer: true, proxied: true, want: "198.51.100.7"},
		{peer: false, proxied: true, want: "127.0.0.1"},
		{peer: true, proxied: false, want: "127.0.0.1"},
	} {
		t.Run(fmt.Sprintf("peer=%v,proxied=%v", tc.peer, tc.proxied), func(t *testing.T) {
			s := &Server{deps: Deps{Peers: &fakePeers{peer: tc.peer}}}
			var got string
			h := s.peerForwarded(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientAddr(r) }))
			r := httptest.NewRequest(http.MethodPost, "/whep/yard", nil)
			r.RemoteAddr = "127.0.0.1:5000"
			r.Header.Set("X-Forwarded-For", "203.0.113.1, 198.51.100.7")
			if tc.proxied {
				r.Header.Set(proxiedHeader, "b")
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tc.want {
				t.Fatalf("client address %q, want %q", got, tc.want)
			}
		})
	}
}
