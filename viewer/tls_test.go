package viewer

import (
	"crypto/tls"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skywatch/skywatch/internal/testcert"
)

func TestHTTPSAndSecureCookie(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	s := startAuthServer(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	base := "https://" + s.Addr().String()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Post(base+"/api/login", "application/json", strings.NewReader(`{"username":"admin","password":"`+testPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login over HTTPS: %s", resp.Status)
	}
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Errorf("cookie under TLS: %q", sc)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("no HSTS under TLS")
	}
	// Plain HTTP on the same port is not served.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + s.Addr().String() + "/api/me"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %s", resp.Status)
		}
	}
}

func TestTLSConfigErrors(t *testing.T) {
	cfg := loopbackConfig()
	cfg.TLSCertFile = "cert.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Errorf("cert without key: %v", err)
	}
	cfg.TLSKeyFile = filepath.Join(t.TempDir(), "missing.pem")
	cfg.TLSCertFile = cfg.TLSKeyFile
	if _, err := New(cfg, Deps{Cameras: &fakeSource{}}, nil); err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Errorf("missing files: %v", err)
	}
}
