package viewer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/skywatch/skywatch/ingest"
)

// TestICETCPFallback: a viewer that cannot use UDP plays over ICE-TCP.
func TestICETCPFallback(t *testing.T) {
	cam := &camera{epoch: 1, received: time.Unix(1000, 0)}
	reader := newFakeReader([]ingest.Track{h264Track()}, cam.nextAU(true), cam.nextAU(false))
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	srv := startServer(t, src, nil)

	client, offer := newWHEPClientOn(t, webrtc.NetworkTypeTCP4)
	resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, " tcp ") || !strings.Contains(body, "tcptype passive") {
		t.Fatalf("answer has no passive TCP candidate:\n%s", body)
	}
	receive(t, client, 1)
	pair, err := selectedPair(client.pc)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pair, "tcp") {
		t.Errorf("selected candidate pair %s, want tcp", pair)
	}
}

func selectedPair(pc *webrtc.PeerConnection) (string, error) {
	stats := pc.GetStats()
	for _, s := range stats {
		if p, ok := s.(webrtc.ICECandidatePairStats); ok && p.Nominated {
			if local, ok := stats[p.LocalCandidateID].(webrtc.ICECandidateStats); ok {
				return local.Protocol, nil
			}
		}
	}
	return "", errors.New("no nominated candidate pair")
}

// TestPublicIPsAnnounced: public IPs are announced next to the local
// address, so that viewers behind the NAT and on the local network both
// connect.
func TestPublicIPsAnnounced(t *testing.T) {
	reader := newFakeReader([]ingest.Track{h264Track()})
	src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
	cfg := loopbackConfig()
	cfg.TCPAddress = ""
	cfg.PublicIPs = []string{"203.0.113.7"}
	srv := startServerWith(t, cfg, src, nil)

	// The answer is only read, not applied: the client must not send
	// anything to the public address.
	_, offer := newWHEPClient(t)
	resp, body := doRequest(t, http.MethodPost, baseURL(srv)+"/whep/gate", "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, " 203.0.113.7 ") || !strings.Contains(body, " 127.0.0.1 ") {
		t.Errorf("answer lacks the public or the local candidate:\n%s", body)
	}
	if strings.Contains(body, " tcp ") {
		t.Errorf("ICE-TCP is off but the answer has a TCP candidate:\n%s", body)
	}
}
