package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/portcullis-dev/portcullis/jwks"
)

// upstreamTLS returns the TLS settings for an upstream whose certificates
// are checked against the CA bundle in caFile ("" means the system roots).
func upstreamTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pool, err := caPool(caFile, "upstream ca")
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// caPool reads a PEM bundle of CA certificates; what names it in errors.
func caPool(file, what string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", what, file)
	}
	return pool, nil
}

// remoteCache keeps issuers' key sets across reloads, keyed by everything
// that configures them.
type remoteCache struct {
	ctx context.Context
	mu  sync.Mutex
	m   map[string]*remoteEntry
}

type remoteEntry struct {
	r      *jwks.Remote
	cancel context.CancelFunc
}

func newRemoteCache(ctx context.Context) *remoteCache {
	return &remoteCache{ctx: ctx, m: map[string]*remoteEntry{}}
}

// get returns the running key set for cfg, starting one if needed.
func (c *remoteCache) get(cfg jwks.RemoteConfig) *jwks.Remote {
	key := fmt.Sprintf("%s|%s|%v|%v|%v|%v", cfg.Issuer, cfg.JWKSURI, cfg.MinAge, cfg.MaxAge, cfg.RefetchInterval, cfg.Timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		return e.r
	}
	ctx, cancel := context.WithCancel(c.ctx)
	r := jwks.NewRemote(ctx, cfg)
	go r.Run()
	c.m[key] = &remoteEntry{r: r, cancel: cancel}
	return r
}

// retain stops every key set not in used.
func (c *remoteCache) retain(used []*jwks.Remote) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		keep := false
		for _, r := range used {
			keep = keep || r == e.r
		}
		if !keep {
			e.cancel()
			delete(c.m, k)
		}
	}
}

// handlerTransport is an http.RoundTripper that serves requests with a
// handler in this process: the gateway talks to its own issuer without a
// network hop, whatever its public URL resolves to.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &bufferedResponse{header: http.Header{}}
	in := req.Clone(req.Context())
	in.RemoteAddr = "127.0.0.1:0"
	in.RequestURI = req.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
