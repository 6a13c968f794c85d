package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skywatch/skywatch/cluster"
)

// errWarmElsewhere tells the warmer that another node warms the camera: in
// a cluster every node sees every incident, and only the camera's owner
// pulls it.
var errWarmElsewhere = errors.New("camera warmed by its owner, another node")

// warmOwnerTimeout bounds the question of who owns a camera to warm.
const warmOwnerTimeout = 2 * time.Second

// ownedHolder holds (warms) a camera only on its owner by the cluster's
// rule (cluster.CameraOwner: its holder, else the rendezvous winner among
// the live nodes). Without it every node, each fed every incident change,
// would race to claim the same cameras, and the one that won would be
// arbitrary instead of the node that pulls the camera anyway.
type ownedHolder struct {
	cameras cameraHolder
	owner   func(ctx context.Context, camera string) (string, error)
	node    string
}

// warmHolder returns what the warmer holds cameras through: the camera
// manager, behind the owner check in a cluster.
func (a *app) warmHolder() cameraHolder {
	if a.cluster == nil {
		return a.cameras
	}
	return newOwnedHolder(a.cameras, a.cluster)
}

func newOwnedHolder(cameras cameraHolder, c *cluster.Cluster) ownedHolder {
	return ownedHolder{cameras: cameras, owner: c.CameraOwner, node: c.Node()}
}

// Hold implements cameraHolder: it fails with errWarmElsewhere when
// another node owns the camera.
func (h ownedHolder) Hold(cameraID string, sub bool, until time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), warmOwnerTimeout)
	owner, err := h.owner(ctx, cameraID)
	cancel()
	if err != nil {
		return fmt.Errorf("camera %s: owner: %w", cameraID, err)
	}
	if owner != h.node {
		return fmt.Errorf("camera %s on %s: %w", cameraID, owner, errWarmElsewhere)
	}
	return h.cameras.Hold(cameraID, sub, until)
}
