package cluster

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// The holder's heartbeat publishes the states of the cameras it holds; a
// reader gets each camera's holder and that holder's state, nothing for a
// camera nobody holds, and never a former holder's state.
func TestCameraStatesPublishedByHolder(t *testing.T) {
	r := newRig(t)
	a, b := r.newNode("sky-a", io.Discard), r.newNode("sky-b", io.Discard)
	publish := func(n *node) func([]string) map[string][]byte {
		return func(cams []string) map[string][]byte {
			out := map[string][]byte{}
			for _, c := range cams {
				out[c] = []byte(n.Node() + " sees " + c)
			}
			out["big"] = []byte(strings.Repeat("x", MaxCameraState+1))
			return out
		}
	}
	a.PublishCameraStates(publish(a))
	b.PublishCameraStates(publish(b))
	for _, n := range []*node{a, b} {
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, cam := range []string{"cam1", "big"} {
		if ok, err := a.ClaimCamera(ctx, cam); !ok || err != nil {
			t.Fatalf("a claims %s: %v %v", cam, ok, err)
		}
	}
	states := func() map[string]CameraState {
		t.Helper()
		s, err := b.CameraStates(ctx, []string{"cam1", "cam2", "big"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	eventually(t, 5*time.Second, "a's state of cam1 published", func() bool {
		return string(states()["cam1"].State) == "sky-a sees cam1"
	})
	s := states()
	if s["cam1"].Node != "sky-a" || s["cam2"].Node != "" || s["cam2"].State != nil {
		t.Fatalf("states: %+v", s)
	}
	if s["big"].Node != "sky-a" || s["big"].State != nil {
		t.Fatalf("a state over MaxCameraState was published: node %q, %d bytes", s["big"].Node, len(s["big"].State))
	}

	// The camera moves to b: a's last state is not b's.
	if err := a.ReleaseCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.ClaimCamera(ctx, "cam1"); !ok || err != nil {
		t.Fatalf("b claims cam1: %v %v", ok, err)
	}
	if s := states()["cam1"]; s.Node != "sky-b" || (s.State != nil && string(s.State) != "sky-b sees cam1") {
		t.Fatalf("after the move: %+v", s)
	}
	eventually(t, 5*time.Second, "b's state of cam1 published", func() bool {
		return string(states()["cam1"].State) == "sky-b sees cam1"
	})
}
