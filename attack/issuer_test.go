package attack_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

func TestRedirectURIVariants(t *testing.T) {
	e := newLoginEnv(t)
	for _, bad := range []string{
		appRedirect + "/", "https://APP.example/callback", "https://app.example:8443/callback", "https://app.example:443/callback",
		"https://evil@app.example/callback", "https://app.example/callback/../evil", "https://app.example/x/../callback",
		appRedirect + "?x=1", appRedirect + "#f", "http://app.example/callback", "https://app.example.evil.example/callback",
		"https://app.example/CALLBACK", "https://app.example/callback%2F..%2Fevil", "//app.example/callback", "/callback",
		"https://app.example\\@evil.example/callback", "https://app.example/callback\t", "",
	} {
		t.Run(bad, func(t *testing.T) {
			u, _ := e.authURL(func(v url.Values) { v.Set("redirect_uri", bad) })
			res, body := newBrowser(t).do("GET", u, nil, nil)
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
			}
			noLeak(t, res, body, "")
			if res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("error page headers %v", res.Header)
			}
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		u, _ := e.authURL(func(v url.Values) { v.Set("client_id", "nobody") })
		res, _ := newBrowser(t).do("GET", u, nil, nil)
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
			t.Fatalf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	e := newLoginEnv(t)
	cases := []struct {
		name string
		mod  func(url.Values)
		code string
	}{
		{"implicit grant", func(v url.Values) { v.Set("response_type", "token") }, "unsupported_response_type"},
		{"implicit id_token token", func(v url.Values) { v.Set("response_type", "id_token token") }, "unsupported_response_type"},
		{"hybrid code token", func(v url.Values) { v.Set("response_type", "code token") }, "unsupported_response_type"},
		{"response_mode fragment with token", func(v url.Values) { v.Set("response_type", "token"); v.Set("response_mode", "fragment") }, "unsupported_response_type"},
		{"PKCE plain", func(v url.Values) { v.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"PKCE method missing", func(v url.Values) { v.Del("code_challenge_method") }, "invalid_request"},
		{"PKCE method lower case", func(v url.Values) { v.Set("code_challenge_method", "s256") }, "invalid_request"},
		{"public client without PKCE", func(v url.Values) {
			v.Set("client_id", "spa")
			v.Set("scope", "openid read")
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, "invalid_request"},
		{"scope beyond the client's", func(v url.Values) { v.Set("scope", "openid admin") }, "invalid_scope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, _ := e.authURL(c.mod)
			res, _ := newBrowser(t).do("GET", u, nil, nil)
			loc, err := res.Location()
			if err != nil || !strings.HasPrefix(loc.String(), appRedirect+"?") {
				t.Fatalf("status %d, Location %v", res.StatusCode, loc)
			}
			if q := loc.Query(); q.Get("error") != c.code || q.Get("access_token") != "" || q.Get("code") != "" || loc.Fragment != "" {
				t.Errorf("redirect %s, want error=%s and nothing issued", loc, c.code)
			}
		})
	}
}

func TestTokenEndpointAttacks(t *testing.T) {
	e := newLoginEnv(t)
	check := func(t *testing.T, res *http.Response, out map[string]any, status int, code string) {
		t.Helper()
		if res.StatusCode != status || out["error"] != code {
			t.Fatalf("got %d %v, want %d %s", res.StatusCode, out, status, code)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		if out["access_token"] != nil || out["refresh_token"] != nil {
			t.Errorf("tokens issued with an error: %v", out)
		}
	}
	// gatewaySays is the gateway's verdict on an access token.
	gatewaySays := func(t *testing.T, tok string) int {
		t.Helper()
		res, _ := send(t, "GET", e.url+"/orders", bearer(tok))
		return res.StatusCode
	}
	for _, g := range []string{"password", "implicit", "token", "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:device_code", "client_credentials", ""} {
		t.Run("grant_type "+g, func(t *testing.T) {
			res, out := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {g}, "username": {"alice"}, "password": {"alice-password"}, "scope": {"read"}})
			want := "unsupported_grant_type"
			switch g {
			case "client_credentials":
				want = "unauthorized_client"
			case "":
				want = "invalid_request"
			}
			check(t, res, out, 400, want)
		})
	}
	t.Run("PKCE downgrade: no verifier", func(t *testing.T) {
		code, _ := e.code(t, nil)
		res, out := e.token(t, "webapp", webappSecret, codeForm(code, ""))
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("PKCE downgrade: the challenge as a plain verifier", func(t *testing.T) {
		var challenge string
		code, _ := e.code(t, func(v url.Values) { challenge = v.Get("code_challenge") })
		res, out := e.token(t, "webapp", webappSecret, codeForm(code, challenge))
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("PKCE: wrong verifier", func(t *testing.T) {
		code, _ := e.code(t, nil)
		res, out := e.token(t, "webapp", webappSecret, codeForm(code, oauth2.GenerateVerifier()))
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("PKCE: verifier without a challenge", func(t *testing.T) {
		code, _ := e.code(t, func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") })
		res, out := e.token(t, "webapp", webappSecret, codeForm(code, oauth2.GenerateVerifier()))
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("redirect_uri differs at the token endpoint", func(t *testing.T) {
		code, v := e.code(t, nil)
		f := codeForm(code, v)
		f.Set("redirect_uri", appRedirect+"/")
		res, out := e.token(t, "webapp", webappSecret, f)
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("code of webapp redeemed by spa", func(t *testing.T) {
		code, v := e.code(t, nil)
		res, out := e.token(t, "spa", "", codeForm(code, v))
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("wrong client secret", func(t *testing.T) {
		code, v := e.code(t, nil)
		res, out := e.token(t, "webapp", "wrong-secret-0123456789", codeForm(code, v))
		check(t, res, out, 401, "invalid_client")
	})
	t.Run("code replay revokes what it issued", func(t *testing.T) {
		code, v := e.code(t, nil)
		res, first := e.token(t, "webapp", webappSecret, codeForm(code, v))
		if res.StatusCode != 200 {
			t.Fatalf("first exchange %d %v", res.StatusCode, first)
		}
		at := first["access_token"].(string)
		if s := gatewaySays(t, at); s != 200 {
			t.Fatalf("fresh access token: %d", s)
		}
		res, out := e.token(t, "webapp", webappSecret, codeForm(code, v))
		check(t, res, out, 400, "invalid_grant")
		if s := gatewaySays(t, at); s != 401 {
			t.Errorf("access token of a replayed code: gateway answers %d, want 401", s)
		}
		res, out = e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
		check(t, res, out, 400, "invalid_grant")
	})
	t.Run("refresh reuse revokes the family", func(t *testing.T) {
		code, v := e.code(t, nil)
		_, first := e.token(t, "webapp", webappSecret, codeForm(code, v))
		rt1 := first["refresh_token"].(string)
		res, second := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
		if res.StatusCode != 200 {
			t.Fatalf("refresh: %d %v", res.StatusCode, second)
		}
		rt2 := second["refresh_token"].(string)
		if rt2 == rt1 {
			t.Fatal("refresh token not rotated")
		}
		// Within issuer.refresh_retry_grace, while rt2 is unused, rt1
		// again is a retry: the same pair, nothing new.
		res, again := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
		if res.StatusCode != 200 || again["refresh_token"] != rt2 || again["access_token"] != second["access_token"] {
			t.Fatalf("retry: %d %v, want the same pair", res.StatusCode, again)
		}
		res, third := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
		if res.StatusCode != 200 {
			t.Fatalf("second refresh: %d %v", res.StatusCode, third)
		}
		at3, rt3 := third["access_token"].(string), third["refresh_token"].(string)
		// rt2 used: rt1 now is reuse, and so is rt2.
		res, out := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
		check(t, res, out, 400, "invalid_grant")
		res, out = e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt3}})
		check(t, res, out, 400, "invalid_grant")
		if s := gatewaySays(t, at3); s != 401 {
			t.Errorf("access token of a revoked family: gateway answers %d, want 401", s)
		}
	})
	t.Run("refresh by another client", func(t *testing.T) {
		code, v := e.code(t, nil)
		_, first := e.token(t, "webapp", webappSecret, codeForm(code, v))
		res, out := e.token(t, "spa", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
		if res.StatusCode < 400 || out["access_token"] != nil {
			t.Fatalf("another client refreshed: %d %v", res.StatusCode, out)
		}
	})
	t.Run("concurrent refreshes: exactly one rotation", func(t *testing.T) {
		code, v := e.code(t, nil)
		_, first := e.token(t, "webapp", webappSecret, codeForm(code, v))
		rt := first["refresh_token"].(string)
		var wg sync.WaitGroup
		wins := make(chan string, 16)
		for range 16 {
			wg.Go(func() {
				res, out := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				if res.StatusCode == 200 {
					wins <- out["refresh_token"].(string)
				}
			})
		}
		wg.Wait()
		close(wins)
		// One rotation; the others are retries within the grace that get
		// its pair, never a second one, and the family lives.
		pairs, n := map[string]bool{}, 0
		for rt := range wins {
			pairs[rt] = true
			n++
		}
		if len(pairs) != 1 || n != 16 {
			t.Errorf("16 concurrent refreshes: %d succeeded with %d new refresh tokens, want 16 with 1", n, len(pairs))
		}
	})
	for _, scope := range []string{"openid email read write", "openid admin", "openid email offline_access read profile"} {
		t.Run("scope widening on refresh: "+scope, func(t *testing.T) {
			code, v := e.code(t, nil)
			_, first := e.token(t, "webapp", webappSecret, codeForm(code, v))
			res, out := e.token(t, "webapp", webappSecret, url.Values{"grant_type": {"refresh_token"},
				"refresh_token": {first["refresh_token"].(string)}, "scope": {scope}})
			check(t, res, out, 400, "invalid_scope")
		})
	}
	t.Run("id_token presented as an access token (typ at+jwt required)", func(t *testing.T) {
		code, v := e.code(t, nil)
		_, out := e.token(t, "webapp", webappSecret, codeForm(code, v))
		idt, _ := out["id_token"].(string)
		if idt == "" {
			t.Fatalf("no id_token: %v", out)
		}
		res, body := send(t, "GET", e.url+"/orders", bearer(idt))
		wa := expectDenied(t, res, body, 401, "invalid_token", idt)
		if !strings.Contains(wa, "typ") {
			t.Errorf("WWW-Authenticate %q does not name typ", wa)
		}
	})
	t.Run("success answers carry no-store", func(t *testing.T) {
		code, v := e.code(t, nil)
		res, out := e.token(t, "webapp", webappSecret, codeForm(code, v))
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%d Cache-Control %q %v", res.StatusCode, res.Header.Get("Cache-Control"), out)
		}
	})
}

func TestIssuerDocuments(t *testing.T) {
	e := newLoginEnv(t)
	res, jwksBody := send(t, "GET", e.url+"/idp/jwks", nil)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(jwksBody), &set); err != nil || res.StatusCode != 200 || len(set.Keys) == 0 {
		t.Fatalf("jwks %d %v %.200q", res.StatusCode, err, jwksBody)
	}
	for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth", "priv"} {
		t.Run("JWKS has no "+member, func(t *testing.T) {
			for _, k := range set.Keys {
				if _, ok := k[member]; ok {
					t.Errorf("key %v publishes private member %s", k["kid"], member)
				}
			}
		})
	}
	_, want := send(t, "GET", e.url+"/idp/.well-known/openid-configuration", nil)
	for _, hdr := range []http.Header{
		{"X-Forwarded-Host": {"evil.example"}},
		{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
		{"Forwarded": {"host=evil.example;proto=https"}},
		{"X-Original-Url": {"https://evil.example/idp"}},
	} {
		t.Run("discovery ignores "+strings.Join(mapKeys(hdr), "+"), func(t *testing.T) {
			_, got := send(t, "GET", e.url+"/idp/.well-known/openid-configuration", hdr)
			if got != want || strings.Contains(got, "evil") {
				t.Errorf("discovery changed: %.300s", got)
			}
		})
	}
	for _, host := range []string{"evil.example", "evil.example:443", "127.0.0.1.evil.example"} {
		for _, doc := range []string{"openid-configuration", "oauth-authorization-server"} {
			t.Run("discovery "+doc+" with Host "+host, func(t *testing.T) {
				res, got := raw(t, e.addr, "GET /idp/.well-known/"+doc+" HTTP/1.1", "Host: "+host, "Connection: close")
				var doc map[string]any
				_ = json.Unmarshal([]byte(got), &doc)
				if res.StatusCode != 200 || strings.Contains(got, "evil") || doc["issuer"] != e.url+"/idp" || doc["token_endpoint"] != e.url+"/idp/token" {
					t.Errorf("%d %.300s", res.StatusCode, got)
				}
			})
		}
	}
	t.Run("login page refuses framing", func(t *testing.T) {
		u, _ := e.authURL(nil)
		res, body := newBrowser(t).do("GET", u, nil, nil)
		if !strings.Contains(body, `name="password"`) {
			t.Fatalf("no login page: %d", res.StatusCode)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("login page headers %v", res.Header)
		}
	})
	t.Run("login form without CSRF token", func(t *testing.T) {
		u, _ := e.authURL(nil)
		b := newBrowser(t)
		_, page := b.do("GET", u, nil, nil)
		f := hidden(page)
		f.Del("csrf")
		f.Set("username", "alice")
		f.Set("password", "alice-password")
		res, _ := b.do("POST", e.url+"/idp/authorize", f, nil)
		if res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
			t.Errorf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
	t.Run("login form CSRF token from another browser", func(t *testing.T) {
		u, _ := e.authURL(nil)
		_, page := newBrowser(t).do("GET", u, nil, nil)
		b := newBrowser(t)
		b.do("GET", u, nil, nil)
		f := hidden(page)
		f.Set("username", "alice")
		f.Set("password", "alice-password")
		res, _ := b.do("POST", e.url+"/idp/authorize", f, nil)
		if res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
			t.Errorf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

func mapKeys(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}
