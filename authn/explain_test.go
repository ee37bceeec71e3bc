package authn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// checkMap indexes checks by name.
func checkMap(e *authn.Explanation) map[string]authn.Check {
	m := make(map[string]authn.Check, len(e.Checks))
	for _, c := range e.Checks {
		m[c.Name] = c
	}
	return m
}

func TestExplain(t *testing.T) {
	f := newFixture(t, func(iss *authn.Issuer) {
		iss.Algorithms = []string{"ES256", "HS256"}
		iss.HMACSecret = []byte(strings.Repeat("s", 32))
	})
	policy := &authn.Policy{Scopes: []string{"read"}, Claims: map[string][]string{"groups": {"admin"}}}
	with := func(mod func(map[string]any)) map[string]any {
		c := f.claims()
		c["groups"] = []any{"admin", "dev"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	other := testidp.NewKey(t, "ES256", "k1") // same kid, not published
	hs := &testidp.Key{ID: "", Alg: "HS256"}
	cases := []struct {
		name    string
		token   string
		status  int               // 0: accepted
		want    map[string]string // check name → status
		details map[string]string // check name → part of its detail
	}{
		{"valid", testidp.Mint(t, f.key, with(nil), nil), 0,
			map[string]string{"format": authn.Pass, "header": authn.Pass, "issuer": authn.Pass, "algorithm": authn.Pass,
				"typ": authn.Skip, "key": authn.Pass, "signature": authn.Pass, "exp": authn.Pass, "nbf": authn.Skip,
				"iat": authn.Pass, "sub": authn.Pass, "revocation": authn.Skip, "aud": authn.Pass, "scope": authn.Pass,
				"claim groups": authn.Pass},
			map[string]string{"key": "kid k1 found in the issuer's key set (EC P-256 ES256)", "exp": "(in 1h), leeway 30s",
				"aud": "[api] contains api", "claim groups": "[admin dev] contains admin", "scope": "granted read write"}},
		{"expired", testidp.Mint(t, f.key, with(func(c map[string]any) { c["exp"] = testNow.Add(-time.Minute).Unix() }), nil), 401,
			map[string]string{"signature": authn.Pass, "exp": authn.Fail, "aud": authn.Pass},
			map[string]string{"exp": "expired 2026-11-24T11:59:00Z (1m ago), leeway 30s"}},
		{"within leeway", testidp.Mint(t, f.key, with(func(c map[string]any) { c["exp"] = testNow.Add(-10 * time.Second).Unix() }), nil), 0,
			map[string]string{"exp": authn.Pass}, nil},
		{"not yet valid", testidp.Mint(t, f.key, with(func(c map[string]any) { c["nbf"] = testNow.Add(5 * time.Minute).Unix() }), nil), 401,
			map[string]string{"nbf": authn.Fail}, map[string]string{"nbf": "(in 5m)"}},
		{"wrong aud", testidp.Mint(t, f.key, with(func(c map[string]any) { c["aud"] = []any{"other", "x"} }), nil), 401,
			map[string]string{"aud": authn.Fail, "scope": authn.Pass},
			map[string]string{"aud": "[other x] contains none of the issuer's audiences [api]"}},
		{"missing scope", testidp.Mint(t, f.key, with(func(c map[string]any) { c["scope"] = "openid profile" }), nil), 403,
			map[string]string{"scope": authn.Fail, "claim groups": authn.Pass},
			map[string]string{"scope": "missing read (granted: openid profile)"}},
		{"claim mismatch", testidp.Mint(t, f.key, with(func(c map[string]any) { c["groups"] = "dev" }), nil), 403,
			map[string]string{"claim groups": authn.Fail}, map[string]string{"claim groups": "dev is not one of [admin]"}},
		{"bad signature", testidp.Mint(t, other, with(func(c map[string]any) { c["scope"] = "none" }), nil), 401,
			map[string]string{"key": authn.Pass, "signature": authn.Fail, "scope": authn.Fail},
			map[string]string{"signature": "the gateway stops here"}},
		{"unknown kid", testidp.Mint(t, &testidp.Key{ID: "nope", Alg: "ES256", Private: other.Private}, with(nil), nil), 401,
			map[string]string{"key": authn.Fail, "signature": authn.Skip},
			map[string]string{"key": "kid nope not found in the issuer's key set (kids: k1)"}},
		{"alg none", unsigned(t, with(nil)), 401,
			map[string]string{"format": authn.Pass, "algorithm": authn.Fail, "key": authn.Skip, "signature": authn.Skip},
			map[string]string{"algorithm": "alg none (an unsigned token) is never accepted"}},
		{"untrusted issuer", testidp.Mint(t, f.key, with(func(c map[string]any) { c["iss"] = "https://evil.example" }), nil), 401,
			map[string]string{"issuer": authn.Fail, "algorithm": authn.Skip, "key": authn.Skip},
			map[string]string{"issuer": "iss https://evil.example is not a configured issuer"}},
		{"hmac", mintHMAC(t, hs, with(nil), []byte(strings.Repeat("s", 32))), 0,
			map[string]string{"key": authn.Pass, "signature": authn.Pass}, nil},
		{"hmac wrong secret", mintHMAC(t, hs, with(nil), []byte(strings.Repeat("x", 32))), 401,
			map[string]string{"signature": authn.Fail}, nil},
		{"signature not base64url", testidp.Mint(t, f.key, with(nil), nil) + "!", 401,
			map[string]string{"format": authn.Fail, "issuer": authn.Pass, "key": authn.Pass, "signature": authn.Fail, "aud": authn.Pass},
			map[string]string{"signature": "not base64url"}},
		{"crit", testidp.Mint(t, f.key, with(nil), map[string]any{"crit": []any{"exp"}}), 401,
			map[string]string{"header": authn.Fail}, nil},
		{"duplicate claim", rawToken(t, f.key, `{"iss":"`+f.idp.Issuer+`","exp":1,"exp":2}`), 401,
			map[string]string{"format": authn.Fail, "signature": authn.Skip},
			map[string]string{"format": "the payload names a claim twice"}},
		{"nested duplicate claim", rawToken(t, f.key, `{"iss":"`+f.idp.Issuer+`","realm_access":{"roles":["user"],"roles":["admin"]}}`), 401,
			map[string]string{"format": authn.Fail, "signature": authn.Skip},
			map[string]string{"format": "the payload names a claim twice"}},
		{"payload not base64url", "eyJhbGciOiJFUzI1NiJ9.!!!.c2ln", 401,
			map[string]string{"format": authn.Fail}, map[string]string{"format": "the payload is not base64url"}},
		{"header not JSON", "bm90IGpzb24.e30.c2ln", 401,
			map[string]string{"format": authn.Fail}, map[string]string{"format": "the header is not a JSON object"}},
		{"encrypted", "a.b.c.d.e", 401, map[string]string{"format": authn.Fail}, map[string]string{"format": "JWE"}},
		{"garbage", "not a token", 401, map[string]string{"format": authn.Fail, "exp": authn.Skip}, nil},
		{"empty", "", 401, map[string]string{"format": authn.Fail}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := f.auth.Explain(t.Context(), c.token, policy)
			if e.Status() != c.status {
				t.Fatalf("status %d, want %d (%s)\n%s", e.Status(), c.status, e.Result(), dump(e))
			}
			if e.Allowed() != (c.status == 0) || (e.Identity != nil) != e.Allowed() {
				t.Fatalf("allowed %v, identity %v", e.Allowed(), e.Identity)
			}
			checkConsistent(t, e, c.token)
			got := checkMap(e)
			for name, want := range c.want {
				if got[name].Status != want {
					t.Errorf("%s: %s, want %s\n%s", name, got[name].Status, want, dump(e))
				}
			}
			for name, want := range c.details {
				if !strings.Contains(got[name].Detail, want) {
					t.Errorf("%s: detail %q lacks %q", name, got[name].Detail, want)
				}
			}
		})
	}
}

func TestExplainUnverifiedAfterBadSignature(t *testing.T) {
	f := newFixture(t, nil)
	other := testidp.NewKey(t, "ES256", "k1")
	e := f.auth.Explain(t.Context(), testidp.Mint(t, other, f.claims(), nil), &authn.Policy{})
	after := false
	for _, c := range e.Checks {
		if c.Name == "signature" {
			after = true
			continue
		}
		if after && c.Status != authn.Skip && !c.Unverified {
			t.Errorf("%s after a bad signature is not marked unverified", c.Name)
		}
		if !after && c.Unverified {
			t.Errorf("%s before the signature is marked unverified", c.Name)
		}
	}
	if !strings.Contains(e.Result(), "401 invalid_token (signature invalid)") {
		t.Errorf("result %q", e.Result())
	}
}

func TestExplainRevocation(t *testing.T) {
	cases := []struct {
		name    string
		revoked func(context.Context, string) (bool, error)
		noJTI   bool
		status  string
		allowed bool
	}{
		{"not revoked", func(context.Context, string) (bool, error) { return false, nil }, false, authn.Pass, true},
		{"revoked", func(context.Context, string) (bool, error) { return true, nil }, false, authn.Fail, false},
		{"not checked here", func(context.Context, string) (bool, error) {
			return false, fmt.Errorf("%w: the list is in the server's memory", authn.ErrNotChecked)
		}, false, authn.Skip, true},
		{"list down", func(context.Context, string) (bool, error) { return false, errors.New("down") }, false, authn.Fail, false},
		{"jti missing", func(context.Context, string) (bool, error) { return false, nil }, true, authn.Fail, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(iss *authn.Issuer) { iss.Revoked = c.revoked })
			claims := f.claims()
			if c.noJTI {
				delete(claims, "jti")
			}
			e := f.auth.Explain(t.Context(), testidp.Mint(t, f.key, claims, nil), nil)
			if got := checkMap(e)["revocation"].Status; got != c.status {
				t.Errorf("revocation %s, want %s\n%s", got, c.status, dump(e))
			}
			if e.Allowed() != c.allowed {
				t.Errorf("allowed %v, want %v: %s", e.Allowed(), c.allowed, e.Result())
			}
			checkConsistent(t, e, "")
		})
	}
	// Verify itself still treats "not checked" as no verdict.
	f := newFixture(t, func(iss *authn.Issuer) {
		iss.Revoked = func(context.Context, string) (bool, error) { return false, authn.ErrNotChecked }
	})
	if _, err := f.auth.Verify(t.Context(), testidp.Mint(t, f.key, f.claims(), nil)); !authn.IsUnavailable(err) {
		t.Errorf("Verify with an unchecked revocation list: %v", err)
	}
}

func TestExplainTyp(t *testing.T) {
	f := newFixture(t, func(iss *authn.Issuer) { iss.Typ = "at+jwt" })
	ok := f.auth.Explain(t.Context(), testidp.Mint(t, f.key, f.claims(), map[string]any{"typ": "application/AT+JWT"}), nil)
	bad := f.auth.Explain(t.Context(), testidp.Mint(t, f.key, f.claims(), map[string]any{"typ": "JWT"}), nil)
	if checkMap(ok)["typ"].Status != authn.Pass || !ok.Allowed() {
		t.Errorf("typ at+jwt:\n%s", dump(ok))
	}
	if checkMap(bad)["typ"].Status != authn.Fail || bad.Allowed() {
		t.Errorf("typ JWT:\n%s", dump(bad))
	}
}

func TestExplainKeysUnavailable(t *testing.T) {
	f := newFixture(t, nil)
	f.idp.SetDown(true)
	e := f.auth.Explain(t.Context(), testidp.Mint(t, f.key, f.claims(), nil), nil)
	if e.Status() != 503 || !authn.IsUnavailable(e.Err) {
		t.Fatalf("status %d: %v", e.Status(), e.Err)
	}
	if c := checkMap(e)["key"]; c.Status != authn.Fail || !strings.Contains(c.Detail, "could not be loaded") {
		t.Errorf("key check %+v", c)
	}
	if !strings.Contains(e.Result(), "503") {
		t.Errorf("result %q", e.Result())
	}
}

func TestExplainShowsNoToken(t *testing.T) {
	f := newFixture(t, nil)
	claims := f.claims()
	claims["sub"] = "line\nbreak\x1b[31m"
	claims["aud"] = strings.Repeat("a", 500)
	tok := testidp.Mint(t, f.key, claims, nil)
	e := f.auth.Explain(t.Context(), tok, nil)
	for _, c := range e.Checks {
		if strings.ContainsAny(c.Detail, "\n\x1b") {
			t.Errorf("%s: control characters in %q", c.Name, c.Detail)
		}
		if len(c.Detail) > 300 {
			t.Errorf("%s: detail of %d bytes", c.Name, len(c.Detail))
		}
	}
	checkConsistent(t, e, tok)
}

// FuzzExplain feeds arbitrary tokens through Explain: never a panic, the
// checks always agree with the verdict, and the token never shows.
func FuzzExplain(f *testing.F) {
	fx := newFixture(f, nil)
	good := testidp.Mint(f, fx.key, fx.claims(), nil)
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(testidp.Mint(f, fx.key, fx.claims(), map[string]any{"crit": []any{"b64"}, "kid": 5.0}))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6eyJhIjoxfX0.e30.AAAA")
	f.Add("bnVsbA.bnVsbA.")
	f.Add("....")
	f.Add("")
	policy := &authn.Policy{Scopes: []string{"read"}, Claims: map[string][]string{"sub": {"alice"}}}
	f.Fuzz(func(t *testing.T, token string) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		e := fx.auth.Explain(ctx, token, policy)
		checkConsistent(t, e, token)
		if e.Allowed() && (e.Identity == nil || e.Identity.Issuer != fx.idp.Issuer) {
			t.Fatalf("accepted %+v", e.Identity)
		}
	})
}

// checkConsistent asserts that the checks agree with the verdict: a token
// is accepted exactly when no check failed, every refusal is explained by a
// named check, and no detail contains the token.
func checkConsistent(t *testing.T, e *authn.Explanation, token string) {
	t.Helper()
	failed := false
	for _, c := range e.Checks {
		switch c.Status {
		case authn.Fail:
			failed = true
		case authn.Pass, authn.Skip:
		default:
			t.Fatalf("check %s has status %q", c.Name, c.Status)
		}
		if c.Name == "verify" {
			t.Errorf("refusal not explained by a named check: %s (%s)", c.Detail, e.Result())
		}
		if len(token) >= 16 && strings.Contains(c.Detail, token) {
			t.Fatalf("check %s shows the token", c.Name)
		}
	}
	if failed == e.Allowed() {
		t.Fatalf("allowed %v but failed checks %v: %s\n%s", e.Allowed(), failed, e.Result(), dump(e))
	}
}

func dump(e *authn.Explanation) string {
	var b strings.Builder
	for _, c := range e.Checks {
		fmt.Fprintf(&b, "%s  %-12s %s\n", c.Status, c.Name, c.Detail)
	}
	return b.String()
}

// unsigned returns an alg "none" token.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mintHMAC signs claims with an HMAC secret.
func mintHMAC(t *testing.T, k *testidp.Key, claims map[string]any, secret []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.GetSigningMethod(k.Alg), jwt.MapClaims(claims)).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
