package main

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/recorder"
	"github.com/skywatch/skywatch/viewer"
)

// clusterVideoSettings adapts the video settings to a cluster: the
// recorder names its files with the node (the nodes share
// recordings.path), and WHEP answers carry the node's cluster.webrtc_ips
// (which default to webrtc.public_ips). Without a cluster nothing changes.
func clusterVideoSettings(s *settings) {
	if s.cluster == nil {
		return
	}
	s.recorder.Node = s.cluster.Node
	if len(s.cluster.WebRTCIPs) > 0 {
		s.viewer.PublicIPs = slices.Clone(s.cluster.WebRTCIPs)
	}
}

// wireClusterVideo puts the node's cameras under the cluster's camera
// leases and returns the viewer's Peers; nil without a cluster. Called
// before the cameras start.
func (a *app) wireClusterVideo(s *settings) viewer.Peers {
	if a.cluster == nil {
		return nil
	}
	v := newClusterVideo(a.cluster, pinnedCameras(s.ingest, s.recorder))
	v.logger = a.logger.With("component", "cluster-video")
	v.attach(a.cameras)
	a.video = v
	return v
}

// pinnedCameras are the cameras pulled without viewers: mode always, or
// recorded (always or for alarms).
func pinnedCameras(in ingest.Config, rec recorder.Config) []string {
	var out []string
	for _, c := range in.Cameras {
		if c.Mode == ingest.ModeAlways {
			out = append(out, c.ID)
		}
	}
	for _, c := range rec.Cameras {
		if c.Record == recorder.RecordAlways || c.Record == recorder.RecordAlarms {
			out = append(out, c.ID)
		}
	}
	return out
}

// clusterVideo puts a node's cameras under the cluster's camera leases:
// it is the ingest manager's Gate (a camera is pulled only while this node
// holds its lease) and the viewer's Peers (a WHEP request for a camera
// another node pulls is proxied there).
//
// Who claims a camera: a camera pulled without viewers (mode always, or
// recorded) only by its owner by the cluster's rule (CameraOwner: its
// holder, else the rendezvous winner among the live nodes), so that such
// cameras spread over the nodes and move only when their node dies; an
// on-demand camera by the node its first viewer reaches, which the viewer
// has already routed through CameraOwner.
//
// Spreading them: a starting node claims no pinned camera before it has
// seen the live nodes after one heartbeat (Cluster.Settled), so that nodes
// started together split them; and when the live set grows, a node hands
// over each pinned camera it holds whose rendezvous winner is now another
// live node, unless the camera has viewers here (see liveChanged).
type clusterVideo struct {
	c *cluster.Cluster
	// pinned are the cameras pulled without viewers; a reload swaps the
	// set whole (setPinned).
	pinned atomic.Pointer[map[string]bool]
	logger *slog.Logger

	mu sync.Mutex
	// viewers counts, per camera, the readers the viewer (WHEP sessions,
	// this node's and those proxied here) has open.
	viewers map[string]int
	// live is the live set liveChanged last saw; nil before the first.
	live []string
}

var (
	_ ingest.Gate  = (*clusterVideo)(nil)
	_ viewer.Peers = (*clusterVideo)(nil)
)

// newClusterVideo makes the adapter; pinned are the cameras pulled without
// viewers (mode always, record always or alarms).
func newClusterVideo(c *cluster.Cluster, pinned []string) *clusterVideo {
	v := &clusterVideo{c: c, viewers: make(map[string]int), logger: slog.Default()}
	v.setPinned(pinned)
	return v
}

// setPinned makes pinned the cameras pulled without viewers.
func (v *clusterVideo) setPinned(pinned []string) {
	m := make(map[string]bool, len(pinned))
	for _, id := range pinned {
		m[id] = true
	}
	v.pinned.Store(&m)
}

// isPinned says whether camera is pulled without viewers.
func (v *clusterVideo) isPinned(camera string) bool { return (*v.pinned.Load())[camera] }

// claimRetry bounds how often the always-on cameras this node does not
// pull claim again: a camera handed over to this node is pulled at its
// next pass, so this is most of the gap a handover costs. A pass asks Redis
// only for the cameras whose rendezvous winner this node is and that it
// does not hold (none in a steady cluster).
const claimRetry = time.Second

// attach makes cameras pull only what this node holds: it installs the
// gate (before cameras.Start; claims retried every renew interval, at most
// claimRetry), stops a camera at once when its lease is lost, hands
// cameras over when nodes join (liveChanged), and makes the always-on
// cameras claim again as soon as the live nodes change (a node died: its
// cameras have a new owner).
func (v *clusterVideo) attach(cameras *ingest.Manager) {
	cfg := v.c.Config()
	cameras.UseGate(v, min(cfg.RenewInterval(), claimRetry))
	v.c.OnCameraLost(cameras.LeaseLost)
	v.c.OnChange(func(live []cluster.NodeInfo) {
		v.liveChanged(cameras, live)
		cameras.Rebalance()
	})
}

// liveChanged hands over, when the live set grew, each pinned camera this
// node holds whose rendezvous winner is now another node and that has no
// viewers here: the camera stops here, its lease is released once its RTSP
// sessions are closed, and the winner claims it on its next pass. A camera
// moves at most once per change of the live set (the winner is fixed for a
// given set); a watched camera stays, its viewers are not interrupted.
// Recorded cameras are handed over too (a recording gap of about a second,
// see docs/cluster.md). Called on the cluster's heartbeat goroutine.
func (v *clusterVideo) liveChanged(cameras *ingest.Manager, live []cluster.NodeInfo) {
	ids := make([]string, 0, len(live))
	for _, n := range live {
		ids = append(ids, n.ID)
	}
	v.mu.Lock()
	prev := v.live
	v.live = ids
	v.mu.Unlock()
	grew := false
	for _, id := range ids {
		if !slices.Contains(prev, id) {
			grew = true
		}
	}
	if prev == nil || !grew {
		return
	}
	self := v.c.Node()
	for _, cam := range v.c.Cameras() {
		if !v.isPinned(cam) {
			continue
		}
		owner := cluster.RendezvousOwner(cam, ids)
		if owner == self || owner == "" {
			continue
		}
		if v.watched(cam) {
			v.logger.Info("cluster: camera kept: it has viewers", "camera", cam, "owner", owner)
			continue
		}
		if cameras.Handover(cam) {
			v.logger.Info("cluster: camera handed over", "camera", cam, "to", owner)
		}
	}
}

// watched tells whether the viewer has a reader of the camera open.
func (v *clusterVideo) watched(camera string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.viewers[camera] > 0
}

func (v *clusterVideo) watch(camera string, d int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.viewers[camera] += d
	if v.viewers[camera] <= 0 {
		delete(v.viewers, camera)
	}
}

// watchCameras counts, with a cluster (peers is the *clusterVideo that
// wireClusterVideo returned), the viewer's open readers per camera, so that
// a watched camera is not handed over; without a cluster it returns src.
func watchCameras(peers viewer.Peers, src viewer.CameraSource) viewer.CameraSource {
	v, ok := peers.(*clusterVideo)
	if !ok || v == nil {
		return src
	}
	return watchedCameras{CameraSource: src, v: v}
}

// watchedCameras is a viewer.CameraSource that counts its open readers.
type watchedCameras struct {
	viewer.CameraSource
	v *clusterVideo
}

// OpenReader implements viewer.CameraSource. The reader counts from
// before it is opened: a handover deciding meanwhile keeps the camera.
func (w watchedCameras) OpenReader(ctx context.Context, cameraID string, sub bool) (viewer.MediaReader, error) {
	w.v.watch(cameraID, 1)
	r, err := w.CameraSource.OpenReader(ctx, cameraID, sub)
	if err != nil {
		w.v.watch(cameraID, -1)
		return nil, err
	}
	return &watchedReader{MediaReader: r, done: func() { w.v.watch(cameraID, -1) }}, nil
}

// watchedReader uncounts its camera's viewer once, at its first Close.
type watchedReader struct {
	viewer.MediaReader
	once sync.Once
	done func()
}

// Close implements viewer.MediaReader.
func (r *watchedReader) Close() {
	r.MediaReader.Close()
	r.once.Do(r.done)
}

// Claim implements ingest.Gate. A pinned camera is claimed only once the
// node has seen the live set after a heartbeat (Cluster.Settled), and only
// by the rendezvous winner among the live nodes, as the cluster's last
// heartbeat saw them: the others are refused without asking Redis (their recorders
// ask again every few seconds, for every recorded camera). The claim
// itself (SET NX) keeps a camera with its holder when that is another
// node, such as the node that took it over while its owner was away.
func (v *clusterVideo) Claim(ctx context.Context, camera string) (bool, error) {
	if v.isPinned(camera) {
		if !v.c.Settled() {
			return false, nil
		}
		live := v.c.Live()
		ids := make([]string, 0, len(live))
		for _, n := range live {
			ids = append(ids, n.ID)
		}
		if len(ids) > 0 && cluster.RendezvousOwner(camera, ids) != v.c.Node() {
			return false, nil
		}
	}
	return v.c.ClaimCamera(ctx, camera)
}

// Release implements ingest.Gate.
func (v *clusterVideo) Release(ctx context.Context, camera string) error {
	return v.c.ReleaseCamera(ctx, camera)
}

// Node implements viewer.Peers.
func (v *clusterVideo) Node() string { return v.c.Node() }

// CameraOwner implements viewer.Peers.
func (v *clusterVideo) CameraOwner(ctx context.Context, camera string) (string, error) {
	return v.c.CameraOwner(ctx, camera)
}

// PeerURL implements viewer.Peers.
func (v *clusterVideo) PeerURL(node string) (string, bool) {
	info, ok := v.c.NodeInfo(node)
	return info.HTTPURL, ok
}

// peerLookup bounds the name lookup of a node's http_url host.
const peerLookup = time.Second

// IsPeer implements viewer.Peers: ip is the host of a live node's
// http_url (an address, or a name that resolves to it).
func (v *clusterVideo) IsPeer(ip string) bool {
	addr := net.ParseIP(ip)
	if addr == nil {
		return false
	}
	for _, n := range v.c.Live() {
		u, err := url.Parse(n.HTTPURL)
		if err != nil || n.ID == v.c.Node() {
			continue
		}
		host := u.Hostname()
		if h := net.ParseIP(host); h != nil {
			if h.Equal(addr) {
				return true
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), peerLookup)
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		cancel()
		for _, a := range ips {
			if err == nil && a.Equal(addr) {
				return true
			}
		}
	}
	return false
}
