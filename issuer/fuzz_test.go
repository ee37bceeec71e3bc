package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/uripattern"
	"github.com/portcullis-dev/portcullis/issuer"
)

// FuzzForms sends arbitrary bodies and query strings to every endpoint that
// parses a form. Nothing may panic, no answer may be a 5xx, and no answer
// may redirect anywhere but the registered redirect URI.
func FuzzForms(f *testing.F) {
	seeds := []struct{ path, query, body string }{
		{"/token", "", "grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2Fapp.test%2Fcallback&code_verifier=abc"},
		{"/token", "", "grant_type=refresh_token&refresh_token=x&scope=openid"},
		{"/token", "", "grant_type=client_credentials&client_id=machine&client_secret=x"},
		{"/token", "", "grant_type=%zz"},
		{"/authorize", "response_type=code&client_id=webapp&redirect_uri=http%3A%2F%2Fapp.test%2Fcallback&scope=openid", "action=login&csrf=x&username=alice&password=p"},
		{"/authorize", "client_id=webapp&redirect_uri=http%3A%2F%2Fapp.test%2Fcallback&max_age=-1&prompt=none+login", ""},
		{"/revoke", "", "token=a.b.c&token_type_hint=access_token"},
		{"/introspect", "", "token=" + strings.Repeat("a", 5000)},
		{"/logout", "id_token_hint=a.b.c&post_logout_redirect_uri=http%3A%2F%2Fevil", ""},
		{"/userinfo", "", "access_token=x"},
	}
	for _, s := range seeds {
		f.Add(s.path, s.query, s.body)
	}
	p := newIDP(f)
	f.Fuzz(func(t *testing.T, path, query, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# \t\r\n") {
			return
		}
		for _, method := range []string{"GET", "POST"} {
			u, err := url.Parse("http://issuer.test/idp" + path + "?" + sanitizeQuery(query))
			if err != nil {
				return
			}
			req := httptest.NewRequest(method, "http://issuer.test/", strings.NewReader(body))
			req.URL, req.RequestURI = u, u.RequestURI()
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("webapp", webSecret)
			rec := httptest.NewRecorder()
			p.iss.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body.String())
			}
			if loc := rec.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "http://app.test/") &&
				!strings.HasPrefix(loc, p.url) && !sameOrigin(loc) {
				t.Fatalf("%s %s: redirect to %q", method, path, loc)
			}
		}
	})
}

// sameOrigin reports whether loc is a path on the same host (the mux's
// path-cleaning redirects), not "//host" or "/\\host".
func sameOrigin(loc string) bool {
	return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\")
}

// sanitizeQuery drops characters a request line cannot carry.
func sanitizeQuery(q string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == '#' || r >= 0x7f {
			return -1
		}
		return r
	}, q)
}

func TestEndpointErrors(t *testing.T) {
	p := newIDP(t)
	cases := []struct {
		name, method, path, auth, body string
		status                         int
		contains                       string
	}{
		{"userinfo without token", "GET", "/userinfo", "", "", 401, "invalid_request"},
		{"userinfo with garbage", "GET", "/userinfo", "Bearer a.b.c", "", 401, "invalid_token"},
		{"token with GET", "GET", "/token", "", "", 405, ""},
		{"token without grant_type", "POST", "/token", "basic", "", 400, "invalid_request"},
		{"token unknown client", "POST", "/token", "Basic bm9ib2R5Ong=", "grant_type=client_credentials", 401, "invalid_client"},
		{"revoke without token", "POST", "/revoke", "basic", "", 400, "invalid_request"},
		{"revoke unknown token", "POST", "/revoke", "basic", "token=nope", 200, ""},
		{"revoke without client auth", "POST", "/revoke", "", "token=nope", 401, "invalid_client"},
		{"introspect unknown token", "POST", "/introspect", "basic", "token=nope", 200, `"active":false`},
		{"introspect by a public client", "POST", "/introspect", "", "client_id=spa&token=nope", 401, "invalid_client"},
		{"introspect wrong content type", "POST", "/introspect", "basic", "", 400, "invalid_request"},
		{"logout with a forged hint", "GET", "/logout?id_token_hint=a.b.c", "", "", 200, "id_token_hint this issuer did not sign"},
		{"unknown path", "GET", "/nope", "", "", 404, "Not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://issuer.test/idp"+c.path, strings.NewReader(c.body))
			if c.name != "introspect wrong content type" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			switch {
			case c.auth == "basic":
				req.SetBasicAuth("webapp", webSecret)
			case c.auth != "":
				req.Header.Set("Authorization", c.auth)
			}
			rec := httptest.NewRecorder()
			p.iss.ServeHTTP(rec, req)
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.contains) {
				t.Fatalf("status %d body %q, want %d containing %q", rec.Code, rec.Body.String(), c.status, c.contains)
			}
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("JSON answer without Cache-Control: no-store")
			}
			if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" && c.auth != "" && c.auth != "basic" {
				t.Error("401 without WWW-Authenticate")
			}
			_ = http.StatusOK
		})
	}
}

// FuzzRegister sends arbitrary client metadata to the registration
// endpoint. Nothing may panic or answer 5xx, and a client it registers may
// have only loopback redirect URIs or ones under the configured pattern,
// the grant types and scopes registration offers, and a known method.
func FuzzRegister(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://127.0.0.1:3000/callback"],"client_name":"cli"}`,
		`{"redirect_uris":["https://app.example.com/callback"],"token_endpoint_auth_method":"client_secret_basic","scope":"openid offline_access"}`,
		`{"redirect_uris":["http://[::1]:1/cb"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"]}`,
		`{"redirect_uris":"x"}`, `[]`, `{"redirect_uris":["https://a.b.example.com/callback"]}`, `{"jwks":{}}`,
	} {
		f.Add(s)
	}
	p := newRegIDP(f, func(r *issuer.Registration) { r.MaxClients = 1 << 30; r.AddressLimit = 1 << 30 })
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", p.url+"/register", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		p.iss.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		case rec.Code != http.StatusCreated:
			return
		}
		var out struct {
			RedirectURIs []string `json:"redirect_uris"`
			GrantTypes   []string `json:"grant_types"`
			Scope        string   `json:"scope"`
			Method       string   `json:"token_endpoint_auth_method"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.RedirectURIs) == 0 {
			t.Fatalf("answer %s: %v", rec.Body, err)
		}
		for _, u := range out.RedirectURIs {
			if !uripattern.Loopback(u) && !uripattern.MustParse("https://*.example.com/callback").Match(u) {
				t.Fatalf("registered redirect URI %q", u)
			}
		}
		for _, g := range out.GrantTypes {
			if g != "authorization_code" && g != "refresh_token" {
				t.Fatalf("registered grant type %q", g)
			}
		}
		for _, s := range strings.Fields(out.Scope) {
			if !slices.Contains([]string{"openid", "profile", "email", "offline_access"}, s) {
				t.Fatalf("registered scope %q", s)
			}
		}
		if !slices.Contains([]string{"none", "client_secret_basic", "client_secret_post"}, out.Method) {
			t.Fatalf("registered method %q", out.Method)
		}
	})
}
