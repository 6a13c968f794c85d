package viewer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTrustedForwarded(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.5", "192.168.0.0/24", "::ffff:10.0.0.6"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{trustedProxies: proxies}
	for _, tt := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no header", "10.0.0.5:4000", nil, "10.0.0.5"},
		{"from the balancer", "10.0.0.5:4000", []string{"172.16.1.9"}, "172.16.1.9"},
		{"a client's own header is not believed", "172.16.1.9:4000", []string{"1.2.3.4"}, "172.16.1.9"},
		{"what a client wrote left of the balancer's entry", "10.0.0.5:4000", []string{"1.2.3.4, 172.16.1.9"}, "172.16.1.9"},
		{"two trusted hops", "10.0.0.5:4000", []string{"1.2.3.4, 172.16.1.9, 192.168.0.7"}, "172.16.1.9"},
		{"header lines joined", "10.0.0.5:4000", []string{"1.2.3.4", "172.16.1.9"}, "172.16.1.9"},
		{"garbage right-most", "10.0.0.5:4000", []string{"172.16.1.9, nonsense"}, "10.0.0.5"},
		{"mapped v4 proxy", "10.0.0.6:4000", []string{"172.16.1.9"}, "172.16.1.9"},
		{"v6 client", "10.0.0.5:4000", []string{"2001:db8::1"}, "2001:db8::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			h := s.trustedForwarded(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientAddr(r) }))
			r := httptest.NewRequest(http.MethodGet, "/api/me", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want {
				t.Errorf("client %q, want %q", got, tt.want)
			}
		})
	}
	// A proxy that terminated TLS: the cookie is Secure, HSTS is sent; a
	// client's own X-Forwarded-Proto is not believed.
	for remote, want := range map[string]bool{"10.0.0.5:4000": true, "172.16.1.9:4000": false} {
		var got bool
		h := s.trustedForwarded(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = secure(r) }))
		r := httptest.NewRequest(http.MethodGet, "/api/me", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-Proto", "https")
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != want {
			t.Errorf("from %s with X-Forwarded-Proto: https: secure %v, want %v", remote, got, want)
		}
	}
	if _, err := parseTrustedProxies([]string{"lb.local"}); err == nil {
		t.Error("a host name was taken")
	}
	if err := (Config{TrustedProxies: []string{"10.0.0.0/33"}}).Validate(); err == nil {
		t.Error("a bad prefix passed Validate")
	}
}
