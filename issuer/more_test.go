package issuer_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPromptAndMaxAge: a signed-in browser skips the form, unless the
// client asks for a fresh login (prompt=login) or the sign-in is older
// than max_age; prompt=consent asks again for remembered consent.
func TestPromptAndMaxAge(t *testing.T) {
	p := newIDP(t)
	b := browser()
	u, _ := p.authURL(nil)
	p.login(t, b, u, "alice-password") // signs in and allows
	if res, _ := get(t, b, u); res.StatusCode != http.StatusFound {
		t.Fatalf("signed-in browser: %d, want a redirect back", res.StatusCode)
	}
	for name, mod := range map[string]func(url.Values){
		"prompt=login":   func(v url.Values) { v.Set("prompt", "login") },
		"max_age passed": func(v url.Values) { v.Set("max_age", "60") },
	} {
		t.Run(name, func(t *testing.T) {
			if name == "max_age passed" {
				p.clock.Advance(2 * time.Minute)
			}
			u, _ := p.authURL(mod)
			res, page := get(t, b, u)
			if res.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
				t.Fatalf("%d: want the login form", res.StatusCode)
			}
			// Signing in again finishes the request: no loop back to the form.
			back := p.login(t, b, u, "alice-password")
			if back.Query().Get("code") == "" {
				t.Fatalf("no code after a fresh login: %s", back)
			}
		})
	}
	t.Run("prompt=consent", func(t *testing.T) {
		u, _ := p.authURL(func(v url.Values) { v.Set("prompt", "consent") })
		res, page := get(t, b, u)
		if res.StatusCode != 200 || !strings.Contains(page, "wants to:") {
			t.Fatalf("%d: want the consent page", res.StatusCode)
		}
	})
}

func TestClientAuthenticationMethods(t *testing.T) {
	p := newIDP(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	post := func(v url.Values) int {
		res, _ := postBasic(t, p.url+"/token", "", "", v)
		return res.StatusCode
	}
	withSecret := func(id, secret string) url.Values {
		v := url.Values{}
		for k, vs := range cc {
			v[k] = vs
		}
		v.Set("client_id", id)
		v.Set("client_secret", secret)
		return v
	}
	if s := post(withSecret("machine", machineSecret)); s != 200 {
		t.Errorf("client_secret_post: %d", s)
	}
	if s := post(withSecret("machine", "wrong")); s != 401 {
		t.Errorf("client_secret_post, wrong secret: %d", s)
	}
	if res, body := postBasic(t, p.url+"/token", "hashed", "alice-password", cc); res.StatusCode != 200 {
		t.Errorf("bcrypt secret_hash: %d %s", res.StatusCode, body)
	}
	if res, _ := postBasic(t, p.url+"/token", "hashed", "nope", cc); res.StatusCode != 401 {
		t.Errorf("bcrypt secret_hash, wrong secret: %d", res.StatusCode)
	}
	// Basic and post together: one method only.
	v := withSecret("machine", machineSecret)
	if res, _ := postBasic(t, p.url+"/token", "machine", machineSecret, v); res.StatusCode != 400 {
		t.Errorf("two client authentication methods: %d", res.StatusCode)
	}
}

func TestRevokeRefreshToken(t *testing.T) {
	p := newIDP(t)
	code, verifier := p.code(t, nil)
	_, tok, _ := p.exchange(t, "webapp", webSecret, codeForm(code, verifier))
	rt := tok["refresh_token"].(string)
	if !active(t, p, "webapp", webSecret, rt) {
		t.Fatal("fresh refresh token not active")
	}
	if res, body := postBasic(t, p.url+"/revoke", "webapp", webSecret, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); res.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	if active(t, p, "webapp", webSecret, rt) {
		t.Error("revoked refresh token still active")
	}
	if s, out, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); s != 400 || out["error"] != "invalid_grant" {
		t.Errorf("refresh with a revoked token: %d %v", s, out)
	}
	if active(t, p, "webapp", webSecret, tok["access_token"].(string)) {
		t.Error("the family's access token survived the revocation")
	}
}
