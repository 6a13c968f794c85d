package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeLogsHTTPSAddress: with http.tls_cert, the "skywatch serving"
// line gives an https:// address (an IT officer copies it from the
// journal), and that address answers over TLS.
func TestServeLogsHTTPSAddress(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
http: {address: "127.0.0.1:0", tls_cert: %q, tls_key: %q}
webrtc: {udp_address: "127.0.0.1:0", tcp_address: "127.0.0.1:0"}
mqtt: {address: "127.0.0.1:0"}
store: {path: %q}
users:
  - {username: admin, role: admin, password_hash: %q}
`, certPath, keyPath, filepath.Join(dir, "alarms.db"), testPasswordHash(t, "serve-secret"))
	path := filepath.Join(dir, "skywatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := serveInBackground(t, path)
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if i := strings.Index(logs.String(), `msg="skywatch serving" http=`); i >= 0 {
			addr = strings.Fields(logs.String()[i+len(`msg="skywatch serving" http=`):])[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve printed no address:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(addr, "https://127.0.0.1:") {
		t.Fatalf("serving line gives %s, want https://127.0.0.1:port/", addr)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(parsed)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if body, err := getWith(c, addr+"healthz"); err != nil {
		t.Fatalf("GET %shealthz: %v %s", addr, err, body)
	}
}
