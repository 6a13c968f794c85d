package viewer

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pion/dtls/v3"

	"github.com/skywatch/skywatch/ingest"
)

// TestSRTPProfile: a viewer that offers AES-GCM gets it, even when it
// prefers AES-CM as Chromium does; one that offers only AES-CM gets that.
func TestSRTPProfile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offers []dtls.SRTPProtectionProfile
		want   string
	}{
		{"prefers AES-CM, offers GCM",
			[]dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AEAD_AES_128_GCM},
			"SRTP_AEAD_AES_128_GCM"},
		{"offers only AES-CM",
			[]dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80},
			"SRTP_AES128_CM_HMAC_SHA1_80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cam := &camera{epoch: 1, received: time.Unix(1000, 0)}
			reader := newFakeReader([]ingest.Track{h264Track()}, cam.nextAU(true), cam.nextAU(false))
			src := &fakeSource{open: func(context.Context, string) (MediaReader, error) { return reader, nil }}
			srv := startServer(t, src, nil)

			settings := loopbackSettings()
			settings.SetSRTPProtectionProfiles(tc.offers...)
			client, offer := newWHEPClientWith(t, settings, nil)
			resp, body := client.post(t, baseURL(srv)+"/whep/gate", offer)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			receive(t, client, 1)
			if got := srtpCipher(client.pc); got != tc.want {
				t.Errorf("SRTP profile %q, want %q", got, tc.want)
			}
		})
	}
}
