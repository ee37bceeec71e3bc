package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves a certificate from files that may be replaced while
// running (cert-manager renews them in place): at most once per interval a
// handshake checks the files and, if they changed and parse, swaps the
// certificate. A bad new pair is logged and the old one kept.
type certReloader struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	digest  [32]byte
	checked time.Time
}

func newCertReloader(certFile, keyFile string, now func() time.Time, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, interval: time.Second, now: now, log: log}
	cert, digest, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert, c.digest, c.checked = cert, digest, now()
	return c, nil
}

func (c *certReloader) load() (*tls.Certificate, [32]byte, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("proxy: tls: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("proxy: tls: %w", err)
	}
	digest := sha256.Sum256(append(append([]byte{}, certPEM...), keyPEM...))
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, digest, fmt.Errorf("proxy: tls: %s and %s: %w", c.certFile, c.keyFile, err)
	}
	return &cert, digest, nil
}

// getCertificate is tls.Config.GetCertificate.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= c.interval {
		c.checked = now
		cert, digest, err := c.load()
		switch {
		case digest == c.digest:
		case err != nil:
			c.log.Error("tls certificate not reloaded; keeping the current one", "err", err)
			c.digest = digest // do not retry the same broken files
		default:
			c.cert, c.digest = cert, digest
			if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
				c.log.Info("tls certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
			}
		}
	}
	return c.cert, nil
}

// serverTLSConfig is TLS 1.2 or later with HTTP/2.
func serverTLSConfig(r *certReloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
