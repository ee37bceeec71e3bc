package proxy_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/testidp"
)

func TestValidTokensPassWithIdentity(t *testing.T) {
	e := newEnv(t, "")
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			tok := e.mint(alg, e.claims("alice-"+alg), nil)
			got := e.echo(e.do("GET", "/orders/7?x=1", tok, nil))
			want := map[string]string{
				"X-Auth-Request-User":   "alice-" + alg,
				"X-Auth-Request-Email":  "alice-" + alg + "@example.com",
				"X-Auth-Request-Groups": "admin,dev",
				"X-Tenant":              "acme",
			}
			for h, v := range want {
				if g := strings.Join(got.Headers[h], "|"); g != v {
					t.Errorf("%s = %q, want %q", h, g, v)
				}
			}
			if _, ok := got.Headers["Authorization"]; ok {
				t.Error("token forwarded to upstream on a forward_token: none route")
			}
			if got.URI != "/orders/7?x=1" {
				t.Errorf("upstream URI %q", got.URI)
			}
			if got.Headers["X-Forwarded-For"] == nil || got.Headers["X-Forwarded-Proto"][0] != "http" {
				t.Errorf("X-Forwarded-* not set: %v", got.Headers)
			}
		})
	}
}

func TestLegacyHMACIssuer(t *testing.T) {
	e := newEnv(t, "")
	legacy := func(secret []byte, alg jwt.SigningMethod, iss string) string {
		now := e.clock.Now()
		s, err := jwt.NewWithClaims(alg, jwt.MapClaims{
			"iss": iss, "sub": "bob", "aud": "legacy-api", "exp": now.Add(time.Hour).Unix(),
		}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	got := e.echo(e.do("GET", "/legacy/x", legacy([]byte(legacySecret), jwt.SigningMethodHS256, "https://legacy.example"), nil))
	if got.Headers["X-Auth-Request-User"][0] != "bob" {
		t.Errorf("identity %v", got.Headers)
	}
	cases := map[string]string{
		"wrong secret":            legacy([]byte("another-secret-of-at-least-32-bytes!!"), jwt.SigningMethodHS256, "https://legacy.example"),
		"HS384 not allowed":       legacy([]byte(legacySecret), jwt.SigningMethodHS384, "https://legacy.example"),
		"secret used for idp iss": legacy([]byte(legacySecret), jwt.SigningMethodHS256, e.idp.Issuer),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			res := e.do("GET", "/legacy/x", tok, nil)
			expectChallenge(t, res, 401, "invalid_token")
		})
	}
}

// expectChallenge checks status and the RFC 6750 error code.
func expectChallenge(t *testing.T, res *http.Response, status int, code string) string {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d (WWW-Authenticate %q)", res.StatusCode, status, res.Header.Get("WWW-Authenticate"))
	}
	wa := res.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(wa, `Bearer realm="`) {
		t.Fatalf("WWW-Authenticate %q, want a Bearer challenge", wa)
	}
	if code == "" {
		if strings.Contains(wa, "error=") {
			t.Fatalf("WWW-Authenticate %q has an error code for a request without a token", wa)
		}
		return wa
	}
	if !strings.Contains(wa, `error="`+code+`"`) {
		t.Fatalf("WWW-Authenticate %q, want error=%q", wa, code)
	}
	return wa
}

func TestRejectedTokens(t *testing.T) {
	e := newEnv(t, "")
	now := e.clock.Now()
	with := func(mod func(c map[string]any)) map[string]any {
		c := e.claims("mallory")
		mod(c)
		return c
	}
	rsaPub := e.keys["RS256"].Public().(*rsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hmacWith := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(e.claims("mallory")))
		tok.Header["kid"] = "k-RS256"
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	unsigned := func(alg string) string {
		h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "kid": "k-RS256"})
		c, _ := json.Marshal(e.claims("mallory"))
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
	}
	// An attacker's own key, advertised through headers that must be ignored.
	attacker := testidp.NewKey(t, "ES256", "attacker")
	var attackerHits atomic.Int64
	attackerJWKS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
	}))
	defer attackerJWKS.Close()
	point, err := attacker.Public().(*ecdsa.PublicKey).Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		t.Fatal(err)
	}
	jwkHeader := map[string]any{
		"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(point[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(point[33:]),
	}

	cases := []struct {
		name   string
		path   string
		token  string
		status int
		code   string
		desc   string // substring of error_description
	}{
		{"garbage", "/", "garbage", 401, "invalid_token", "compact JWS"},
		{"two dots garbage", "/", "a.b.c", 401, "invalid_token", "malformed"},
		{"jwe five parts", "/", "a.b.c.d.e", 401, "invalid_token", "encrypted"},
		{"alg none", "/", unsigned("none"), 401, "invalid_token", "algorithm"},
		{"alg NONE", "/", unsigned("NONE"), 401, "invalid_token", "algorithm"},
		{"alg None", "/", unsigned("None"), 401, "invalid_token", "algorithm"},
		{"alg nOnE", "/", unsigned("nOnE"), 401, "invalid_token", "algorithm"},
		{"HS256 with RSA public key PEM", "/", hmacWith(pemKey), 401, "invalid_token", "algorithm"},
		{"HS256 with RSA public key DER", "/", hmacWith(der), 401, "invalid_token", "algorithm"},
		{"unknown kid", "/", testidp.Mint(t, testidp.NewKey(t, "ES256", "nope"), e.claims("mallory"), nil), 401, "invalid_token", "kid"},
		{"wrong iss", "/", e.mint("ES256", with(func(c map[string]any) { c["iss"] = "https://evil.example" }), nil), 401, "invalid_token", "issuer"},
		{"iss case variant", "/", e.mint("ES256", with(func(c map[string]any) { c["iss"] = strings.ToUpper(e.idp.Issuer) }), nil), 401, "invalid_token", "issuer"},
		{"missing iss", "/", e.mint("ES256", with(func(c map[string]any) { delete(c, "iss") }), nil), 401, "invalid_token", "iss"},
		{"wrong aud", "/", e.mint("ES256", with(func(c map[string]any) { c["aud"] = "other" }), nil), 401, "invalid_token", "aud"},
		{"aud substring", "/", e.mint("ES256", with(func(c map[string]any) { c["aud"] = "ap" }), nil), 401, "invalid_token", "aud"},
		{"aud empty array", "/", e.mint("ES256", with(func(c map[string]any) { c["aud"] = []string{} }), nil), 401, "invalid_token", "aud"},
		{"aud number", "/", e.mint("ES256", with(func(c map[string]any) { c["aud"] = 7 }), nil), 401, "invalid_token", "aud"},
		{"AUD upper case only", "/", e.mint("ES256", with(func(c map[string]any) { delete(c, "aud"); c["AUD"] = "api" }), nil), 401, "invalid_token", "aud"},
		{"expired beyond leeway", "/", e.mint("ES256", with(func(c map[string]any) { c["exp"] = now.Add(-31 * time.Second).Unix() }), nil), 401, "invalid_token", "expired"},
		{"nbf in the future", "/", e.mint("ES256", with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() }), nil), 401, "invalid_token", "not valid yet"},
		{"iat in the future", "/", e.mint("ES256", with(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() }), nil), 401, "invalid_token", "iat"},
		{"missing exp", "/", e.mint("ES256", with(func(c map[string]any) { delete(c, "exp") }), nil), 401, "invalid_token", "exp"},
		{"exp as string", "/", e.mint("ES256", with(func(c map[string]any) { c["exp"] = "9999999999" }), nil), 401, "invalid_token", "exp"},
		{"exp huge", "/", e.mint("ES256", with(func(c map[string]any) { c["exp"] = 1e300 }), nil), 401, "invalid_token", "exp"},
		{"missing scope", "/", e.mint("ES256", with(func(c map[string]any) { c["scope"] = "write" }), nil), 403, "insufficient_scope", "scope"},
		{"wrong claim", "/admin", e.mint("ES256", with(func(c map[string]any) { c["groups"] = []string{"dev"} }), nil), 403, "insufficient_scope", "groups"},
		{"claim absent", "/admin", e.mint("ES256", with(func(c map[string]any) { delete(c, "groups") }), nil), 403, "insufficient_scope", "groups"},
		{"jku header", "/", testidp.Mint(t, attacker, e.claims("mallory"), map[string]any{"jku": attackerJWKS.URL}), 401, "invalid_token", "kid"},
		{"x5u header", "/", testidp.Mint(t, attacker, e.claims("mallory"), map[string]any{"x5u": attackerJWKS.URL}), 401, "invalid_token", "kid"},
		{"jwk header", "/", testidp.Mint(t, attacker, e.claims("mallory"), map[string]any{"jwk": jwkHeader}), 401, "invalid_token", "kid"},
		{"jwk header with known kid", "/", testidp.Mint(t, &testidp.Key{ID: "k-ES256", Alg: "ES256", Private: attacker.Private}, e.claims("mallory"), map[string]any{"jwk": jwkHeader}), 401, "invalid_token", "signature"},
		{"crit header", "/", e.mint("ES256", e.claims("mallory"), map[string]any{"crit": []string{"exp"}, "exp": 1}), 401, "invalid_token", "critical"},
		{"kid not a string", "/", e.mint("ES256", e.claims("mallory"), map[string]any{"kid": map[string]any{"a": 1}}), 401, "invalid_token", "kid"},
		{"ES256 key used as RS256", "/", testidp.Mint(t, &testidp.Key{ID: "k-ES256", Alg: "RS256", Private: e.keys["RS256"].Private}, e.claims("mallory"), nil), 401, "invalid_token", "no key"},
		{"signature stripped", "/", strings.TrimRight(e.mint("ES256", e.claims("mallory"), nil), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 401, "invalid_token", ""},
		{"optional route still rejects bad token", "/opt/x", "a.b.c", 401, "invalid_token", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wa := expectChallenge(t, e.do("GET", c.path, c.token, nil), c.status, c.code)
			if c.desc != "" && !strings.Contains(wa, c.desc) {
				t.Errorf("WWW-Authenticate %q does not name %q", wa, c.desc)
			}
			if c.status == 403 && c.desc == "scope" && !strings.Contains(wa, `scope="read"`) {
				t.Errorf("WWW-Authenticate %q lacks scope=", wa)
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("attacker's key URL fetched %d times", n)
	}
	t.Run("expired within leeway passes", func(t *testing.T) {
		tok := e.mint("ES256", with(func(c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() }), nil)
		e.echo(e.do("GET", "/", tok, nil))
	})
	t.Run("no token", func(t *testing.T) {
		res := e.do("GET", "/", "", nil)
		expectChallenge(t, res, 401, "")
	})
}

func TestMetricsCountFailures(t *testing.T) {
	e := newEnv(t, "")
	e.do("GET", "/", "zzsecretzz", nil)
	e.echo(e.do("GET", "/", e.mint("ES256", e.claims("alice"), nil), nil))
	e.do("GET", "/nope/../public/x", "", nil)
	// A request is counted once it is over, just after its answer.
	waitMetric(t, e, `portcullis_requests_total{code="2xx",outcome="public",route="public"} 1`)
	status, body := e.getAdmin("/metrics")
	if status != 200 {
		t.Fatalf("metrics status %d", status)
	}
	for _, want := range []string{
		`portcullis_auth_failures_total{reason="malformed",route="app"} 1`,
		`portcullis_requests_total{code="2xx",outcome="allowed",route="app"} 1`,
		`portcullis_requests_total{code="4xx",outcome="unauthenticated",route="app"} 1`,
		`portcullis_request_duration_seconds_count{route="app"} 2`,
		`portcullis_request_duration_seconds_count{route="public"} 1`,
		`portcullis_request_duration_seconds_bucket{route="app",le="30"} 2`,
		`portcullis_jwks_fetches_total{issuer="` + e.idp.Issuer + `",result="ok"}`,
		`portcullis_jwks_age_seconds{issuer="` + e.idp.Issuer + `"}`,
		`portcullis_authn_duration_seconds_count`,
		`portcullis_upstream_duration_seconds_count{route="app"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "zzsecretzz") {
		t.Error("metrics contain token material")
	}
	if s, _ := e.getAdmin("/healthz"); s != 200 {
		t.Errorf("healthz %d", s)
	}
	if s, _ := e.getAdmin("/readyz"); s != 200 {
		t.Errorf("readyz %d after keys loaded", s)
	}
}
