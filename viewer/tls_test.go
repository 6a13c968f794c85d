package viewer

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
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

// A renewed certificate written over the same files is served to new
// connections after ReloadCertificate, without a restart; unreadable
// files keep the one served.
func TestReloadCertificate(t *testing.T) {
	certFile, keyFile, pool := testcert.Write(t)
	s := startAuthServer(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	servedBy := func(pool *x509.CertPool) error {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get("https://" + s.Addr().String() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := servedBy(pool); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.ReloadCertificate(); changed || err != nil {
		t.Errorf("the same files again: changed %v, %v", changed, err)
	}
	newCert, newKey, newPool := testcert.Write(t)
	for from, to := range map[string]string{newCert: certFile, newKey: keyFile} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if changed, err := s.ReloadCertificate(); !changed || err != nil {
		t.Fatalf("renewed files: changed %v, %v", changed, err)
	}
	if err := servedBy(newPool); err != nil {
		t.Errorf("the renewed certificate is not served: %v", err)
	}
	if err := servedBy(pool); err == nil {
		t.Error("the old certificate is still served")
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReloadCertificate(); err == nil || !strings.Contains(err.Error(), "http.tls_cert") {
		t.Errorf("a broken file: %v", err)
	}
	if err := servedBy(newPool); err != nil {
		t.Errorf("after a broken file: %v", err)
	}
}
