package jwks

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// testKeys are freshly generated keys of every supported kind.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{rsa: rk, ec: newEC(t), ed: newEd(t)}
}

func newEC(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEd(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwkMap serialises raw (public or private) with jwx and returns the JWK
// members, with kid and alg added when non-empty.
func jwkMap(t testing.TB, raw any, kid, alg string) map[string]any {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatalf("import %T: %v", raw, err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

// jwksJSON is a JWKS document holding the given JWKs.
func jwksJSON(t testing.TB, keys ...any) []byte {
	t.Helper()
	if keys == nil {
		keys = []any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// fakeClock is a settable clock for RemoteConfig.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// provider is an OpenID provider serving discovery and a JWKS, counting
// hits and recording the key set requests' headers.
type provider struct {
	t   testing.TB
	srv *httptest.Server

	discoveryHits atomic.Int64
	jwksHits      atomic.Int64

	mu              sync.Mutex
	keys            []any
	rawBody         []byte // served instead of keys when set
	jwksStatus      int    // non-zero: key set answers this status
	discoveryStatus int    // non-zero: discovery answers this status
	issuer          string // discovery "issuer"; "" means the server URL
	jwksURI         string // discovery "jwks_uri"; "" means the server's
	cacheControl    string
	etag            string
	requests        []http.Header
	entered         chan struct{} // each key set request sends here first
	release         chan struct{} // key set requests wait for it to close
}

func newProvider(t testing.TB, keys ...any) *provider {
	t.Helper()
	p := &provider{t: t, keys: keys}
	p.srv = httptest.NewServer(p.handler())
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDiscovery)
	mux.HandleFunc("GET /keys", p.serveJWKS)
	return mux
}

// handlerTransport answers requests in process with a handler, so that
// tests in a synctest bubble need no network.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func (p *provider) URL() string     { return p.srv.URL }
func (p *provider) KeysURL() string { return p.srv.URL + "/keys" }

func (p *provider) set(f func(p *provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// lastRequest returns the headers of the latest key set request.
func (p *provider) lastRequest() http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) == 0 {
		return nil
	}
	return p.requests[len(p.requests)-1]
}

func (p *provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	p.discoveryHits.Add(1)
	p.mu.Lock()
	status, iss, uri := p.discoveryStatus, p.issuer, p.jwksURI
	p.mu.Unlock()
	if status != 0 {
		http.Error(w, "nope", status)
		return
	}
	if iss == "" {
		iss = p.srv.URL
	}
	if uri == "" {
		uri = p.KeysURL()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": uri})
}

func (p *provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	p.jwksHits.Add(1)
	p.mu.Lock()
	p.requests = append(p.requests, r.Header.Clone())
	status, cc, etag, entered, release := p.jwksStatus, p.cacheControl, p.etag, p.entered, p.release
	body := p.rawBody
	if body == nil {
		body = jwksJSON(p.t, p.keys...)
	}
	p.mu.Unlock()

	if entered != nil {
		entered <- struct{}{}
	}
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, "secret-body-text", status)
		return
	}
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// fetchLog collects OnFetch results.
type fetchLog struct {
	mu      sync.Mutex
	results []string
}

func (l *fetchLog) add(r string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, r)
}

func (l *fetchLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.results...)
}
