package attack_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

const legacySecret = "0123456789abcdef0123456789abcdef-legacy"

// tokenRoutes are the routes of the gateway the token, transport and proxy
// attacks run against besides public, admin and app; %[1]s is the upstream.
const tokenRoutes = `  - name: legacy
    path_prefix: /legacy
    upstream: %[1]q
    audiences: [legacy-api]
  - name: query
    path_prefix: /q
    upstream: %[1]q
    token_from: [header, "query:access_token"]
    forward_headers: {X-Auth-Request-User: sub}
`

// config is the configuration of the gateway the token, transport and
// proxy attacks run against. Issuer A publishes RS256, PS256, ES256 and
// EdDSA keys; issuer B publishes one ES256 key under the same kid as A's;
// issuer C requires typ at+jwt (RFC 9068); the legacy issuer has an HMAC
// secret. The header limit is large so that very long tokens reach the
// authenticator.
func (e *tokenEnv) config() string {
	return testgw.Tokens{Listen: "127.0.0.1:18090", MaxHeaderBytes: 4194304, Issuer: e.a.Issuer,
		Issuers: fmt.Sprintf(`  - issuer: %q
    audiences: [api]
    algorithms: [ES256]
  - issuer: %q
    audiences: [api]
    algorithms: [ES256]
    typ: at+jwt
`, e.b.Issuer, e.c.Issuer),
		LegacySecret: legacySecret, Upstream: e.up.URL, Routes: fmt.Sprintf(tokenRoutes, e.up.URL),
		AppHeaders: "{X-Auth-Request-User: sub, X-Auth-Request-Email: email, X-Tenant: org.tenant}"}.YAML()
}

// tokenEnv is three JWKS issuers, an upstream, an attacker's server and a
// gateway trusting the issuers.
type tokenEnv struct {
	*gateway
	t       testing.TB
	clk     *testclock.Clock
	a, b, c *testidp.Server
	keys    map[string]*testidp.Key // issuer A's keys by alg
	bKey    *testidp.Key            // issuer B's, kid "k-ES256" like A's
	cKey    *testidp.Key
	up      *recorder
	trap    *trap
}

func newTokenEnv(t testing.TB) *tokenEnv {
	t.Helper()
	e := &tokenEnv{t: t, clk: newClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))}
	e.a, e.keys = testgw.NewIssuer(t)
	e.bKey = testidp.NewKey(t, "ES256", "k-ES256")
	e.b = testidp.New(t, e.bKey)
	e.cKey = testidp.NewKey(t, "ES256", "c-ES256")
	e.c = testidp.New(t, e.cKey)
	e.up = newRecorder(t)
	e.trap = newTrap(t)
	e.gateway = startGateway(t, e.clk, func(string) string { return e.config() })
	// Load every issuer's keys before the attacks start.
	for _, tok := range []string{e.mint("ES256", e.claims("warmup"), nil), e.mintWith(e.bKey, e.claimsFor(e.b, "warmup"), nil),
		e.mintWith(e.cKey, e.claimsFor(e.c, "warmup"), map[string]any{"typ": "at+jwt"})} {
		if res, body := send(t, "GET", e.url+"/", bearer(tok)); res.StatusCode != 200 {
			t.Fatalf("warm-up: %d %s %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
		}
	}
	return e
}

// claims are valid claims of issuer A for sub at the env's now.
func (e *tokenEnv) claims(sub string) map[string]any { return e.claimsFor(e.a, sub) }

func (e *tokenEnv) claimsFor(s *testidp.Server, sub string) map[string]any {
	return testgw.Claims(s, sub, e.clk.Now())
}

// with returns issuer A's claims for mallory changed by mod.
func (e *tokenEnv) with(mod func(c map[string]any)) map[string]any {
	c := e.claims("mallory")
	mod(c)
	return c
}

// mint signs claims with issuer A's key for alg.
func (e *tokenEnv) mint(alg string, claims, header map[string]any) string {
	return testidp.Mint(e.t, e.keys[alg], claims, header)
}

func (e *tokenEnv) mintWith(k *testidp.Key, claims, header map[string]any) string {
	return testidp.Mint(e.t, k, claims, header)
}

// signRaw signs a hand-written header and payload (JSON text, so duplicate
// and odd keys survive) with k.
func (e *tokenEnv) signRaw(k *testidp.Key, header, payload string) string {
	in := b64(header) + "." + b64(payload)
	return in + "." + testidp.SignInput(e.t, k, in)
}

// payload is issuer A's valid claims for sub as JSON text without the
// closing brace, so a case can append members.
func (e *tokenEnv) payload(sub string) string {
	b, _ := json.Marshal(e.claims(sub))
	return string(b[:len(b)-1])
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// get sends GET path with the token as a bearer token ("" sends none).
func (e *tokenEnv) get(path, token string) (*http.Response, string) {
	e.t.Helper()
	var h http.Header
	if token != "" {
		h = bearer(token)
	}
	return send(e.t, "GET", e.url+path, h)
}
