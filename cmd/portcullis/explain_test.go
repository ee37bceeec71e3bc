package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/dpop/prooftest"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// explainConfig writes a configuration trusting idp to a temporary file.
func explainConfig(t *testing.T, idp *testidp.Server) string {
	t.Helper()
	cfg := `issuers:
  - issuer: "` + idp.Issuer + `"
    audiences: ["demo-api"]
    algorithms: ["ES256", "RS256"]
    leeway: 30s
routes:
  - name: app
    path_prefix: /
    upstream: "http://127.0.0.1:3000"
    require_scopes: [read]
    require_claims: {groups: admin}
    forward_headers: {X-Auth-Request-User: sub}
  - name: open
    path_prefix: /public
    upstream: "http://127.0.0.1:3000"
    auth: public
  - name: tenants
    host: "*.tenant.example"
    path_prefix: /
    upstream: "http://127.0.0.1:3000"
    auth: public
  - name: docs
    host: docs.example
    path_prefix: /v1
    upstream: "http://127.0.0.1:3000"
    auth: public
`
	path := filepath.Join(t.TempDir(), "portcullis.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExplain(t *testing.T) {
	key := testidp.NewKey(t, "ES256", "abc")
	idp := testidp.New(t, key)
	path := explainConfig(t, idp)
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := idp.Claims("alice", now)
		c["aud"] = "demo-api"
		c["scope"] = "openid read"
		c["groups"] = []any{"admin"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	other := testidp.NewKey(t, "ES256", "abc")
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims(nil))).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := testidp.Mint(t, key, claims(nil), nil)
	dk := prooftest.NewKey(t)
	bound := testidp.Mint(t, key, claims(func(c map[string]any) { c["cnf"] = map[string]any{"jkt": dk.JKT} }), nil)
	proofFor := func(u string) string { return dk.Proof(t, "GET", u, bound, now, nil) }

	cases := []struct {
		name   string
		args   []string // after explain --config FILE
		stdin  string
		code   int
		stdout []string
		stderr []string
	}{
		{"valid", []string{"--route", "app", valid}, "", 0, []string{
			"route     app (path_prefix /, auth required)",
			"PASS  format        compact JWS, 3 segments",
			"PASS  header        alg ES256, kid abc, typ JWT",
			"PASS  issuer        iss " + idp.Issuer + " is configured",
			"PASS  algorithm     ES256 is in the issuer's allow-list [ES256 RS256]",
			"PASS  key           kid abc found in the issuer's key set (EC P-256 ES256)",
			"PASS  signature     valid",
			"PASS  exp           expires ",
			"leeway 30s",
			"SKIP  nbf           not set",
			"PASS  aud           [demo-api] contains demo-api",
			"PASS  scope         granted openid read (requires read)",
			"PASS  claim groups  [admin] contains admin",
			"result: the gateway forwards the request to the upstream",
			"identity headers: X-Auth-Request-User: alice",
		}, nil},
		{"DPoP-bound with its proof", []string{"--url", "https://gw.example/orders", "--dpop", proofFor("https://gw.example/orders"), bound}, "", 0, []string{
			"PASS  dpop          a proof of the token's key " + dk.JKT + " for GET https://gw.example/orders",
			"result: the gateway forwards the request to the upstream",
		}, nil},
		{"DPoP-bound without a proof", []string{"--route", "app", bound}, "", 1, []string{
			"FAIL  dpop          the token is DPoP-bound",
			"result: the gateway answers 401 invalid_token",
		}, []string{"refuse"}},
		{"DPoP proof for another URL", []string{"--url", "https://gw.example/orders", "--dpop", proofFor("https://gw.example/other"), bound}, "", 1, []string{
			"FAIL  dpop          the proof's htu is not the request's URL",
		}, []string{"refuse"}},
		{"--dpop without --url", []string{"--route", "app", "--dpop", "x", bound}, "", 2, nil, []string{"--dpop needs --url"}},
		{"token on stdin", []string{"--route", "app", "-"}, "Bearer " + valid + "\n", 0, []string{"PASS  signature     valid"}, nil},
		{"token on stdin, no argument", []string{"--route", "app"}, valid, 0, []string{"result: the gateway forwards"}, nil},
		{"flags after the token", []string{valid, "--route", "app"}, "", 0, []string{"result: the gateway forwards"}, nil},
		{"expired", []string{"--route", "app", testidp.Mint(t, key, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }), nil)}, "", 1, []string{
			"PASS  signature     valid",
			"FAIL  exp           expired ",
			"(1h ago), leeway 30s",
			"result: the gateway answers 401 invalid_token (token expired)",
		}, []string{"refuse"}},
		{"wrong aud", []string{"--route", "app", testidp.Mint(t, key, claims(func(c map[string]any) { c["aud"] = "other-api" }), nil)}, "", 1, []string{
			"FAIL  aud           [other-api] contains none of the issuer's audiences [demo-api]",
			"result: the gateway answers 401 invalid_token (aud does not match)",
		}, nil},
		{"missing scope", []string{"--route", "app", testidp.Mint(t, key, claims(func(c map[string]any) { c["scope"] = "openid profile" }), nil)}, "", 1, []string{
			"FAIL  scope         missing read (granted: openid profile)",
			"PASS  claim groups  [admin] contains admin",
			"result: the gateway answers 403 insufficient_scope (missing scope)",
		}, nil},
		{"bad signature", []string{"--route", "app", testidp.Mint(t, other, claims(nil), nil)}, "", 1, []string{
			"PASS  key           kid abc found",
			"FAIL  signature     invalid: the gateway stops here",
			"PASS  aud           [demo-api] contains demo-api (unverified)",
			"result: the gateway answers 401 invalid_token (signature invalid)",
		}, nil},
		{"alg none", []string{"--route", "app", none}, "", 1, []string{
			"PASS  header        alg none",
			"FAIL  algorithm     alg none (an unsigned token) is never accepted",
			"SKIP  signature     no key to check it with",
			"result: the gateway answers 401 invalid_token",
		}, nil},
		{"garbage", []string{"--route", "app", "definitely-not-a-jwt"}, "", 1, []string{
			"FAIL  format        1 segment(s), want 3",
			"SKIP  signature     the token could not be decoded",
			"result: the gateway answers 401 invalid_token (token is not a compact JWS)",
		}, nil},
		{"public route", []string{"--route", "open", "x.y.z"}, "", 0, []string{
			"route     open (path_prefix /public, auth public)",
			"result: the route is public",
		}, nil},
		{"unknown route", []string{"--route", "nope", valid}, "", 2, nil, []string{`no route named "nope"; its routes are: app, open, tenants, docs`}},
		{"url, host-less", []string{"--url", "http://localhost:8080/public/../public/x", valid}, "", 0, []string{
			"route     open (path_prefix /public, auth public)",
			"chosen    no route names host localhost; the routes without a host are candidates; path_prefix /public is the longest that matches /public/x",
		}, nil},
		{"url, wildcard", []string{"--url", "https://A.Tenant.Example./public/x", valid}, "", 0, []string{
			"route     tenants (host *.tenant.example, path_prefix /, auth public)",
			`chosen    host a.tenant.example matches host: "*.tenant.example"; only routes with that host are candidates; path_prefix / is the longest that matches /public/x`,
		}, nil},
		{"url, exact host without the path", []string{"--url", "https://docs.example/public/x", valid}, "", 1, nil, []string{
			"host docs.example has routes of its own (host: docs.example); only they are candidates, and none has a path_prefix for /public/x: the gateway answers 404",
		}},
		{"url, exact host", []string{"--url", "https://docs.example/v1/a", valid}, "", 0, []string{
			"chosen    host docs.example has routes of its own",
		}, nil},
		{"url and route", []string{"--url", "https://docs.example/v1/a", "--route", "app", valid}, "", 2, nil, []string{"usage: portcullis explain"}},
		{"url not absolute", []string{"--url", "/v1/a", valid}, "", 2, nil, []string{`"/v1/a" is not an absolute http(s) URL`}},
		{"no route flag", []string{valid}, "", 2, nil, []string{"usage: portcullis explain"}},
		{"two tokens", []string{"--route", "app", valid, valid}, "", 2, nil, []string{"usage: portcullis explain"}},
		{"empty stdin", []string{"--route", "app", "-"}, "\n", 2, nil, []string{"no token"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"explain", "--config", path}, c.args...)
			code := runWith(t.Context(), args, strings.NewReader(c.stdin), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out.String(), errb.String())
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			for _, a := range c.args {
				if len(a) > 60 && strings.Contains(out.String()+errb.String(), a) { // a token, not a URL
					t.Errorf("output shows the token")
				}
			}
			if strings.Contains(errb.String(), "panic") {
				t.Errorf("panic:\n%s", errb.String())
			}
		})
	}
}

// TestExplainKeysDown: with the issuer's key set unreachable the gateway
// has no verdict and answers 503; explain says so and exits 1.
func TestExplainKeysDown(t *testing.T) {
	key := testidp.NewKey(t, "ES256", "abc")
	idp := testidp.New(t, key)
	path := explainConfig(t, idp)
	c := idp.Claims("alice", time.Now())
	tok := testidp.Mint(t, key, c, nil)
	idp.SetDown(true)
	var out, errb bytes.Buffer
	code := runWith(context.Background(), []string{"explain", "--config", path, "--route", "app", tok}, strings.NewReader(""), &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, s := range []string{"FAIL  key           the issuer's keys could not be loaded", "result: the gateway answers 503"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, out.String())
		}
	}
	if hits := idp.JWKSHits(); hits > 1 {
		t.Errorf("key set fetched %d times, want at most once", hits)
	}
}

// TestExplainBuiltinIssuer explains a token minted by `portcullis token`
// with the built-in issuer's keys from key_dir.
func TestExplainBuiltinIssuer(t *testing.T) {
	t.Setenv("PORTCULLIS_CLIENT_SECRET", "a-client-secret-for-tests")
	dir := t.TempDir()
	cfg := `issuers:
  - issuer: "http://localhost:8080/idp"
    audiences: ["demo-api"]
routes:
  - name: app
    upstream: "http://127.0.0.1:3000"
    require_scopes: [read]
    forward_headers: {X-Auth-Request-User: sub}
issuer:
  url: "http://localhost:8080/idp"
  signing: {algorithm: ES256, key_dir: "` + filepath.Join(dir, "keys") + `"}
  clients:
    - id: portcullis
      secret: "${PORTCULLIS_CLIENT_SECRET}"
      redirect_uris: ["http://localhost:8080/oauth2/callback"]
      scopes: [openid, read]
      audiences: [demo-api]
  scopes: {read: "Read your data"}
`
	path := filepath.Join(dir, "portcullis.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Before any key was written, explain says the keys are unknown.
	var out, errb bytes.Buffer
	code := runWith(context.Background(), []string{"explain", "--config", path, "--route", "app", "a.b.c"}, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "does not exist yet: the built-in issuer's keys are unknown here") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "keys")); err == nil {
		t.Error("explain created the key directory")
	}

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"token", "--config", path, "--client", "portcullis", "--sub", "alice", "--scope", "read"}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	out.Reset()
	code = runWith(context.Background(), []string{"explain", "--config", path, "--route", "app", "-"}, strings.NewReader(tok+"\n"), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, s := range []string{
		"PASS  key           kid ",
		"PASS  signature     valid",
		"SKIP  revocation    jti ",
		"revocation list is in the running server's memory",
		"identity headers: X-Auth-Request-User: alice",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), tok) {
		t.Error("output shows the token")
	}
}
