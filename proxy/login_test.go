package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/oidcclient"
	"github.com/portcullis-dev/portcullis/serve"
)

// loginConfig is a gateway with the built-in issuer and browser login.
// %[1]s base URL, %[2]s upstream, %[3]s password hash.
var loginConfig = testgw.Login{Listen: "127.0.0.1:18082", TrustedProxies: `"127.0.0.1"`,
	Routes: `  - name: api
    path_prefix: /api
    upstream: %[2]q
    on_unauthenticated: deny
    forward_headers: {X-Auth-Request-User: sub}
`,
	AppHeaders: "{X-Auth-Request-User: sub, X-Auth-Request-Email: email}"}.YAML()

type loginEnv struct {
	t     testing.TB
	base  string
	clock *testclock.Clock
	gw    *serve.Server
}

func newLoginEnv(t testing.TB) *loginEnv {
	t.Helper()
	return newLoginEnvWith(t, nil)
}

// newLoginEnvWith is newLoginEnv with the configuration text edited by mod.
func newLoginEnvWith(t testing.TB, mod func(string) string) *loginEnv {
	t.Helper()
	up := upstream(t)
	e := &loginEnv{t: t, clock: testclock.New(time.Now())}
	log := testgw.Logger(t, slog.LevelDebug, nil)
	switch t.(type) {
	case *testing.B, *testing.F:
		// A log line per request would be what a benchmark measures, and
		// a fuzz target may not log through its *testing.F.
		log = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g := testgw.Start(t, testgw.Options{Now: e.clock.Now, Logger: log, Config: func(base string) string {
		yml := fmt.Sprintf(loginConfig, base, up, testgw.AliceHash())
		if mod != nil {
			yml = mod(yml)
		}
		return yml
	}})
	e.base, e.gw = g.URL, g.Server
	return e
}

// browser is a cookie-keeping client that does not follow redirects, so
// each hop can be checked.
type browser struct {
	*testgw.Browser
	c *http.Client // Browser.Client, whose cookie jar tests read and set
}

func newBrowser(t testing.TB) *browser {
	b := testgw.NewBrowser(t)
	return &browser{Browser: b, c: b.Client}
}

func (b *browser) do(method, u string, form url.Values, hdr http.Header) (*http.Response, string) {
	b.T.Helper()
	return b.Do(method, u, form, hdr)
}

// visit follows redirects from u, filling the login form when it appears,
// and returns the final response.
func (b *browser) visit(base, u string) (*http.Response, string) {
	b.T.Helper()
	return b.Visit(base, u)
}

func TestBrowserLoginFlow(t *testing.T) {
	e := newLoginEnv(t)
	b := newBrowser(t)

	// A page navigation without a session goes to login and comes back to
	// the page asked for, with the identity.
	res, _ := b.do("GET", e.base+"/orders?id=7", nil, nil)
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != "/oauth2/start?rd="+url.QueryEscape("/orders?id=7") {
		t.Fatalf("first visit: %d %q", res.StatusCode, loc)
	}
	res, body := b.visit(e.base, e.base+"/orders?id=7")
	if res.StatusCode != 200 || !strings.Contains(body, `"X-Auth-Request-User":["alice"]`) || !strings.Contains(body, `"uri":"/orders?id=7"`) {
		t.Fatalf("after login: %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, "_portcullis") {
		t.Error("the session cookie reached the upstream")
	}
	if !strings.Contains(body, `"X-Auth-Request-Email":["alice@example.com"]`) {
		t.Errorf("email claim not forwarded: %s", body)
	}

	// No new login on the next visit.
	res, _ = b.do("GET", e.base+"/again", nil, nil)
	if res.StatusCode != 200 {
		t.Fatalf("second visit: %d", res.StatusCode)
	}

	// XHR and API clients get 401, never a redirect.
	anon := newBrowser(t)
	res, _ = anon.do("GET", e.base+"/orders", nil, http.Header{"Accept": {"application/json"}})
	if res.StatusCode != 401 {
		t.Errorf("XHR without session: %d", res.StatusCode)
	}
	res, _ = anon.do("GET", e.base+"/orders", nil, http.Header{"X-Requested-With": {"XMLHttpRequest"}})
	if res.StatusCode != 401 {
		t.Errorf("X-Requested-With without session: %d", res.StatusCode)
	}
	res, _ = anon.do("GET", e.base+"/api/x", nil, nil)
	if res.StatusCode != 401 {
		t.Errorf("deny route: %d", res.StatusCode)
	}

	// /oauth2/userinfo answers the session's identity.
	res, body = b.do("GET", e.base+"/oauth2/userinfo", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `"sub":"alice"`) {
		t.Errorf("userinfo %d %s", res.StatusCode, body)
	}

	// Forward-auth as nginx auth_request sends it.
	res, _ = b.do("GET", e.base+"/oauth2/auth", nil, http.Header{"X-Original-Url": {e.base + "/orders"}})
	if res.StatusCode != 200 || res.Header.Get("X-Auth-Request-User") != "alice" {
		t.Errorf("forward-auth with session: %d %v", res.StatusCode, res.Header)
	}
	// Without a session a navigation is sent to log in, back to the
	// original absolute URL; with ?redirect=header (nginx) that is a 401
	// naming the login URL; anything else is a plain 401.
	login := e.base + "/oauth2/start?rd=" + url.QueryEscape(e.base+"/orders?x=1")
	orig := http.Header{"X-Original-Url": {e.base + "/orders?x=1"}}
	res, _ = anon.do("GET", e.base+"/oauth2/auth", nil, orig)
	if res.StatusCode != 302 || res.Header.Get("Location") != login {
		t.Errorf("forward-auth navigation without session: %d %q, want 302 to %s", res.StatusCode, res.Header.Get("Location"), login)
	}
	res, _ = anon.do("GET", e.base+"/oauth2/auth?redirect=header", nil, orig)
	if res.StatusCode != 401 || res.Header.Get("Location") != "" || res.Header.Get("X-Auth-Request-Redirect") != login {
		t.Errorf("forward-auth navigation, redirect=header: %d %v", res.StatusCode, res.Header)
	}
	xhr := http.Header{"X-Original-Url": orig["X-Original-Url"], "Accept": {"application/json"}}
	res, _ = anon.do("GET", e.base+"/oauth2/auth", nil, xhr)
	if res.StatusCode != 401 || res.Header.Get("Location") != "" || !strings.HasPrefix(res.Header.Get("Www-Authenticate"), "Bearer ") {
		t.Errorf("forward-auth XHR without session: %d %v", res.StatusCode, res.Header)
	}
	// Envoy ext_authz appends the original path to the endpoint.
	res, _ = b.do("GET", e.base+"/oauth2/auth/api/items", nil, nil)
	if res.StatusCode != 200 || res.Header.Get("X-Auth-Request-User") != "alice" {
		t.Errorf("envoy-style forward-auth: %d %v", res.StatusCode, res.Header)
	}
	res, _ = anon.do("GET", e.base+"/oauth2/auth/api/items", nil, nil)
	if res.StatusCode != 401 {
		t.Errorf("envoy-style forward-auth without session: %d", res.StatusCode)
	}

	// The access token expires: the session refreshes without a redirect.
	e.clock.Advance(20 * time.Minute)
	res, body = b.do("GET", e.base+"/later", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "alice") {
		t.Fatalf("after access token expiry: %d", res.StatusCode)
	}
	if !strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), ";"), "_portcullis") {
		t.Error("refreshed session not written back")
	}
	res, _ = b.do("GET", e.base+"/later-still", nil, nil)
	if res.StatusCode != 200 {
		t.Fatalf("after refresh: %d", res.StatusCode)
	}

	// Sign out: the next visit asks for login again.
	res, _ = b.do("GET", e.base+"/oauth2/sign_out", nil, nil)
	loc, _ := res.Location()
	if res.StatusCode != 302 || loc == nil || !strings.HasPrefix(loc.String(), e.base+"/idp/logout") {
		t.Fatalf("sign out: %d %v", res.StatusCode, loc)
	}
	res, _ = b.do("GET", loc.String(), nil, nil)
	if loc, _ := res.Location(); res.StatusCode != 303 || loc.String() != e.base+"/oauth2/signed_out" {
		t.Fatalf("issuer logout: %d %v", res.StatusCode, loc)
	}
	res, body = b.do("GET", e.base+"/oauth2/signed_out", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "You are signed out.") ||
		!strings.Contains(body, `href="/oauth2/start?rd=`) && !strings.Contains(body, `href="`+e.base+`/oauth2/start?rd=`) {
		t.Fatalf("signed-out page: %d\n%s", res.StatusCode, body)
	}
	res, _ = b.do("GET", e.base+"/orders", nil, nil)
	if res.StatusCode != 302 {
		t.Fatalf("after sign out: %d", res.StatusCode)
	}
	_, body = b.visit(e.base, e.base+"/orders")
	_ = body
}

func TestLoginRejections(t *testing.T) {
	e := newLoginEnv(t)

	t.Run("open redirect after login", func(t *testing.T) {
		for _, rd := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
			b := newBrowser(t)
			res, _ := b.do("GET", e.base+"/oauth2/start?rd="+url.QueryEscape(rd), nil, nil)
			for range 10 {
				loc, err := res.Location()
				if err != nil {
					break
				}
				if strings.Contains(loc.String(), "evil") && !strings.Contains(loc.String(), "/idp/authorize") {
					t.Fatalf("rd %q: redirected to %s", rd, loc)
				}
				res, _ = b.visit(e.base, loc.String())
			}
		}
	})
	t.Run("state mismatch and replayed callback", func(t *testing.T) {
		b := newBrowser(t)
		res, _ := b.do("GET", e.base+"/oauth2/start?rd=/x", nil, nil)
		loc, _ := res.Location()
		// Drive the login by hand to capture the callback URL.
		_, body := b.do("GET", loc.String(), nil, nil)
		res, _ = b.do("POST", e.base+"/idp/authorize", testgw.LoginForm(body), nil)
		loc, _ = res.Location()
		res, _ = b.do("GET", loc.String(), nil, nil)
		callback, _ := res.Location()
		if !strings.Contains(callback.Path, "/oauth2/callback") {
			t.Fatalf("expected the callback, got %v", callback)
		}
		wrong := *callback
		q := wrong.Query()
		q.Set("state", "forged-state-value")
		wrong.RawQuery = q.Encode()
		if res, _ := b.do("GET", wrong.String(), nil, nil); res.StatusCode != 400 {
			t.Errorf("state mismatch: %d", res.StatusCode)
		}
		if res, _ := b.do("GET", callback.String(), nil, nil); res.StatusCode != 302 {
			t.Fatalf("genuine callback: %d", res.StatusCode)
		}
		// Back onto the callback, signed in: on to the page, no new session.
		res, _ = b.do("GET", callback.String(), nil, nil)
		if loc, _ := res.Location(); res.StatusCode != 302 || loc == nil || loc.Path != "/x" {
			t.Errorf("replayed callback: %d %v, want a redirect to /x", res.StatusCode, loc)
		}
		for _, c := range res.Cookies() {
			if c.Name == "_portcullis" && c.MaxAge >= 0 {
				t.Errorf("replayed callback wrote a session cookie")
			}
		}
		if res, _ := newBrowser(t).do("GET", callback.String(), nil, nil); res.StatusCode != 400 {
			t.Errorf("callback in another browser: %d", res.StatusCode)
		}
	})
	t.Run("tampered and foreign cookies", func(t *testing.T) {
		for _, v := range []string{"garbage", strings.Repeat("A", 500), "AQ", ""} {
			b := newBrowser(t)
			u, _ := url.Parse(e.base)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "_portcullis", Value: v}})
			res, _ := b.do("GET", e.base+"/orders", nil, nil)
			if res.StatusCode != 302 {
				t.Errorf("cookie %q: %d, want a login redirect", v, res.StatusCode)
			}
		}
	})
	t.Run("two tabs log in at once", func(t *testing.T) {
		b := newBrowser(t)
		start := func(rd string) *url.URL {
			res, _ := b.do("GET", e.base+"/oauth2/start?rd="+url.QueryEscape(rd), nil, nil)
			loc, _ := res.Location()
			return loc
		}
		tab1, tab2 := start("/one"), start("/two")
		res, body := b.visit(e.base, tab1.String())
		if res.StatusCode != 200 || !strings.Contains(body, `"uri":"/one"`) {
			t.Fatalf("tab 1: %d %s", res.StatusCode, body)
		}
		res, body = b.visit(e.base, tab2.String())
		if res.StatusCode != 200 || !strings.Contains(body, `"uri":"/two"`) {
			t.Fatalf("tab 2: %d %s", res.StatusCode, body)
		}
	})
}

// TestSessionRepeatedRequests sends one session cookie many times: every
// request is verified and authorized anew against its route, and the id_token's
// claims reach the upstream each time.
func TestSessionRepeatedRequests(t *testing.T) {
	e := newLoginEnvWith(t, func(y string) string {
		return strings.Replace(y, "    on_unauthenticated: deny\n", "    on_unauthenticated: deny\n    require_scopes: [admin]\n", 1)
	})
	b := newBrowser(t)
	if res, body := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	cookie := b.sessionCookie(e.base)
	for i := range 3 {
		res, body := b.do("GET", e.base+"/orders", nil, nil)
		if res.StatusCode != 200 || !strings.Contains(body, `"X-Auth-Request-Email":["alice@example.com"]`) {
			t.Fatalf("request %d: %d %s", i, res.StatusCode, body)
		}
		// The session lacks the admin scope: refused every time, and kept.
		res, _ = b.do("GET", e.base+"/api/items", nil, nil)
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("request %d to a route the session does not satisfy: %d, want 403", i, res.StatusCode)
		}
		res, _ = b.do("GET", e.base+"/oauth2/auth/api/items", nil, nil)
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("forward-auth %d to a route the session does not satisfy: %d, want 403", i, res.StatusCode)
		}
		if got := b.sessionCookie(e.base); got.Value != cookie.Value {
			t.Fatalf("request %d changed the session cookie", i)
		}
	}

	// Tampered copies of the cookie never ride on the genuine one.
	for _, v := range []string{cookie.Value[:len(cookie.Value)-1], cookie.Value + "A", "x" + cookie.Value[1:]} {
		forger := newBrowser(t)
		u, _ := url.Parse(e.base)
		forger.c.Jar.SetCookies(u, []*http.Cookie{{Name: "_portcullis", Value: v}})
		if res, _ := forger.do("GET", e.base+"/orders", nil, nil); res.StatusCode != http.StatusFound {
			t.Errorf("tampered cookie: %d, want a login redirect", res.StatusCode)
		}
	}
}

// sessionCookie returns the browser's session cookie.
func (b *browser) sessionCookie(base string) *http.Cookie {
	b.T.Helper()
	c := b.Cookie(base, testgw.SessionCookie)
	if c == nil {
		b.T.Fatal("no session cookie")
	}
	return c
}

// BenchmarkSessionForwardAuth compares forward-auth answered from a
// browser's session cookie with the same answer for the session's access
// token sent as a bearer token, both repeated, in the same run:
//
//	go test -run=^$ -bench=SessionForwardAuth -benchmem ./proxy/
func BenchmarkSessionForwardAuth(b *testing.B) {
	e := newLoginEnv(b)
	br := newBrowser(b)
	if res, body := br.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
		b.Fatalf("login: %d %s", res.StatusCode, body)
	}
	cookie := br.sessionCookie(e.base)
	codec, err := oidcclient.NewCookieCodec(oidcclient.CookieConfig{
		Secrets: [][]byte{[]byte(testgw.CookieSecret)}, Now: e.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	probe := httptest.NewRequest("GET", "/", nil)
	probe.AddCookie(cookie)
	raw, err := codec.Open(probe, "_portcullis")
	if err != nil {
		b.Fatal(err)
	}
	var sess oidcclient.Session
	if err := json.Unmarshal(raw, &sess); err != nil || sess.AccessToken == "" {
		b.Fatalf("session %+v: %v", sess, err)
	}
	for _, c := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+sess.AccessToken) }},
		{"cookie", func(r *http.Request) { r.Header.Set("Cookie", cookie.Name+"="+cookie.Value) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://gw.test/oauth2/auth", nil)
				c.set(req)
				rec := httptest.NewRecorder()
				e.gw.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || rec.Header().Get("X-Auth-Request-User") != "alice" {
					b.Fatalf("status %d, headers %v", rec.Code, rec.Header())
				}
			}
		})
	}
}
