package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/serve"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// writeCert writes the CA's certificate, as an upstream_ca_file.
func (ca *testCA) writeCert(t *testing.T, file string) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a leaf certificate with the given serial and its key.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "portcullis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLSWithHTTP2AndCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t)
	ca.issue(t, 1001, certFile, keyFile)

	// An https upstream signed by the same CA, trusted through a bundle.
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "secure upstream")
	}))
	upCert, upKey := filepath.Join(dir, "up.crt"), filepath.Join(dir, "up.key")
	ca.issue(t, 7, upCert, upKey)
	pair, err := tls.LoadX509KeyPair(upCert, upKey)
	if err != nil {
		t.Fatal(err)
	}
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	up.StartTLS()
	defer up.Close()
	caFile := filepath.Join(dir, "ca.pem")
	_ = os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600)

	yml := fmt.Sprintf(`
server:
  listen: 127.0.0.1:18443
  public_url: https://127.0.0.1:18443
  tls: {cert_file: %q, key_file: %q}
admin: {listen: off}
routes:
  - name: trusted
    path_prefix: /trusted
    upstream: %q
    auth: public
    upstream_ca_file: %q
  - name: untrusted
    path_prefix: /untrusted
    upstream: %q
    auth: public
`, certFile, keyFile, up.URL, caFile, up.URL)
	cfg, err := config.Parse("tls.yaml", []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := serve.New(ctx, serve.Options{Config: cfg, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(testgw.NewLogWriter(t, nil), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "https://" + ln.Addr().String()

	get := func(path string) (*http.Response, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr}).Get(base + path)
		if err == nil {
			res.Body.Close()
		}
		return res, err
	}
	res, err := get("/trusted/x")
	if err != nil {
		t.Fatal(err)
	}
	if res.ProtoMajor != 2 || res.StatusCode != 200 {
		t.Fatalf("proto %s status %d, want HTTP/2 200", res.Proto, res.StatusCode)
	}
	if s := res.TLS.PeerCertificates[0].SerialNumber.Int64(); s != 1001 {
		t.Fatalf("serial %d", s)
	}
	if res, err := get("/untrusted/x"); err != nil || res.StatusCode != http.StatusBadGateway {
		t.Errorf("upstream with an unknown CA: %v %v", res, err)
	}

	// cert-manager renews the files in place; the next handshake after the
	// check interval picks them up, without a restart.
	ca.issue(t, 1002, certFile, keyFile)
	clk.Advance(2 * time.Second)
	res, err = get("/trusted/x")
	if err != nil {
		t.Fatal(err)
	}
	if s := res.TLS.PeerCertificates[0].SerialNumber.Int64(); s != 1002 {
		t.Fatalf("after rotation serial %d, want 1002", s)
	}

	// A broken renewal keeps the working certificate.
	_ = os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	clk.Advance(2 * time.Second)
	if res, err := get("/trusted/x"); err != nil || res.TLS.PeerCertificates[0].SerialNumber.Int64() != 1002 {
		t.Fatalf("broken renewal: %v %v", res, err)
	}

	// TLS 1.1 is refused.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}}
	if _, err := (&http.Client{Transport: tr}).Get(base + "/trusted/x"); err == nil {
		t.Error("TLS 1.1 accepted")
	}
}
