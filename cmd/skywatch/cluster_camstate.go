package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/skywatch/skywatch/cluster"
	"github.com/skywatch/skywatch/ingest"
	"github.com/skywatch/skywatch/viewer"
)

// cameraStateTimeout bounds the read of the other nodes' camera states
// behind one API request; past it the node shows its own states.
const cameraStateTimeout = time.Second

// clusterCameras shows, on every node, each camera's state as the node that
// pulls it sees it. Each node's camera manager knows only the cameras it
// pulls itself: another node's camera would show "offline" (not pulled
// here). So the holder of each camera publishes its state with its
// heartbeat (cluster.PublishCameraStates), and the node answering the API
// shows, for a camera another node holds, that node's state and name
// (CameraState.Node). A camera no node holds is not pulled anywhere: its
// local state ("offline", its last error if any) is the truth.
//
// It is the viewer's CameraSource: readers come from the local manager (the
// WHEP proxy has already sent a viewer to the camera's owner).
type clusterCameras struct {
	viewer.CameraSource
	c      *cluster.Cluster
	logger *slog.Logger
}

// wireClusterCameras makes the cluster publish the states of the cameras
// this node holds and returns the viewer's CameraSource; local as is
// without a cluster.
func (a *app) wireClusterCameras(local viewer.CameraSource) viewer.CameraSource {
	if a.cluster == nil {
		return local
	}
	a.cluster.PublishCameraStates(func(cams []string) map[string][]byte {
		return encodeCameraStates(a.cameras, cams, a.logger)
	})
	return &clusterCameras{CameraSource: local, c: a.cluster, logger: a.logger.With("component", "cluster")}
}

// stateReader is what the publisher needs of the camera manager.
type stateReader interface {
	Camera(id string) (ingest.CameraState, error)
}

// encodeCameraStates encodes the states of cams as the API needs them.
func encodeCameraStates(m stateReader, cams []string, logger *slog.Logger) map[string][]byte {
	out := make(map[string][]byte, len(cams))
	for _, id := range cams {
		st, err := m.Camera(id)
		if err != nil {
			continue // a camera of another node's config: not ours to show
		}
		b, err := json.Marshal(publishedState(st))
		if err != nil {
			logger.Warn("encode camera state", "camera", id, "error", err)
			continue
		}
		out[id] = b
	}
	return out
}

// publishedState strips a state of what other nodes do not show and what
// makes it large: the last error's detail (it may name the camera's
// address; the reason code stays) and the tracks' parameter sets.
func publishedState(st ingest.CameraState) ingest.CameraState {
	st.LastError = ""
	st.Tracks = strippedTracks(st.Tracks)
	if st.Sub != nil {
		sub := *st.Sub
		sub.LastError = ""
		sub.Tracks = strippedTracks(sub.Tracks)
		st.Sub = &sub
	}
	return st
}

func strippedTracks(tracks []ingest.Track) []ingest.Track {
	out := make([]ingest.Track, len(tracks))
	for i, t := range tracks {
		t.VPS, t.SPS, t.PPS, t.FMTP = nil, nil, nil, ""
		out[i] = t
	}
	return out
}

// Cameras implements viewer.CameraSource.
func (cc *clusterCameras) Cameras() []ingest.CameraState {
	states := cc.CameraSource.Cameras()
	ids := make([]string, len(states))
	for i, st := range states {
		ids[i] = st.ID
	}
	remote := cc.remote(ids)
	for i := range states {
		states[i] = cc.merge(states[i], remote)
	}
	return states
}

// Camera implements viewer.CameraSource.
func (cc *clusterCameras) Camera(id string) (ingest.CameraState, error) {
	st, err := cc.CameraSource.Camera(id)
	if err != nil {
		return st, err
	}
	return cc.merge(st, cc.remote([]string{id})), nil
}

// remote reads the holders and published states of ids; nil when Redis
// does not answer (the local states are shown then).
func (cc *clusterCameras) remote(ids []string) map[string]cluster.CameraState {
	ctx, cancel := context.WithTimeout(context.Background(), cameraStateTimeout)
	defer cancel()
	states, err := cc.c.CameraStates(ctx, ids)
	if err != nil {
		cc.logger.Warn("cluster: camera states: showing this node's", "error", err)
		return nil
	}
	return states
}

// merge returns the state to show of local, a camera as this node's
// manager sees it.
func (cc *clusterCameras) merge(local ingest.CameraState, remote map[string]cluster.CameraState) ingest.CameraState {
	r, ok := remote[local.ID]
	switch {
	case !ok || r.Node == "":
		// Nobody pulls it (or Redis is away): this node's view holds.
		return local
	case r.Node == cc.c.Node():
		local.Node = r.Node
		return local
	}
	st, err := decodeCameraState(r.State)
	if err != nil {
		cc.logger.Debug("cluster: camera state", "camera", local.ID, "node", r.Node, "error", err)
	}
	if err != nil || st == nil {
		// Its holder claimed it but has not published its state yet:
		// the camera is starting there.
		return ingest.CameraState{ID: local.ID, Name: local.Name, Status: ingest.StatusConnecting,
			Sub: connectingSub(local.Sub), Node: r.Node}
	}
	st.ID, st.Name, st.Node = local.ID, local.Name, r.Node
	return *st
}

// connectingSub is the sub stream of a camera starting on another node.
func connectingSub(local *ingest.StreamState) *ingest.StreamState {
	if local == nil {
		return nil
	}
	return &ingest.StreamState{Status: ingest.StatusOffline}
}

// decodeCameraState decodes a published state; nil for none.
func decodeCameraState(b []byte) (*ingest.CameraState, error) {
	if b == nil {
		return nil, nil
	}
	var st ingest.CameraState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode camera state: %w", err)
	}
	return &st, nil
}
