package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/proxy"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// echoed is what the test upstream received.
type echoed struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

// upstream is a real HTTP upstream that answers with what it received.
func upstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, URI: r.RequestURI, Host: r.Host, Headers: r.Header})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// env is an issuer, an upstream and a running gateway on loopback.
type env struct {
	t      testing.TB
	idp    *testidp.Server
	keys   map[string]*testidp.Key
	clock  *clock
	gw     *proxy.Gateway
	logs   *lockedBuffer // everything the gateway logged
	url    string        // gateway base URL
	admin  string        // admin base URL
	up     string        // upstream URL
	cancel context.CancelFunc
	done   chan error
	sleeps *sleepLog // answers the gateway held back
	yml    string    // the configuration it runs
}

// sleepLog records the gateway's waits instead of waiting.
type sleepLog struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepLog) sleep(_ context.Context, d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// take returns and forgets the waits so far.
func (s *sleepLog) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	s.d = nil
	return d
}

const legacySecret = "0123456789abcdef0123456789abcdef-legacy"

// baseConfig is the gateway configuration the tests run; %[1]s is the
// issuer URL, %[2]s the upstream, %[3]s extra routes.
const baseConfig = `
server:
  listen: 127.0.0.1:18080
  trusted_proxies: [10.99.0.0/16]
  max_header_bytes: 8192
admin: {listen: off}
log: {level: debug}
issuers:
  - issuer: %[1]q
    audiences: [api]
    algorithms: [RS256, PS256, ES256, EdDSA]
    leeway: 30s
    jwks_refetch_interval: 10s
  - issuer: https://legacy.example
    audiences: [legacy-api]
    algorithms: [HS256]
    hmac_secret: %[4]q
routes:
  - name: public
    path_prefix: /public
    upstream: %[2]q
    auth: public
  - name: optional
    path_prefix: /opt
    upstream: %[2]q
    auth: optional
    forward_headers: {X-Auth-Request-User: sub}
  - name: admin
    path_prefix: /admin
    upstream: %[2]q
    require_claims: {groups: admin}
    forward_headers: {X-Auth-Request-User: sub}
  - name: legacy
    path_prefix: /legacy
    upstream: %[2]q
    audiences: [legacy-api]
    forward_headers: {X-Auth-Request-User: sub}
  - name: fwd
    path_prefix: /fwd
    upstream: %[2]q
    forward_token: authorization
  - name: fwdhdr
    path_prefix: /fwdhdr
    upstream: %[2]q
    forward_token: X-Forwarded-Access-Token
  - name: ws
    path_prefix: /ws
    upstream: %[2]q
    token_from: [header, "query:access_token", "cookie:tok"]
    forward_headers: {X-Auth-Request-User: sub}
  - name: small
    path_prefix: /small
    upstream: %[2]q
    auth: public
    max_body_bytes: 1024
  - name: app
    path_prefix: /
    upstream: %[2]q
    require_scopes: [read]
    forward_headers:
      X-Auth-Request-User: sub
      X-Auth-Request-Email: email
      X-Auth-Request-Groups: groups
      X-Tenant: org.tenant
%[3]s`

// newEnv starts everything; extraRoutes is YAML appended to routes.
func newEnv(t testing.TB, extraRoutes string) *env {
	t.Helper()
	return newEnvWith(t, extraRoutes, nil)
}

// newEnvWith is newEnv with a hook run after the issuer and upstream start
// and before the gateway does.
func newEnvWith(t testing.TB, extraRoutes string, before func(*env)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), keys: map[string]*testidp.Key{}, sleeps: &sleepLog{}}
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		e.keys[alg] = testidp.NewKey(t, alg, "k-"+alg)
	}
	e.idp = testidp.New(t, e.keys["RS256"], e.keys["PS256"], e.keys["ES256"], e.keys["EdDSA"])
	e.up = upstream(t)
	if before != nil {
		before(e)
	}
	yml := fmt.Sprintf(baseConfig, e.idp.Issuer, e.up, extraRoutes, legacySecret)
	e.yml = yml
	cfg, err := config.Parse("test.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	log := slog.New(slog.DiscardHandler)
	if _, bench := t.(*testing.B); !bench {
		e.logs = &lockedBuffer{}
		log = slog.New(slog.NewTextHandler(testWriter{t, e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e.gw, err = proxy.New(ctx, proxy.Config{Config: cfg, Logger: log, Now: e.clock.Now, Sleep: e.sleeps.sleep})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url, e.admin = "http://"+ln.Addr().String(), "http://"+aln.Addr().String()
	e.done = make(chan error, 1)
	go func() { e.done <- e.gw.Serve(ctx, ln, aln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-e.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

type testWriter struct {
	t   testing.TB
	buf *lockedBuffer // optional copy of everything logged
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	if w.buf != nil {
		w.buf.Write(p)
	}
	return len(p), nil
}

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// claims returns valid claims for sub at the test clock's now.
func (e *env) claims(sub string) map[string]any {
	c := e.idp.Claims(sub, e.clock.Now())
	c["email"] = sub + "@example.com"
	c["groups"] = []string{"admin", "dev"}
	c["org"] = map[string]any{"tenant": "acme"}
	return c
}

// mint signs claims with the key for alg.
func (e *env) mint(alg string, claims map[string]any, header map[string]any) string {
	return testidp.Mint(e.t, e.keys[alg], claims, header)
}

// do sends a request to the gateway; token "" sends none.
func (e *env) do(method, path, token string, hdr http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { res.Body.Close() })
	return res
}

// echo decodes the upstream's echo from a 200 response.
func (e *env) echo(res *http.Response) echoed {
	e.t.Helper()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		e.t.Fatalf("status %d, want 200; WWW-Authenticate %q; body %q", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}
	var got echoed
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		e.t.Fatal(err)
	}
	return got
}

// get fetches an admin URL.
func (e *env) getAdmin(path string) (int, string) {
	e.t.Helper()
	res, err := http.Get(e.admin + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// heldEnv is an env whose issuer holds JWKS responses until released.
type heldEnv struct {
	*env
	release func()
}

// newEnvHeld starts an env whose first key fetch is held open.
func newEnvHeld(t *testing.T) heldEnv {
	t.Helper()
	var release func()
	e := newEnvWith(t, "", func(e *env) { _, release = e.idp.Hold() })
	t.Cleanup(release)
	return heldEnv{env: e, release: release}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
