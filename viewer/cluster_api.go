package viewer

import (
	"context"
	"net/http"
	"time"

	"github.com/skywatch/skywatch/accounts"
)

// ClusterView shows the cluster this node belongs to (cmd/skywatch adapts
// package cluster and the nodes' published figures).
type ClusterView interface {
	ClusterStatus(ctx context.Context) (ClusterStatus, error)
}

// ClusterStatus is the cluster as GET /api/cluster shows it.
type ClusterStatus struct {
	// Node is the node that answers.
	Node string `json:"node"`
	// Engine is the node that runs the incident engine now, "" when none
	// holds its lease (a takeover is under way).
	Engine string `json:"engine"`
	// Nodes are the registered nodes, live or lately seen, by ID.
	Nodes []ClusterNode `json:"nodes"`
	// Leases are the cluster's named leases (the engine's and others).
	Leases []ClusterLease `json:"leases"`
}

// ClusterNode is one node of the cluster.
type ClusterNode struct {
	ID        string    `json:"id"`
	HTTPURL   string    `json:"http_url"`
	WebRTCIPs []string  `json:"webrtc_ips"`
	Started   time.Time `json:"started"`
	Seen      time.Time `json:"last_seen"`
	// Alive says the node's registration has not expired.
	Alive bool `json:"alive"`
	// Cameras are the cameras whose lease the node holds (it pulls them).
	Cameras []string `json:"cameras"`
	// Leases are the named leases the node holds.
	Leases []string `json:"leases"`
	// Stats are the figures the node published last; nil when none is
	// current.
	Stats *NodeStats `json:"stats"`
}

// ClusterLease is a named lease with a fencing token.
type ClusterLease struct {
	Name    string    `json:"name"`
	Holder  string    `json:"holder"`
	Token   int64     `json:"token"`
	Expires time.Time `json:"expires"`
}

// NodeStats are the figures a node publishes with its heartbeat.
type NodeStats struct {
	// At is when the node measured them.
	At time.Time `json:"at"`
	// EventsPerSecond are the alarm events this node's intake stored per
	// second since its previous figures.
	EventsPerSecond float64 `json:"events_stored_per_s"`
	// Viewers are the WHEP sessions open on the node.
	Viewers int `json:"viewers"`
	// CamerasPulled are the camera streams the node pulls now (online,
	// connecting or retrying).
	CamerasPulled int `json:"cameras_pulled"`
	// IntakeConnected says the node's alarm intake is connected to its
	// broker.
	IntakeConnected bool `json:"intake_connected"`
	// StoreErrors are the intake's failed store operations since the
	// node started.
	StoreErrors uint64 `json:"store_errors"`
}

// singleNodeJSON is GET /api/cluster's answer on a node without cluster.
type singleNodeJSON struct {
	Cluster bool           `json:"cluster"`
	Node    singleNodeInfo `json:"node"`
}

type singleNodeInfo struct {
	Started time.Time  `json:"started"`
	Stats   *NodeStats `json:"stats"`
}

// clusterJSON is GET /api/cluster's answer in a cluster.
type clusterJSON struct {
	Cluster bool `json:"cluster"`
	ClusterStatus
}

func (s *Server) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/cluster", s.handleCluster)
}

// handleCluster shows admins the cluster: nodes, leases, cameras per node,
// the engine's node and each node's figures; without a cluster, this
// node. Others are refused (403, audited).
func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request) {
	if !principalOf(r.Context()).User.Role.AtLeast(accounts.RoleAdmin) {
		s.deny(w, r, "cluster", "only an admin may see the cluster")
		return
	}
	if s.deps.Cluster == nil {
		j := singleNodeJSON{Node: singleNodeInfo{Started: s.startTime().UTC()}}
		if s.deps.NodeStats != nil {
			st := s.deps.NodeStats()
			j.Node.Stats = &st
		}
		writeJSON(w, http.StatusOK, j)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.deps.Cluster.ClusterStatus(ctx)
	if err != nil {
		s.logger.Warn("cluster status", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the cluster's state cannot be read now")
		return
	}
	if st.Nodes == nil {
		st.Nodes = []ClusterNode{}
	}
	if st.Leases == nil {
		st.Leases = []ClusterLease{}
	}
	for i := range st.Nodes {
		if st.Nodes[i].Cameras == nil {
			st.Nodes[i].Cameras = []string{}
		}
		if st.Nodes[i].Leases == nil {
			st.Nodes[i].Leases = []string{}
		}
		if st.Nodes[i].WebRTCIPs == nil {
			st.Nodes[i].WebRTCIPs = []string{}
		}
	}
	writeJSON(w, http.StatusOK, clusterJSON{Cluster: true, ClusterStatus: st})
}

// startTime is when the server started serving.
func (s *Server) startTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startedAt
}

// VideoSessions is the number of WHEP sessions open now (a node's
// published figures).
func (s *Server) VideoSessions() int { return int(s.sessionCount()) }
