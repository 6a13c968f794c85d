package viewer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Peers is what the viewer needs of a cluster of Skywatch nodes
// (cmd/skywatch adapts cluster.Cluster): each camera is pulled by one node,
// and a WHEP request that reaches another node is proxied to it. Nil
// without a cluster.
type Peers interface {
	// Node is this node's id.
	Node() string
	// CameraOwner is the node that pulls the camera, or should pull it
	// when none does.
	CameraOwner(ctx context.Context, camera string) (node string, err error)
	// PeerURL is a live node's cluster.http_url; live is false for a node
	// that is not (or no longer) in the cluster.
	PeerURL(node string) (httpURL string, live bool)
	// IsPeer tells whether ip, a request's remote address, is a live
	// node's: only then is its X-Forwarded-For believed.
	IsPeer(ip string) bool
}

// proxiedHeader marks a WHEP request one node sent to another, with the
// sender's node id: it is never proxied again (no loops), and it is
// answered 503 when its node no longer pulls the camera.
const proxiedHeader = "Skywatch-Proxied-By"

// Bounds of a proxied WHEP request: the owner may wait for an on-demand
// camera to start (ingest.ready_timeout, 8 s by default); an answer is an
// SDP of a few KiB.
const (
	proxyTimeout    = 20 * time.Second
	maxProxiedReply = 256 << 10
)

// sessionNodeSep separates, in a session id made in a cluster, the node
// that holds the session from its random part: the node that receives the
// DELETE knows where to send it. Node ids have no '.', rand.Text none.
const sessionNodeSep = "."

// proxyMetrics count the WHEP requests sent to another node.
type proxyMetrics struct {
	requests *prometheus.CounterVec // by method and outcome
}

func newProxyMetrics(reg prometheus.Registerer) (*proxyMetrics, error) {
	m := &proxyMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skywatch_viewer_whep_proxied_total",
		Help: "WHEP requests proxied to the node that pulls the camera, by method and result (ok, refused, failed).",
	}, []string{"method", "result"})}
	if err := reg.Register(m.requests); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return m, nil
}

// newProxyTransport is the HTTP client side of proxying: a dial and a
// header timeout, and a few idle connections per peer.
func newProxyTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // nodes talk directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: proxyTimeout,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
	}
}

// sessionID makes a WHEP session's id: in a cluster it names this node.
func (s *Server) sessionID(random string) string {
	if s.deps.Peers == nil {
		return random
	}
	return s.deps.Peers.Node() + sessionNodeSep + random
}

// proxied tells whether r came from another node.
func proxied(r *http.Request) bool { return r.Header.Get(proxiedHeader) != "" }

// whepTarget says where a WHEP offer for camera should go: ("", "") to
// serve it here; else the owner's node and URL. A camera whose owner is
// not live is served here (this node claims it).
func (s *Server) whepTarget(ctx context.Context, camera string) (node, base string) {
	if s.deps.Peers == nil {
		return "", ""
	}
	owner, err := s.deps.Peers.CameraOwner(ctx, camera)
	if err != nil {
		s.logger.Warn("whep: camera owner unknown, serving here", "camera", camera, "err", err)
		return "", ""
	}
	if owner == s.deps.Peers.Node() {
		return "", ""
	}
	base, live := s.deps.Peers.PeerURL(owner)
	if !live || base == "" {
		return "", ""
	}
	return owner, base
}

// proxyWHEP sends r (its body already read into body, nil for none) to
// the node at base and copies the answer back. The user's cookie or token
// and CSRF header go along (sessions and tokens are valid on every node),
// so that the owner authenticates and scope-checks again; the Host header
// is kept, so that the owner's same-origin check sees the browser's
// origin; X-Forwarded-For carries the client's address.
func (s *Server) proxyWHEP(w http.ResponseWriter, r *http.Request, node, base string, body []byte) int {
	target, err := url.Parse(base)
	if err != nil {
		s.proxyMetrics.requests.WithLabelValues(r.Method, "failed").Inc()
		s.logger.Warn("whep proxy: bad peer url", "node", node, "err", err)
		return writeError(w, http.StatusBadGateway, "the camera's node has no usable address")
	}
	ctx, cancel := context.WithTimeout(r.Context(), proxyTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	addr := clientAddr(r)
	code := http.StatusBadGateway
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(proxiedHeader, s.deps.Peers.Node())
			// Only this node's view of the client: what the client
			// claims is not passed on.
			pr.Out.Header.Set("X-Forwarded-For", addr)
		},
		Transport: s.proxyTransport,
		ModifyResponse: func(resp *http.Response) error {
			code = resp.StatusCode
			resp.Body = &cappedBody{r: resp.Body, left: maxProxiedReply}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			code = http.StatusBadGateway
			s.logger.Warn("whep proxy: node did not answer", "node", node, "err", err)
			// It may have just died: the cluster gives its cameras to
			// another node within the failover time.
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusBadGateway, fmt.Sprintf("the camera's node %s did not answer", node))
		},
	}
	rp.ServeHTTP(w, r)
	result := "ok"
	switch {
	case code == http.StatusBadGateway:
		result = "failed"
	case code >= 400:
		result = "refused"
	}
	s.proxyMetrics.requests.WithLabelValues(r.Method, result).Inc()
	return code
}

// errReplyTooLarge ends a proxied answer larger than maxProxiedReply.
var errReplyTooLarge = errors.New("answer too large")

// cappedBody fails a read past its limit, so that a peer cannot make this
// node copy without end.
type cappedBody struct {
	r    io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errReplyTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedBody) Close() error { return c.r.Close() }

// sessionNode is the node a session id names, "" for an id without one.
func sessionNode(id string) string {
	node, _, ok := strings.Cut(id, sessionNodeSep)
	if !ok {
		return ""
	}
	return node
}

// proxyWHEPSession sends a request of a session held by another node (its
// DELETE, or the GET that asks whether it goes on) there; it reports false
// when the session is not another live node's.
func (s *Server) proxyWHEPSession(w http.ResponseWriter, r *http.Request, id string) (int, bool) {
	if s.deps.Peers == nil || proxied(r) {
		return 0, false
	}
	node := sessionNode(id)
	if node == "" || node == s.deps.Peers.Node() {
		return 0, false
	}
	base, live := s.deps.Peers.PeerURL(node)
	if !live || base == "" {
		return 0, false
	}
	return s.proxyWHEP(w, r, node, base, nil), true
}

// peerForwarded takes the client's address from X-Forwarded-For when a
// request comes from another node of the cluster (proxiedHeader, from a
// live node's address): the video session limits and the audit log then
// see the operator's address, not the node's.
func (s *Server) peerForwarded(next http.Handler) http.Handler {
	if s.deps.Peers == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fwd := r.Header.Get("X-Forwarded-For")
		if !proxied(r) || fwd == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.deps.Peers.IsPeer(clientAddr(r)) {
			// Anyone may send the header; only a node's is believed.
			next.ServeHTTP(w, r)
			return
		}
		ip := strings.TrimSpace(fwd[strings.LastIndexByte(fwd, ',')+1:])
		if net.ParseIP(ip) == nil {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.RemoteAddr = net.JoinHostPort(ip, strconv.Itoa(0))
		next.ServeHTTP(w, r2)
	})
}
