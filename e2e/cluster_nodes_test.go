package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/skywatch/skywatch/hardware"
)

// A test cluster: Skywatch nodes as separate processes (so that a SIGKILL
// is real) sharing a private Redis and a private Mosquitto, each with a
// cluster: section, and a simulated camera with one path per camera.

// clusterSetup is what every node of a test cluster is configured with.
type clusterSetup struct {
	broker       string // the external broker's URL
	redisURL     string
	prefix       string // store.redis_key_prefix
	clientID     string // mqtt.client_id, unique per test
	failover     time.Duration
	offerTimeout time.Duration
	// operatorHash is the operator's password hash, the same in every
	// node's config: a session is bound to the account as configured.
	operatorHash string
	devices      []string
	units        []hardware.SimUnit
	cameras      []clusterCamera
}

// clusterCamera is a camera of the config: a path of the simulated camera.
type clusterCamera struct {
	id, url string
}

// clusterNode is one node: a skywatch serve process on a fixed HTTP port,
// so that its cluster.http_url stays true when it is started again.
type clusterNode struct {
	id   string
	port int
	sw   *skywatchProc
}

// base is the node's HTTP base URL.
func (n *clusterNode) base() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }

// up reports whether the node's process runs.
func (n *clusterNode) up() bool { return n.sw.p != nil && !n.sw.p.exited() }

// testCluster is the nodes and what reads the cluster's state in Redis.
type testCluster struct {
	t     *testing.T
	setup clusterSetup
	nodes []*clusterNode
	rdb   *redis.Client
}

// newTestCluster writes one config per node (IDs a, b, c...) and returns
// the cluster, not started.
func newTestCluster(t *testing.T, bin string, setup clusterSetup, n int) *testCluster {
	t.Helper()
	opts, err := redis.ParseURL(setup.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, setup: setup, rdb: redis.NewClient(opts)}
	t.Cleanup(func() { _ = c.rdb.Close() })
	for i := range n {
		node := &clusterNode{id: string(rune('a' + i)), port: freePort(t)}
		node.sw = newSkywatchProc(t, bin, writeClusterConfig(t, setup, node))
		node.sw.name = node.id
		c.nodes = append(c.nodes, node)
	}
	return c
}

// start starts every node at once and waits until each serves and is
// ready.
func (c *testCluster) start() {
	c.t.Helper()
	for _, n := range c.nodes {
		n.sw.launch()
	}
	for _, n := range c.nodes {
		n.sw.waitServing()
	}
	for _, n := range c.nodes {
		n.sw.waitReady()
	}
}

// node returns the node with id.
func (c *testCluster) node(id string) *clusterNode {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %q in the test cluster", id)
	return nil
}

// running lists the nodes whose processes run.
func (c *testCluster) running() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if n.up() {
			out = append(out, n)
		}
	}
	return out
}

// leaseNode is the node part of a lease's value ("{node}/{token}", or a
// bare node ID).
func leaseNode(v string) string {
	node, _, _ := strings.Cut(v, "/")
	return node
}

// engineHolder reads the engine's lease from Redis: the node holding it
// and its fencing token; "" when nobody holds it.
func (c *testCluster) engineHolder(ctx context.Context) (string, int64, error) {
	v, err := c.rdb.Get(ctx, c.setup.prefix+"cluster:lease:engine").Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read the engine lease: %w", err)
	}
	node, tok, _ := strings.Cut(v, "/")
	token, _ := strconv.ParseInt(tok, 10, 64)
	return node, token, nil
}

// cameraHolders reads every camera's lease from Redis: camera -> node, ""
// for a camera nobody holds.
func (c *testCluster) cameraHolders(ctx context.Context) (map[string]string, error) {
	out := make(map[string]string, len(c.setup.cameras))
	for _, cam := range c.setup.cameras {
		v, err := c.rdb.Get(ctx, c.setup.prefix+"cluster:camera:"+cam.id).Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[cam.id] = ""
		case err != nil:
			return nil, fmt.Errorf("read the lease of camera %s: %w", cam.id, err)
		default:
			out[cam.id] = leaseNode(v)
		}
	}
	return out, nil
}

// camerasOf lists the cameras node holds, sorted.
func camerasOf(holders map[string]string, node string) []string {
	var out []string
	for cam, n := range holders {
		if n == node {
			out = append(out, cam)
		}
	}
	slices.Sort(out)
	return out
}

// waitEngine waits until a node other than those in not holds the engine
// lease, and returns it and how long that took from since. It gives up
// after limit.
func (c *testCluster) waitEngine(since time.Time, limit time.Duration, not ...string) (string, time.Duration, error) {
	var last string
	var lastErr error
	for {
		node, _, err := c.engineHolder(c.t.Context())
		if err == nil && node != "" && !slices.Contains(not, node) {
			return node, time.Since(since), nil
		}
		last, lastErr = node, err
		if time.Since(since) > limit {
			return "", time.Since(since), fmt.Errorf("no engine lease on another node within %v (holder %q, error %v)", limit, last, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCameras waits until every camera is held by a running node and
// pulled by exactly one RTSP session at the simulated camera, and returns
// the holders and how long that took from since. It gives up after limit.
func (c *testCluster) waitCameras(cam *hardware.Camera, since time.Time, limit time.Duration) (map[string]string, time.Duration, error) {
	var why string
	for {
		holders, err := c.cameraHolders(c.t.Context())
		why = ""
		if err != nil {
			why = err.Error()
		}
		for _, cc := range c.setup.cameras {
			if why != "" {
				break
			}
			h := holders[cc.id]
			switch n := cam.Sessions(cameraPath(cc.id)); {
			case h == "":
				why = "camera " + cc.id + " is not held"
			case !c.node(h).up():
				why = "camera " + cc.id + " is held by node " + h + ", which is down"
			case n != 1:
				why = fmt.Sprintf("camera %s has %d RTSP sessions", cc.id, n)
			}
		}
		if why == "" {
			return holders, time.Since(since), nil
		}
		if time.Since(since) > limit {
			return holders, time.Since(since), fmt.Errorf("within %v: %s", limit, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterView is what the test reads of GET /api/cluster.
type clusterView struct {
	Nodes []struct {
		ID    string `json:"id"`
		Alive *bool  `json:"alive"`
	} `json:"nodes"`
}

// apiCluster reads GET /api/cluster on node n as the operator.
func (c *testCluster) apiCluster(n *clusterNode, op operatorSession) (clusterView, string, error) {
	code, body, err := op.get(c.t.Context(), n, "/api/cluster")
	if err != nil {
		return clusterView{}, "", err
	}
	if code != http.StatusOK {
		return clusterView{}, body, fmt.Errorf("GET /api/cluster on %s: %d %s", n.id, code, strings.TrimSpace(body))
	}
	var v clusterView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return clusterView{}, body, fmt.Errorf("GET /api/cluster on %s: %w", n.id, err)
	}
	return v, body, nil
}

// liveNodes lists the nodes GET /api/cluster shows alive.
func (v clusterView) liveNodes() []string {
	var out []string
	for _, n := range v.Nodes {
		if n.Alive == nil || *n.Alive {
			out = append(out, n.ID)
		}
	}
	slices.Sort(out)
	return out
}

// cameraPath is the simulated camera's path of a camera.
func cameraPath(id string) string { return "/" + id }

// startClusterCamera starts a simulated camera with a path per camera ID
// (a 1 s GOP, so that a new puller has a keyframe within a second) and
// returns it and the cameras as the config names them.
func startClusterCamera(t *testing.T, ids []string) (*hardware.Camera, []clusterCamera) {
	t.Helper()
	cfg := hardware.CameraConfig{Username: camUser, Password: camPassword}
	for i, id := range ids {
		cfg.Paths = append(cfg.Paths, hardware.CameraPath{Path: cameraPath(id), Clip: hardware.ClipGOP1s, StartFrame: i * 5})
	}
	cam := hardware.NewCamera(cfg)
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	var out []clusterCamera
	for _, id := range ids {
		out = append(out, clusterCamera{id: id, url: cam.URL(cameraPath(id))})
	}
	return cam, out
}

// Where the test cluster's devices and units are: the units' area centre.
const (
	clusterArea   = "e2e"
	clusterCounty = "e2e-county"
)

// writeClusterConfig writes node's config file.
func writeClusterConfig(t *testing.T, s clusterSetup, node *clusterNode) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `log:
  level: info
http:
  address: 127.0.0.1:%d
webrtc:
  udp_address: 127.0.0.1:0
  tcp_address: "off"
ingest:
  warm_on_alarm: 0s
mqtt:
  topic_prefix: %s
  url: %s
  client_id: %s
store:
  redis_url: %q
  redis_key_prefix: %q
cluster:
  node: %s
  http_url: %s
  failover: %s
routing:
  offer_timeout: %s
users:
  - username: %s
    role: admin
    password_hash: %q
areas:
  - {id: %s, kind: county}
  - {id: %s, kind: village, parent: %s}
`, node.port, floodTopicPrefix, s.broker, s.clientID, s.redisURL, s.prefix,
		node.id, node.base(), s.failover, s.offerTimeout,
		e2eOperator, s.operatorHash, clusterCounty, clusterArea, clusterCounty)
	b.WriteString("cameras:\n")
	for _, c := range s.cameras {
		// No position: a camera linked to the incidents would be warmed
		// by every alarm, which is not what this test is about.
		fmt.Fprintf(&b, "  - {id: %s, url: %q, username: %s, password: %q, transport: tcp, mode: always}\n",
			c.id, c.url, camUser, camPassword)
	}
	b.WriteString("devices:\n")
	for i, id := range s.devices {
		// Spread around the units' area centre, within 2 km.
		lat := hardware.SimOriginLat + float64(i%10-5)*0.002
		lon := hardware.SimOriginLon + float64(i/10%10-5)*0.002
		fmt.Fprintf(&b, "  - {id: %s, area: %s, lat: %.6f, lon: %.6f}\n", id, clusterArea, lat, lon)
	}
	b.WriteString("units:\n")
	for _, u := range s.units {
		fmt.Fprintf(&b, "  - {id: %s, kind: %s, area: %s, lat: %.6f, lon: %.6f}\n", u.ID, u.Kind, clusterArea, u.HomeLat, u.HomeLon)
	}
	path := filepath.Join(t.TempDir(), "skywatch-"+node.id+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// operatorSession is an operator's console session: its cookie and CSRF
// token, sent by hand to whichever node (a cookie jar would send it to
// every port of 127.0.0.1 anyway, and hide which node saw it).
type operatorSession struct {
	cookie string // "name=value"
	csrf   string
	client *http.Client
}

// login logs the operator in on node n.
func login(ctx context.Context, n *clusterNode) (operatorSession, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.base()+"/api/login",
		strings.NewReader(`{"username":"`+e2eOperator+`","password":"`+e2eOperatorPassword+`"}`))
	if err != nil {
		return operatorSession{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return operatorSession{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return operatorSession{}, fmt.Errorf("login on %s: %s %s", n.id, resp.Status, body)
	}
	var me struct {
		CSRF string `json:"csrf"`
	}
	if err := json.Unmarshal(body, &me); err != nil {
		return operatorSession{}, fmt.Errorf("login on %s: %w", n.id, err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "skywatch_session" {
			return operatorSession{cookie: c.Name + "=" + c.Value, csrf: me.CSRF, client: client}, nil
		}
	}
	return operatorSession{}, fmt.Errorf("login on %s: no session cookie", n.id)
}

// header is what a request of the session carries.
func (o operatorSession) header() http.Header {
	return http.Header{"Cookie": {o.cookie}, "X-Csrf-Token": {o.csrf}}
}

// get fetches path on node n with the session.
func (o operatorSession) get(ctx context.Context, n *clusterNode, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.base()+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header = o.header()
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// validOn checks that the session is valid on every node in nodes:
// GET /api/me answers 200.
func (o operatorSession) validOn(t *testing.T, when string, nodes ...*clusterNode) {
	t.Helper()
	for _, n := range nodes {
		code, body, err := o.get(t.Context(), n, "/api/me")
		if err != nil || code != http.StatusOK {
			t.Errorf("%s: the operator's session (logged in on a) on node %s: GET /api/me %d %q %v",
				when, n.id, code, strings.TrimSpace(body), err)
		}
	}
}
