package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenConfig trusts one HMAC issuer, so tokens and output are the same on
// every run.
const goldenConfig = `
issuers:
  - issuer: https://legacy.example
    audiences: [orders]
    algorithms: [HS256]
    hmac_secret: "golden-secret-0123456789abcdef0123456789"
    leeway: 30s
routes:
  - name: orders
    path_prefix: /
    upstream: http://127.0.0.1:3000
    require_scopes: [orders.read]
    require_claims: {groups: ops}
    forward_headers: {X-Auth-Request-User: sub, X-Auth-Request-Groups: groups}
`

// TestExplainGolden compares the whole output of explain, for a passing
// token and for each failing check, with testdata/explain/*.golden.
func TestExplainGolden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(goldenConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "https://legacy.example", "sub": "alice", "aud": "orders",
			"scope": "orders.read", "groups": []string{"ops", "dev"}, "jti": "t-1",
			"iat": at.Add(-time.Minute).Unix(), "exp": at.Add(14 * time.Minute).Unix()}
	}
	sign := func(c jwt.MapClaims, secret string, m jwt.SigningMethod) string {
		s, err := jwt.NewWithClaims(m, c).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ok := func(mod func(jwt.MapClaims)) string {
		c := base()
		if mod != nil {
			mod(c)
		}
		return sign(c, "golden-secret-0123456789abcdef0123456789", jwt.SigningMethodHS256)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, base()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name  string
		token string
		code  int
	}{
		{"pass", ok(nil), 0},
		{"expired", ok(func(c jwt.MapClaims) { c["exp"] = at.Add(-time.Minute).Unix() }), 1},
		{"not-yet-valid", ok(func(c jwt.MapClaims) { c["nbf"] = at.Add(time.Hour).Unix() }), 1},
		{"wrong-audience", ok(func(c jwt.MapClaims) { c["aud"] = "billing" }), 1},
		{"wrong-issuer", ok(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), 1},
		{"missing-scope", ok(func(c jwt.MapClaims) { c["scope"] = "orders.write" }), 1},
		{"wrong-claim", ok(func(c jwt.MapClaims) { c["groups"] = []string{"dev"} }), 1},
		{"bad-signature", sign(base(), "another-secret-0123456789abcdef01234567", jwt.SigningMethodHS256), 1},
		{"algorithm-not-allowed", sign(base(), "golden-secret-0123456789abcdef0123456789", jwt.SigningMethodHS384), 1},
		{"alg-none", none, 1},
		{"garbage", "not-a-token", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runWith(context.Background(), []string{"explain", "--config", path, "--route", "orders",
				"--at", at.Format(time.RFC3339), c.token}, strings.NewReader(""), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out.String(), errb.String())
			}
			got := strings.ReplaceAll(out.String(), path, "CONFIG")
			if strings.Contains(got, c.token) {
				t.Fatal("the token was printed")
			}
			checkGolden(t, c.name, got)
		})
	}
}

// rulesConfig is goldenConfig with a route that has methods and rules.
const rulesConfig = goldenConfig + `  - name: docs
    path_prefix: /docs
    upstream: http://127.0.0.1:3000
    methods: [GET, DELETE]
    rules:
      - name: ops-read
        allow: 'request.method == "GET" && "ops" in claims.groups'
      - allow: 'request.method == "DELETE" && "admin" in claims.roles'
      - name: own
        allow: 'request.path.startsWith("/docs/" + claims.sub + "/")'
`

// TestExplainRulesGolden shows each rule's result for a method and path.
func TestExplainRulesGolden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(rulesConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "https://legacy.example", "sub": "alice", "aud": "orders",
		"groups": []string{"ops"}, "iat": at.Add(-time.Minute).Unix(), "exp": at.Add(14 * time.Minute).Unix()}).
		SignedString([]byte("golden-secret-0123456789abcdef0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"rules-allow", []string{"--route", "docs", "--path", "/docs/x"}, 0},
		{"rules-own", []string{"--url", "https://gw.example/docs/alice/a%20b", "--method", "DELETE"}, 0},
		{"rules-none", []string{"--route", "docs", "--method", "DELETE", "--path", "/docs/bob/../x"}, 1},
		{"rules-method", []string{"--route", "docs", "--method", "POST"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"explain", "--config", path, "--at", at.Format(time.RFC3339)}, c.args...)
			code := runWith(context.Background(), append(args, tok), strings.NewReader(""), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out.String(), errb.String())
			}
			checkGolden(t, c.name, out.String())
		})
	}
}

// checkGolden compares got with testdata/explain/name.golden, or writes it
// there with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", "explain", name+".golden")
	if *update {
		_ = os.MkdirAll(filepath.Dir(golden), 0o755)
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}
