package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// forwardAuthEnv is the login gateway with a public /health route, and a
// browser signed in as alice.
func forwardAuthEnv(t *testing.T) (*loginEnv, *browser) {
	t.Helper()
	e := newLoginEnvWith(t, func(y string) string {
		return strings.Replace(y, "routes:\n", "routes:\n  - name: health\n    path_prefix: /health\n    upstream: http://127.0.0.1:1\n    auth: public\n", 1)
	})
	b := newBrowser(t)
	if res, body := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	return e, b
}

// ask sends one forward-auth request from remote (host:port) to the
// gateway in-process.
func (e *loginEnv) ask(target, remote string, h http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", e.base+target, nil)
	req.RemoteAddr = remote
	for k, v := range h {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	e.gw.ServeHTTP(rec, req)
	return rec
}

const (
	trusted   = "127.0.0.1:40000"
	untrusted = "192.0.2.10:40000" // TEST-NET-1: an address no test reaches
)

// family is every identity header a forward-auth answer carries.
var family = []string{
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username", "X-Forwarded-User", "X-Forwarded-Email",
	"X-Forwarded-Groups", "X-Forwarded-Preferred-Username", "Remote-User",
}

func checkFamily(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for _, name := range family {
		v, ok := h[name]
		if !ok || len(v) != 1 || v[0] != want[name] {
			t.Errorf("%s: %q (present %v), want exactly %q", name, v, ok, want[name])
		}
	}
}

func TestForwardAuthAnswers(t *testing.T) {
	e, b := forwardAuthEnv(t)
	session := b.sessionCookie(e.base)
	withSession := func(h http.Header) http.Header {
		h.Set("Cookie", session.Name+"="+session.Value+"; app=1; _portcullis_login_abc=x")
		return h
	}

	t.Run("signed in: the identity, every other header blank, cookies without portcullis'", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, withSession(http.Header{"X-Original-Url": {e.base + "/orders"}}))
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		checkFamily(t, rec.Header(), map[string]string{"X-Auth-Request-User": "alice", "X-Auth-Request-Email": "alice@example.com"})
		if c := rec.Header().Values("Cookie"); len(c) != 1 || c[0] != "app=1" {
			t.Errorf("Cookie %q, want app=1", c)
		}
		if _, ok := rec.Header()["Authorization"]; ok {
			t.Errorf("Authorization %q in the answer of a route that does not forward the token", rec.Header()["Authorization"])
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", rec.Header().Get("Cache-Control"))
		}
	})
	t.Run("public route: every identity header blank", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Forwarded-Uri": {"/health/live"}, "Cookie": {"_portcullis=forged; app=1"},
			"Authorization": {"Basic YXBwOmFwcA=="}, "X-Auth-Request-User": {"spoofed"}})
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		checkFamily(t, rec.Header(), nil)
		if c := rec.Header().Get("Cookie"); c != "app=1" {
			t.Errorf("Cookie %q, want app=1", c)
		}
		if a := rec.Header().Get("Authorization"); a != "Basic YXBwOmFwcA==" {
			t.Errorf("a public route keeps the client's own Authorization, as the proxy mode does: got %q", a)
		}
	})
	t.Run("portcullis' own paths are allowed, so a proxy that sends them through forward-auth cannot loop", func(t *testing.T) {
		for _, p := range []string{"/idp/authorize?client_id=portcullis", "/oauth2/callback?code=x", "/idp/.well-known/openid-configuration"} {
			rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Original-Url": {e.base + p}, "Accept": {"text/html"}})
			if rec.Code != 200 {
				t.Errorf("%s: %d, want 200", p, rec.Code)
			}
			checkFamily(t, rec.Header(), nil)
		}
	})
	t.Run("a gRPC call asked about is answered in HTTP: a 200 with grpc-status would let it through", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Forwarded-Uri": {"/orders"}, "X-Forwarded-Method": {"POST"},
			"Content-Type": {"application/grpc"}})
		if rec.Code != 401 || rec.Header().Get("Grpc-Status") != "" {
			t.Errorf("%d, grpc-status %q, want a plain 401", rec.Code, rec.Header().Get("Grpc-Status"))
		}
	})
	t.Run("original method: a POST never starts a login", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Forwarded-Uri": {"/orders"}, "X-Forwarded-Method": {"POST"}, "Accept": {"text/html"}})
		if rec.Code != 401 || rec.Header().Get("Location") != "" {
			t.Errorf("%d to %q, want 401", rec.Code, rec.Header().Get("Location"))
		}
	})
	t.Run("X-Forwarded-Host, -Proto and -Uri make the return URL", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Forwarded-Uri": {"/orders?id=7"}, "X-Forwarded-Proto": {"https"},
			"X-Forwarded-Host": {"shop.example"}, "X-Forwarded-Method": {"GET"}, "Accept": {"text/html"}})
		want := e.base + "/oauth2/start?rd=" + url.QueryEscape("https://shop.example/orders?id=7")
		if rec.Code != 302 || rec.Header().Get("Location") != want {
			t.Errorf("%d to %q, want 302 to %q", rec.Code, rec.Header().Get("Location"), want)
		}
	})
	t.Run("Envoy: the original path and query follow the endpoint", func(t *testing.T) {
		rec := e.ask("/oauth2/auth/orders?id=7", untrusted, http.Header{"Accept": {"text/html"}})
		want := e.base + "/oauth2/start?rd=" + url.QueryEscape(e.base+"/orders?id=7")
		if rec.Code != 302 || rec.Header().Get("Location") != want {
			t.Errorf("%d to %q, want 302 to %q", rec.Code, rec.Header().Get("Location"), want)
		}
	})
	t.Run("from an untrusted address the original-request headers are ignored", func(t *testing.T) {
		// It names portcullis' own path and a public route: neither counts,
		// the request is judged as GET / (the app route, login required).
		for _, h := range []http.Header{
			{"X-Original-Url": {e.base + "/idp/authorize"}},
			{"X-Forwarded-Uri": {"/health"}},
			{"X-Forwarded-Uri": {"/health"}, "X-Forwarded-Method": {"POST"}},
		} {
			h.Set("Accept", "text/html")
			rec := e.ask("/oauth2/auth", untrusted, h)
			want := e.base + "/oauth2/start?rd=" + url.QueryEscape(e.base+"/")
			if rec.Code != 302 || rec.Header().Get("Location") != want {
				t.Errorf("%v: %d to %q, want 302 to %q", h, rec.Code, rec.Header().Get("Location"), want)
			}
		}
	})
	t.Run("beside nginx's X-Original-URL, X-Forwarded-* are the client's and ignored", func(t *testing.T) {
		// /api denies without redirect; "/" (app) would send a browser to
		// log in.
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Original-Url": {e.base + "/api/items"},
			"X-Forwarded-Uri": {"/"}, "X-Forwarded-Method": {"GET"}, "Accept": {"text/html"}})
		if rec.Code != 401 || rec.Header().Get("Location") != "" {
			t.Errorf("%d to %q; want /api's 401", rec.Code, rec.Header().Get("Location"))
		}
		rec = e.ask("/oauth2/auth", trusted, http.Header{"X-Original-Url": {e.base + "/orders"},
			"X-Original-Method": {"GET"}, "X-Forwarded-Method": {"POST"}, "Accept": {"text/html"}})
		if rec.Code != 302 {
			t.Errorf("X-Forwarded-Method beside X-Original-Method: %d, want 302 (judged as GET)", rec.Code)
		}
	})
	t.Run("portcullis' own paths are its own on its hosts only", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Original-Url": {"http://other.example/idp/authorize"}, "Accept": {"text/html"}})
		if rec.Code != 302 {
			t.Errorf("/idp/authorize on another host: %d, want the app route's login redirect", rec.Code)
		}
	})
	t.Run("an ambiguous original path is 400, as in the proxy mode", func(t *testing.T) {
		for _, target := range []string{"/oauth2/auth", "/oauth2/auth/x%2F..%2Fapi/items"} {
			rec := e.ask(target, trusted, withSession(http.Header{"X-Original-Url": {e.base + "/x%2F..%2Fapi/items"}}))
			if target != "/oauth2/auth" {
				rec = e.ask(target, untrusted, withSession(http.Header{}))
			}
			if rec.Code != 400 {
				t.Errorf("%s: %d, want 400", target, rec.Code)
			}
		}
	})
	t.Run("a malformed original URL is 400", func(t *testing.T) {
		for _, h := range []http.Header{{"X-Original-Url": {"http://[::1"}}, {"X-Forwarded-Uri": {"no-slash"}},
			{"X-Original-Url": {"http://user@gw.test/orders"}}, {"X-Forwarded-Uri": {"/orders#frag"}}} {
			if rec := e.ask("/oauth2/auth", trusted, h); rec.Code != 400 {
				t.Errorf("%v: %d, want 400", h, rec.Code)
			}
		}
	})
	t.Run("a bad method name is ignored", func(t *testing.T) {
		rec := e.ask("/oauth2/auth", trusted, http.Header{"X-Forwarded-Uri": {"/orders"}, "X-Forwarded-Method": {"G\x01T"}, "Accept": {"text/html"}})
		if rec.Code != 302 {
			t.Errorf("%d, want 302 (judged as the GET it came as)", rec.Code)
		}
	})
}

// Sessions kept in memory survive a configuration reload: the new
// configuration takes the store over.
func TestMemorySessionsSurviveReload(t *testing.T) {
	var yml string
	e := newLoginEnvWith(t, func(y string) string {
		yml = strings.Replace(y, "login:\n", "login:\n  session_store: memory\n", 1)
		return yml
	})
	if !strings.Contains(yml, "session_store: memory") {
		t.Fatal("no login section to edit")
	}
	b := newBrowser(t)
	if res, body := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	if c := b.sessionCookie(e.base); len(c.Value) > 200 {
		t.Fatalf("session cookie of %d bytes; want only an id", len(c.Value))
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(yml, "routes:\n",
		"routes:\n  - name: extra\n    path_prefix: /extra\n    upstream: http://127.0.0.1:1\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.gw.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.do("GET", e.base+"/orders", nil, nil); res.StatusCode != 200 {
		t.Fatalf("after reload: %d; want the session kept", res.StatusCode)
	}
}

// FuzzForwardAuthOriginal feeds a trusted proxy's original-request headers
// to the forward-auth endpoint: whatever they hold, the answer is one of
// portcullis' own, never a panic, and a login always starts at the public
// URL's own /oauth2/start.
func FuzzForwardAuthOriginal(f *testing.F) {
	e := newLoginEnv(f)
	for _, s := range [][4]string{
		{"http://gw.test/orders?x=1", "", "GET", ""},
		{"", "/orders/../idp/authorize", "POST", "gw.test"},
		{"https://[::1]:99/%2e%2e/x", "//x", "G\x00T", "a\r\nb"},
		{"/relative", "?q", "", "evil.example:443"},
		{"http://gw.test/idp/authorize", "/health", "HEAD", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], "/", true)
		f.Add(s[0], s[1], s[2], s[3], "/api/x?y=1", false)
	}
	start := e.base + "/oauth2/start?rd="
	f.Fuzz(func(t *testing.T, origURL, fwdURI, method, fwdHost, suffix string, fromTrusted bool) {
		target := e.base + "/oauth2/auth"
		if u, err := url.Parse(target + suffix); err == nil && strings.HasPrefix(suffix, "/") {
			target = u.String()
		}
		req := httptest.NewRequest("GET", e.base+"/", nil)
		u, err := url.Parse(target)
		if err != nil {
			return
		}
		req.URL, req.RequestURI = u, u.RequestURI()
		req.RemoteAddr = untrusted
		if fromTrusted {
			req.RemoteAddr = trusted
		}
		req.Header = http.Header{"Accept": {"text/html"}, "X-Original-Url": {origURL}, "X-Forwarded-Uri": {fwdURI},
			"X-Forwarded-Method": {method}, "X-Forwarded-Host": {fwdHost}}
		rec := httptest.NewRecorder()
		e.gw.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 401, 403, 404:
		case 302:
			// A path that is not the endpoint once cleaned (/oauth2/auth/..)
			// is an ordinary route's, whose login redirect is relative: on
			// the host asked, here the public URL's.
			loc, err := req.URL.Parse(rec.Header().Get("Location"))
			if err != nil || !strings.HasPrefix(loc.String(), start) {
				t.Fatalf("login at %q, want under %s", rec.Header().Get("Location"), start)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
