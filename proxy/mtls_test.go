package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// clientCert issues a client certificate and returns it with its x5t#S256.
func (ca *testCA) clientCert(t *testing.T, serial int64, name string) (tls.Certificate, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateBoundTokens: RFC 8705 §3 on a TLS listener with client
// certificates, and behind a proxy that ends TLS and passes the
// certificate in a header.
func TestCertificateBoundTokens(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.pem")
	ca.issue(t, 10, certFile, keyFile)
	ca.writeCert(t, caFile)
	alice, aliceX5T := ca.clientCert(t, 11, "alice")
	other, _ := ca.clientCert(t, 12, "other")
	stranger, _ := newTestCA(t).clientCert(t, 13, "stranger")

	idp, keys := testgw.NewIssuer(t)
	up := upstream(t)
	ln, _ := testgw.Listen(t)
	base := "https://" + ln.Addr().String()
	issuers := "issuers:\n  - issuer: \"" + idp.Issuer + "\"\n    audiences: [api]\n    algorithms: [ES256]\n"
	routes := fmt.Sprintf("routes:\n  - name: bound\n    path_prefix: /bound\n    upstream: %q\n    require_sender_constraint: mtls\n  - name: app\n    path_prefix: /\n    upstream: %q\n", up, up)
	testgw.Start(t, testgw.Options{Listener: ln, Config: func(string) string {
		return fmt.Sprintf("server:\n  public_url: %q\n  tls: {cert_file: %q, key_file: %q, client_ca_file: %q}\nadmin: {listen: off}\n", base, certFile, keyFile, caFile) + issuers + routes
	}})
	c := testgw.Claims(idp, "alice", time.Now())
	c["cnf"] = map[string]any{"x5t#S256": aliceX5T}
	bound := testidp.Mint(t, keys["ES256"], c, nil)
	plain := testidp.Mint(t, keys["ES256"], testgw.Claims(idp, "bob", time.Now()), nil)

	call := func(u string, cert *tls.Certificate, token string, hdr http.Header) (int, error) {
		tc := &tls.Config{RootCAs: ca.pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			req.Header[k] = v
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	for _, tc := range []struct {
		name, path, token string
		cert              *tls.Certificate
		want              int
	}{
		{"bound token, its certificate", "/x", bound, &alice, 200},
		{"bound token, its certificate, mtls route", "/bound/x", bound, &alice, 200},
		{"bound token, another certificate", "/x", bound, &other, 401},
		{"bound token, no certificate", "/x", bound, nil, 401},
		{"plain token on the mtls route", "/bound/x", plain, &alice, 401},
		{"plain token elsewhere", "/x", plain, nil, 200},
	} {
		got, err := call(base+tc.path, tc.cert, tc.token, nil)
		if err != nil || got != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, got, err, tc.want)
		}
	}
	// A certificate of another CA fails the handshake.
	if _, err := call(base+"/x", &stranger, bound, nil); err == nil {
		t.Error("a certificate of an unknown CA was accepted")
	}

	// Behind a proxy that ends TLS: the certificate in a header, from
	// trusted proxies only.
	pemOf := func(der []byte) string {
		return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	}
	sum := sha256.Sum256(alice.Certificate[0])
	for _, h := range []struct {
		format, trusted, value string
		want                   int
	}{
		{"xfcc", "127.0.0.1", `By=spiffe://proxy;Hash=` + hex.EncodeToString(sum[:]) + `;Subject="CN=alice"`, 200},
		{"xfcc", "127.0.0.1", `Hash=` + strings.Repeat("ab", 32) + `,Cert="` + pemOf(alice.Certificate[0]) + `"`, 200},
		{"xfcc", "127.0.0.1", `Cert="` + pemOf(alice.Certificate[0]) + `",Cert="` + pemOf(other.Certificate[0]) + `"`, 401},
		{"pem", "127.0.0.1", pemOf(alice.Certificate[0]), 200},
		{"pem", "127.0.0.1", pemOf(other.Certificate[0]), 401},
		{"pem", "10.99.0.0/16", pemOf(alice.Certificate[0]), 401}, // from an untrusted address
	} {
		g := testgw.Start(t, testgw.Options{Config: func(b string) string {
			return fmt.Sprintf("server:\n  public_url: %q\n  trusted_proxies: [%q]\n  tls: {client_cert_header: {name: X-Client-Cert, format: %s}}\nadmin: {listen: off}\n", b, h.trusted, h.format) + issuers + routes
		}})
		req, _ := http.NewRequest("GET", g.URL+"/bound/x", nil)
		req.Header.Set("Authorization", "Bearer "+bound)
		req.Header.Set("X-Client-Cert", h.value)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != h.want {
			t.Errorf("%s header %.60q from %s: %d, want %d", h.format, h.value, h.trusted, res.StatusCode, h.want)
		}
	}
	_ = os.Remove(caFile)
}
