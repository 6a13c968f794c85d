package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
)

// playOn asks node n for camera cam over WHEP with the operator's session
// (a new pion viewer, loopback-only ICE, each try) until a keyframe
// arrives, trying again while the node answers with an error (no owner
// yet) or no keyframe comes. It returns how long that took from since, or
// an error once limit has passed since then.
func playOn(t *testing.T, n *clusterNode, cam string, op operatorSession, since time.Time, limit time.Duration) (time.Duration, error) {
	t.Helper()
	var why string
	for try := 1; ; try++ {
		left := limit - time.Since(since)
		if left <= 0 {
			return time.Since(since), fmt.Errorf("camera %s through node %s: no keyframe within %v (%d tries; last: %s)", cam, n.id, limit, try-1, why)
		}
		peer := newViewerPeer(t)
		peer.header = op.header()
		code, body := peer.join(t, n.base()+"/whep/"+cam)
		if code != http.StatusCreated {
			why = fmt.Sprintf("POST /whep/%s: %d %s", cam, code, strings.TrimSpace(body))
			peer.close()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if waitKeyframe(peer, min(left, 10*time.Second)) {
			took := time.Since(since)
			peer.close()
			return took, nil
		}
		why = "answered, but no keyframe"
		peer.close()
	}
}

// waitKeyframe waits for an H.264 IDR picture on the viewer's video track.
func waitKeyframe(p *viewerPeer, timeout time.Duration) bool {
	deadline := time.After(timeout)
	var depack codecs.H264Packet
	for {
		select {
		case pkt := <-p.video:
			annexB, err := depack.Unmarshal(pkt.Payload)
			if err != nil {
				continue
			}
			for _, nalu := range bytes.Split(annexB, []byte{0, 0, 0, 1}) {
				if len(nalu) > 0 && nalu[0]&0x1f == nalIDR {
					return true
				}
			}
		case <-deadline:
			return false
		}
	}
}
