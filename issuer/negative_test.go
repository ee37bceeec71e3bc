package issuer_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// authURL builds an authorization request for webapp with PKCE S256.
func (p *idp) authURL(mod func(url.Values)) (string, string) {
	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	v := url.Values{
		"response_type": {"code"}, "client_id": {"webapp"}, "redirect_uri": {appRedirect},
		"scope": {"openid email offline_access"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if mod != nil {
		mod(v)
	}
	return p.url + "/authorize?" + v.Encode(), verifier
}

// code logs in and returns a code and its verifier.
func (p *idp) code(t *testing.T, mod func(url.Values)) (string, string) {
	t.Helper()
	u, verifier := p.authURL(mod)
	back := p.login(t, browser(), u, "alice-password")
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %s", back)
	}
	return back.Query().Get("code"), verifier
}

func (p *idp) exchange(t *testing.T, id, secret string, v url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	res, body := postBasic(t, p.url+"/token", id, secret, v)
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("token endpoint answered non-JSON %d: %s", res.StatusCode, body)
	}
	return res.StatusCode, out, res.Header
}

func codeForm(code, verifier string) url.Values {
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}
	if verifier != "" {
		v.Set("code_verifier", verifier)
	}
	return v
}

func TestUnregisteredRedirectURIsGetAPageNotARedirect(t *testing.T) {
	p := newIDP(t)
	for _, bad := range []string{
		appRedirect + "/", "http://APP.test/callback", "http://app.test:8080/callback",
		"http://evil@app.test/callback", "http://app.test/callback/../evil", appRedirect + "?x=1",
		appRedirect + "#f", "https://app.test/callback", "http://app.test.evil.example/callback", "",
	} {
		t.Run(bad, func(t *testing.T) {
			u, _ := p.authURL(func(v url.Values) { v.Set("redirect_uri", bad) })
			res, body := get(t, browser(), u)
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
			}
			if !strings.Contains(body, "not registered") {
				t.Errorf("page does not explain: %s", body)
			}
		})
	}
	u, _ := p.authURL(func(v url.Values) { v.Set("client_id", "nobody") })
	if res, _ := get(t, browser(), u); res.StatusCode != 400 || res.Header.Get("Location") != "" {
		t.Errorf("unknown client: %d", res.StatusCode)
	}
}

func TestAuthorizeErrorsGoBackToTheClient(t *testing.T) {
	p := newIDP(t)
	cases := []struct {
		name string
		mod  func(url.Values)
		code string
	}{
		{"plain PKCE", func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"PKCE method missing", func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
		{"scope beyond the client's", func(v url.Values) { v.Set("scope", "openid admin") }, "invalid_scope"},
		{"implicit grant", func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		{"hybrid", func(v url.Values) { v.Set("response_type", "code id_token") }, "unsupported_response_type"},
		{"public client without PKCE", func(v url.Values) {
			v.Set("client_id", "spa")
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, "invalid_request"},
		{"prompt=none without session", func(v url.Values) { v.Set("prompt", "none") }, "login_required"},
		{"request object", func(v url.Values) { v.Set("request", "e30.e30.") }, "request_not_supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, _ := p.authURL(c.mod)
			res, _ := get(t, browser(), u)
			loc, err := res.Location()
			if err != nil || !strings.HasPrefix(loc.String(), appRedirect) {
				t.Fatalf("status %d, Location %v", res.StatusCode, loc)
			}
			if q := loc.Query(); q.Get("error") != c.code || q.Get("state") != "st" || q.Get("iss") != p.url {
				t.Errorf("redirect %s, want error=%s with state and iss", loc, c.code)
			}
		})
	}
	// Unknown parameters (oauth2-proxy sends approval_prompt) are ignored.
	u, _ := p.authURL(func(v url.Values) { v.Set("approval_prompt", "force"); v.Set("prompt", "select_account") })
	if res, body := get(t, browser(), u); res.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Errorf("unknown parameters: %d", res.StatusCode)
	}
}

func TestTokenEndpointRejections(t *testing.T) {
	p := newIDP(t)
	check := func(t *testing.T, status int, out map[string]any, h http.Header, wantStatus int, wantCode string) {
		t.Helper()
		if status != wantStatus || out["error"] != wantCode {
			t.Fatalf("got %d %v, want %d %s", status, out, wantStatus, wantCode)
		}
		if h.Get("Cache-Control") != "no-store" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("headers %v", h)
		}
	}
	t.Run("missing verifier", func(t *testing.T) {
		code, _ := p.code(t, nil)
		s, out, h := p.exchange(t, "webapp", webSecret, codeForm(code, ""))
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := p.code(t, nil)
		s, out, h := p.exchange(t, "webapp", webSecret, codeForm(code, oauth2.GenerateVerifier()))
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("verifier without challenge", func(t *testing.T) {
		code, _ := p.code(t, func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") })
		s, out, h := p.exchange(t, "webapp", webSecret, codeForm(code, oauth2.GenerateVerifier()))
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("redirect_uri mismatch", func(t *testing.T) {
		code, v := p.code(t, nil)
		f := codeForm(code, v)
		f.Set("redirect_uri", appRedirect+"/x")
		s, out, h := p.exchange(t, "webapp", webSecret, f)
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("code replay revokes what it issued", func(t *testing.T) {
		code, v := p.code(t, nil)
		s, first, _ := p.exchange(t, "webapp", webSecret, codeForm(code, v))
		if s != 200 {
			t.Fatalf("first exchange %d %v", s, first)
		}
		s, out, h := p.exchange(t, "webapp", webSecret, codeForm(code, v))
		check(t, s, out, h, 400, "invalid_grant")
		if active(t, p, "webapp", webSecret, first["access_token"].(string)) {
			t.Error("access token from a replayed code still active")
		}
		s, out, h = p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("code used by another client", func(t *testing.T) {
		code, v := p.code(t, nil)
		f := codeForm(code, v)
		f.Set("client_id", "spa")
		s, out, h := p.exchange(t, "", "", f)
		check(t, s, out, h, 400, "invalid_grant")
		// And the rightful client can no longer use it.
		s, out, h = p.exchange(t, "webapp", webSecret, codeForm(code, v))
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("expired code", func(t *testing.T) {
		code, v := p.code(t, nil)
		p.clock.Advance(61 * time.Second)
		s, out, h := p.exchange(t, "webapp", webSecret, codeForm(code, v))
		check(t, s, out, h, 400, "invalid_grant")
	})
	t.Run("wrong client secret", func(t *testing.T) {
		code, v := p.code(t, nil)
		s, out, h := p.exchange(t, "webapp", "wrong-secret-0123456789", codeForm(code, v))
		check(t, s, out, h, 401, "invalid_client")
		if h.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate for failed basic auth")
		}
	})
	t.Run("password grant", func(t *testing.T) {
		s, out, h := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}})
		check(t, s, out, h, 400, "unsupported_grant_type")
	})
	t.Run("refresh cannot widen scope", func(t *testing.T) {
		code, v := p.code(t, nil)
		_, first, _ := p.exchange(t, "webapp", webSecret, codeForm(code, v))
		s, out, h := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {first["refresh_token"].(string)}, "scope": {"openid email read"}})
		check(t, s, out, h, 400, "invalid_scope")
	})
	t.Run("concurrent refreshes: exactly one wins", func(t *testing.T) {
		code, v := p.code(t, nil)
		_, first, _ := p.exchange(t, "webapp", webSecret, codeForm(code, v))
		rt := first["refresh_token"].(string)
		var wg sync.WaitGroup
		wins := make(chan int, 20)
		for range 20 {
			wg.Go(func() {
				s, _, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				wins <- s
			})
		}
		wg.Wait()
		close(wins)
		n := 0
		for s := range wins {
			if s == 200 {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d concurrent refreshes succeeded, want 1", n)
		}
	})
	t.Run("client_credentials scope beyond the client's", func(t *testing.T) {
		s, out, h := p.exchange(t, "machine", machineSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
		check(t, s, out, h, 400, "invalid_scope")
	})
	t.Run("malformed body", func(t *testing.T) {
		res, body := postBasic(t, p.url+"/token", "webapp", webSecret, url.Values{"grant_type": {"a", "b"}})
		if res.StatusCode != 400 || !strings.Contains(body, "invalid_request") {
			t.Errorf("%d %s", res.StatusCode, body)
		}
	})
}

func TestLoginPage(t *testing.T) {
	p := newIDP(t)
	u, _ := p.authURL(nil)
	b := browser()
	res, page := get(t, b, u)
	if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("anti-framing headers missing: %v", res.Header)
	}
	if !strings.HasPrefix(page, "<!doctype html>") || !strings.Contains(page, "<style>") {
		t.Errorf("login page is not a whole styled document: %.80q", page)
	}
	if !strings.Contains(page, "Web App") || !strings.Contains(page, "see your email address") {
		t.Errorf("login page lacks client name or scopes")
	}
	f := form(t, page)

	t.Run("missing CSRF", func(t *testing.T) {
		g := url.Values{}
		for k, v := range f {
			g[k] = v
		}
		g.Del("csrf")
		g.Set("username", "alice")
		g.Set("password", "alice-password")
		if res, _ := post(t, b, p.url+"/authorize", g); res.StatusCode != http.StatusForbidden {
			t.Errorf("status %d without CSRF token", res.StatusCode)
		}
	})
	t.Run("wrong passwords then the limit", func(t *testing.T) {
		// A browser that never signed in as alice: 10 failures, then even
		// the right password fails the same way until the window passes.
		f.Set("username", "alice")
		f.Set("password", "nope")
		for i := 1; i <= 10; i++ {
			if res, body := post(t, b, p.url+"/authorize", f); res.StatusCode != 200 || !strings.Contains(body, "Invalid username or password") {
				t.Fatalf("attempt %d: status %d", i, res.StatusCode)
			}
		}
		f.Set("password", "alice-password")
		if res, body := post(t, b, p.url+"/authorize", f); res.StatusCode != 200 || !strings.Contains(body, "Invalid username or password") {
			t.Fatalf("right password past the limit: %d, want the same page as a wrong one", res.StatusCode)
		}
		p.clock.Advance(16 * time.Minute)
		if res, _ := post(t, b, p.url+"/authorize", f); res.StatusCode != http.StatusSeeOther {
			t.Errorf("login after the window: %d", res.StatusCode)
		}
	})
}

func TestConsentDenyAndRemember(t *testing.T) {
	p := newIDP(t)
	b := browser()
	u, _ := p.authURL(nil)
	res, page := get(t, b, u)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d", res.StatusCode)
	}
	f := form(t, page)
	f.Set("username", "alice")
	f.Set("password", "alice-password")
	res, _ = post(t, b, p.url+"/authorize", f)
	loc, _ := res.Location()
	res, page = get(t, b, loc.String())
	if !strings.Contains(page, "Web App wants to:") {
		t.Fatalf("no consent page: %d %s", res.StatusCode, page)
	}
	f = form(t, page)
	f.Set("action", "deny")
	res, _ = post(t, b, p.url+"/authorize", f)
	loc, _ = res.Location()
	if loc == nil || loc.Query().Get("error") != "access_denied" {
		t.Fatalf("deny: %v", loc)
	}
	// Allow, then the same scopes are not asked again; new ones are.
	res, page = get(t, b, u)
	if !strings.Contains(page, "Web App wants to:") {
		t.Fatalf("no consent page after a denial: %d %s", res.StatusCode, page)
	}
	f = form(t, page)
	f.Set("action", "allow")
	post(t, b, p.url+"/authorize", f)
	if res, _ := get(t, b, u); res.StatusCode != http.StatusFound {
		t.Errorf("remembered consent asked again: %d", res.StatusCode)
	}
	u2, _ := p.authURL(func(v url.Values) { v.Set("scope", "openid email read") })
	if res, page := get(t, b, u2); res.StatusCode != 200 || !strings.Contains(page, "<li>Read your data</li>") {
		t.Errorf("new scope not asked: %d", res.StatusCode)
	}
}

// TestScopeWording checks that scope descriptions, capitalised or not in
// the configuration, read as part of a sentence on the login page and as
// list items on the consent page.
func TestScopeWording(t *testing.T) {
	p := newIDP(t)
	u, _ := p.authURL(func(v url.Values) { v.Set("scope", "openid email read") })
	b := browser()
	_, page := get(t, b, u)
	if want := "It will be able to: confirm your identity, see your email address, read your data."; !strings.Contains(page, want) {
		t.Errorf("login page lacks %q:\n%s", want, page)
	}
	f := form(t, page)
	f.Set("username", "alice")
	f.Set("password", "alice-password")
	res, _ := post(t, b, p.url+"/authorize", f)
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("login: %d %v", res.StatusCode, err)
	}
	_, page = get(t, b, loc.String())
	for _, want := range []string{"<li>Confirm your identity</li>", "<li>See your email address</li>", "<li>Read your data</li>"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q:\n%s", want, page)
		}
	}
}

func TestLogout(t *testing.T) {
	p := newIDP(t)
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: webSecret,
		Endpoint: oauth2.Endpoint{AuthURL: p.url + "/authorize", TokenURL: p.url + "/token"}, RedirectURL: appRedirect, Scopes: []string{"openid"}}
	tok := p.codeFlow(t, conf, t.Context())
	idt := tok.Extra("id_token").(string)
	// An unregistered address is not followed, but the session ends all
	// the same: the next authorization asks for the password again.
	u, _ := p.authURL(nil)
	for _, bad := range []string{"http://evil.example/", appLogout + "/", "//evil.example", appRedirect} {
		b := browser()
		_, page := get(t, b, u)
		f := form(t, page)
		f.Set("username", "alice")
		f.Set("password", "alice-password")
		post(t, b, p.url+"/authorize", f)
		if _, page := get(t, b, u); strings.Contains(page, `name="password"`) {
			t.Fatal("signed in, authorize still asks for the password")
		}
		res, page := get(t, b, p.url+"/logout?"+url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {bad}}.Encode())
		if res.StatusCode != 200 || res.Header.Get("Location") != "" || !strings.Contains(page, "You are signed out.") ||
			!strings.Contains(page, "the address to return to is not registered for Web App") {
			t.Errorf("post_logout_redirect_uri %q: %d %q\n%s", bad, res.StatusCode, res.Header.Get("Location"), page)
		}
		if !strings.Contains(page, `href="http://app.test/">Sign in again</a>`) {
			t.Errorf("signed-out page offers no way to sign in again:\n%s", page)
		}
		if res, page := get(t, b, u); res.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
			t.Errorf("after logout with %q, authorize answered %d without asking for the password", bad, res.StatusCode)
		}
	}
	res, _ := get(t, browser(), p.url+"/logout?"+url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {appLogout}, "state": {"z"}}.Encode())
	if loc, _ := res.Location(); res.StatusCode != http.StatusSeeOther || loc.String() != appLogout+"?state=z" {
		t.Errorf("logout redirect %d %v", res.StatusCode, loc)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	p := newIDP(t)
	res, body := get(t, http.DefaultClient, p.url+"/.well-known/openid-configuration")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil || res.StatusCode != 200 {
		t.Fatalf("discovery %d %v", res.StatusCode, err)
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "jwks_uri", "revocation_endpoint",
		"introspection_endpoint", "end_session_endpoint", "code_challenge_methods_supported", "grant_types_supported",
		"token_endpoint_auth_methods_supported", "id_token_signing_alg_values_supported", "scopes_supported", "claims_supported"} {
		if doc[k] == nil {
			t.Errorf("discovery lacks %s", k)
		}
	}
	if doc["issuer"] != p.url {
		t.Errorf("issuer %v", doc["issuer"])
	}
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if doc[k] != true {
			t.Errorf("discovery %s = %v, want true", k, doc[k])
		}
	}
	// Discovery never comes from the Host header.
	req, _ := http.NewRequest("GET", p.url+"/.well-known/openid-configuration", nil)
	req.Host = "evil.example"
	r2, _ := http.DefaultClient.Do(req)
	var doc2 map[string]any
	_ = json.NewDecoder(r2.Body).Decode(&doc2)
	r2.Body.Close()
	if doc2["token_endpoint"] != doc["token_endpoint"] {
		t.Errorf("discovery follows Host: %v", doc2["token_endpoint"])
	}
	_, keys := get(t, http.DefaultClient, p.url+"/jwks")
	for _, priv := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"k"`} {
		if strings.Contains(keys, priv) {
			t.Errorf("JWKS contains private member %s", priv)
		}
	}
}
