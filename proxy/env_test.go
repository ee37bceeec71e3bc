package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/serve"
)

// newClock returns a settable test clock at a fixed time.
func newClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
}

// echoed is what the test upstream received.
type echoed = testgw.Echoed

// upstream is a real HTTP upstream that answers with what it received.
func upstream(t testing.TB) string {
	t.Helper()
	return testgw.Upstream(t)
}

// env is an issuer, an upstream and a running gateway on loopback.
type env struct {
	t      testing.TB
	idp    *testidp.Server
	keys   map[string]*testidp.Key
	clock  *testclock.Clock
	gw     *serve.Server
	logs   *testgw.LogBuffer // everything the gateway logged
	url    string            // gateway base URL
	admin  string            // admin base URL
	up     string            // upstream URL
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

// routes are the routes of the gateway the tests run besides public, admin
// and app; %[1]s is the upstream, %[2]s extra routes.
const routes = `  - name: optional
    path_prefix: /opt
    upstream: %[1]q
    auth: optional
    forward_headers: {X-Auth-Request-User: sub}
  - name: legacy
    path_prefix: /legacy
    upstream: %[1]q
    audiences: [legacy-api]
    forward_headers: {X-Auth-Request-User: sub}
  - name: fwd
    path_prefix: /fwd
    upstream: %[1]q
    forward_token: authorization
  - name: fwdhdr
    path_prefix: /fwdhdr
    upstream: %[1]q
    forward_token: X-Forwarded-Access-Token
  - name: ws
    path_prefix: /ws
    upstream: %[1]q
    token_from: [header, "query:access_token", "cookie:tok"]
    forward_headers: {X-Auth-Request-User: sub}
  - name: small
    path_prefix: /small
    upstream: %[1]q
    auth: public
    max_body_bytes: 1024
%[2]s`

// config is the gateway configuration the tests run, with extraRoutes
// (YAML, where "{{upstream}}" stands for the upstream's URL) appended to
// its routes.
func (e *env) config(extraRoutes string) string {
	extraRoutes = strings.ReplaceAll(extraRoutes, "{{upstream}}", strconv.Quote(e.up))
	return testgw.Tokens{Listen: "127.0.0.1:18080", MaxHeaderBytes: 8192, Issuer: e.idp.Issuer, Refetch: "10s",
		LegacySecret: legacySecret, Upstream: e.up, Routes: fmt.Sprintf(routes, e.up, extraRoutes),
		AppHeaders: "{X-Auth-Request-User: sub, X-Auth-Request-Email: email, X-Auth-Request-Groups: groups, X-Tenant: org.tenant}"}.YAML()
}

// newEnv starts everything; extraRoutes is YAML appended to routes.
func newEnv(t testing.TB, extraRoutes string) *env {
	t.Helper()
	return newEnvWith(t, extraRoutes, nil)
}

// newEnvWith is newEnv with a hook run after the issuer and upstream start
// and before the gateway does.
func newEnvWith(t testing.TB, extraRoutes string, before func(*env)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), sleeps: &sleepLog{}}
	e.idp, e.keys = testgw.NewIssuer(t)
	e.up = upstream(t)
	if before != nil {
		before(e)
	}
	e.yml = e.config(extraRoutes)
	log := slog.New(slog.DiscardHandler)
	if _, bench := t.(*testing.B); !bench {
		e.logs = &testgw.LogBuffer{}
		log = testgw.Logger(t, slog.LevelDebug, e.logs)
	}
	g := testgw.Start(t, testgw.Options{Config: func(string) string { return e.yml }, Admin: true,
		Now: e.clock.Now, Sleep: e.sleeps.sleep, Logger: log})
	e.gw, e.url, e.admin = g.Server, g.URL, g.AdminURL
	// A test may stop the gateway itself and check what serving returned.
	e.cancel, e.done = g.Cancel, make(chan error, 1)
	go func() { e.done <- g.Wait() }()
	return e
}

// claims returns valid claims for sub at the test clock's now.
func (e *env) claims(sub string) map[string]any {
	return testgw.Claims(e.idp, sub, e.clock.Now())
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
