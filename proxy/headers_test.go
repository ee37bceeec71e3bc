package proxy_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawRequest sends a hand-written HTTP/1.1 request, so header spellings that
// Go's client would canonicalise reach the gateway as written.
func (e *env) rawRequest(lines ...string) *http.Response {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	req := strings.Join(lines, "\r\n") + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		e.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func TestSpoofedIdentityHeadersNeverReachUpstream(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	spoofs := []string{
		"X-Auth-Request-User: mallory",
		"x-auth-request-user: mallory",
		"X_Auth_Request_User: mallory",
		"x_auth_request_user: mallory",
		"X-AUTH-REQUEST-USER: mallory",
		"X-Auth-Request_User: mallory",
		"X-Tenant: evil",
		"X_Tenant: evil",
		"X-Forwarded-User: mallory",
		"X-Forwarded-Access-Token: forged",
		"X_Forwarded_For: 6.6.6.6",
		"X-Real-IP: 6.6.6.6",
		"Forwarded: for=6.6.6.6;host=evil",
		"X-Original-URL: /admin",
		"X-Rewrite-URL: /admin",
	}
	for _, route := range []struct{ path, token string }{
		{"/", tok},         // protected, identity set
		{"/public/x", ""},  // public
		{"/opt/x", ""},     // optional, anonymous
		{"/fwdhdr/x", tok}, // forward_token header route
	} {
		for _, spoof := range spoofs {
			t.Run(route.path+" "+spoof, func(t *testing.T) {
				lines := []string{"GET " + route.path + " HTTP/1.1", "Host: gw.test", spoof}
				if route.token != "" {
					lines = append(lines, "Authorization: Bearer "+route.token)
				}
				got := e.echo(e.rawRequest(append(lines, "Connection: close")...))
				for name, vals := range got.Headers {
					for _, v := range vals {
						if strings.Contains(v, "mallory") || strings.Contains(v, "evil") ||
							strings.Contains(v, "6.6.6.6") || v == "forged" || v == "/admin" {
							t.Errorf("upstream received spoofed %s: %s", name, v)
						}
					}
				}
				if route.path == "/" && got.Headers["X-Auth-Request-User"][0] != "alice" {
					t.Errorf("identity header %v", got.Headers["X-Auth-Request-User"])
				}
			})
		}
	}
}

func TestConnectionHeaderCannotRemoveIdentity(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	res := e.do("GET", "/", tok, http.Header{"Connection": {"X-Auth-Request-User, X-Auth-Request-Email, X-Forwarded-For"}})
	got := e.echo(res)
	if got.Headers["X-Auth-Request-User"] == nil || got.Headers["X-Auth-Request-User"][0] != "alice" {
		t.Errorf("Connection header removed X-Auth-Request-User: %v", got.Headers)
	}
	if got.Headers["X-Forwarded-For"] == nil {
		t.Error("Connection header removed X-Forwarded-For")
	}
}

func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	e := newEnv(t, "")
	got := e.echo(e.rawRequest("GET /public/ HTTP/1.1", "Host: gw.test",
		"X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https", "Connection: close"))
	if xff := strings.Join(got.Headers["X-Forwarded-For"], ","); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q from an untrusted client, want 127.0.0.1", xff)
	}
	if h := got.Headers["X-Forwarded-Host"]; len(h) != 1 || h[0] != "gw.test" {
		t.Errorf("X-Forwarded-Host %v, want gw.test", h)
	}
	if p := got.Headers["X-Forwarded-Proto"]; len(p) != 1 || p[0] != "http" {
		t.Errorf("X-Forwarded-Proto %v, want http", p)
	}
}

func TestForwardTokenModes(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	got := e.echo(e.do("GET", "/fwd/x", tok, nil))
	if a := got.Headers["Authorization"]; len(a) != 1 || a[0] != "Bearer "+tok {
		t.Errorf("forward_token authorization: Authorization %v", a)
	}
	got = e.echo(e.do("GET", "/fwdhdr/x", tok, nil))
	if a := got.Headers["X-Forwarded-Access-Token"]; len(a) != 1 || a[0] != tok {
		t.Errorf("forward_token header: %v", a)
	}
	if got.Headers["Authorization"] != nil {
		t.Error("Authorization forwarded on a header-mode route")
	}
	// A non-bearer Authorization header on a public route is the app's own.
	got = e.echo(e.do("GET", "/public/x", "", http.Header{"Authorization": {"Basic YTpi"}}))
	if a := got.Headers["Authorization"]; len(a) != 1 || a[0] != "Basic YTpi" {
		t.Errorf("public route lost the app's Authorization header: %v", a)
	}
}

func TestTokenFromQueryAndCookie(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	got := e.echo(e.do("GET", "/ws/feed?access_token="+tok+"&room=1", "", nil))
	if got.Headers["X-Auth-Request-User"][0] != "alice" {
		t.Fatalf("query token not accepted: %v", got.Headers)
	}
	if strings.Contains(got.URI, tok) || !strings.Contains(got.URI, "room=1") {
		t.Errorf("upstream URI %q: token must be removed, other parameters kept", got.URI)
	}
	got = e.echo(e.do("GET", "/ws/feed", "", http.Header{"Cookie": {"a=1; tok=" + tok + "; b=2"}}))
	if got.Headers["X-Auth-Request-User"][0] != "alice" {
		t.Fatalf("cookie token not accepted")
	}
	if c := strings.Join(got.Headers["Cookie"], ";"); strings.Contains(c, tok) || !strings.Contains(c, "a=1") || !strings.Contains(c, "b=2") {
		t.Errorf("upstream Cookie %q: token cookie must be removed, others kept", c)
	}
	// The default route does not read the query string.
	expectChallenge(t, e.do("GET", "/?access_token="+tok, "", nil), 401, "")
	// Header and query together: RFC 6750 §2 forbids more than one method.
	expectChallenge(t, e.do("GET", "/ws/feed?access_token="+tok, tok, nil), 400, "invalid_request")
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	res := e.rawRequest("GET / HTTP/1.1", "Host: gw.test", "Authorization: Bearer "+tok, "Authorization: Bearer "+tok, "Connection: close")
	expectChallenge(t, res, 400, "invalid_request")
	res = e.rawRequest("GET / HTTP/1.1", "Host: gw.test", "Authorization: Bearer ", "Connection: close")
	expectChallenge(t, res, 400, "invalid_request")
	for _, scheme := range []string{"bearer", "BEARER", "BeArEr"} {
		res = e.rawRequest("GET / HTTP/1.1", "Host: gw.test", "Authorization: "+scheme+" "+tok, "Connection: close")
		if res.StatusCode != 200 {
			t.Errorf("scheme %q: status %d", scheme, res.StatusCode)
		}
	}
	res = e.rawRequest("GET / HTTP/1.1", "Host: gw.test", "X-Big: "+strings.Repeat("a", 20000), "Connection: close")
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: status %d, want 431", res.StatusCode)
	}
}

func TestPathTricksCannotEscapeRules(t *testing.T) {
	e := newEnv(t, "")
	cases := []struct {
		path   string
		status int
	}{
		{"/public/../admin", 401},
		{"/public/%2e%2e/admin", 401},
		{"/public/%2E%2E/admin", 401},
		{"//admin", 401},
		{"/public//../admin", 401},
		{"/./admin", 401},
		{"/public/%2F..%2Fadmin", 400}, // a decoding upstream could read /admin
		{"/public%2F..%2Fadmin", 400},  // a decoding upstream could read /admin
		{"/public/..%2Fadmin", 400},
		{"/public/..%5Cadmin", 400},
		{"/public/..\\admin", 400},
		{"/public/..;/admin", 400},
		{"/ADMIN", 400},
		{"/public/x", 200},
		{"/publicx", 401}, // prefixes match whole segments
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			res := e.rawRequest("GET "+c.path+" HTTP/1.1", "Host: gw.test", "Connection: close")
			if res.StatusCode != c.status {
				t.Errorf("status %d, want %d", res.StatusCode, c.status)
			}
		})
	}
	// The cleaned path is what the upstream sees.
	got := e.echo(e.rawRequest("GET /public/a/../b//c/./d HTTP/1.1", "Host: gw.test", "Connection: close"))
	if got.URI != "/public/b/c/d" {
		t.Errorf("forwarded %q, want /public/b/c/d", got.URI)
	}
	got = e.echo(e.rawRequest("GET /public/a%2Fb?q=1 HTTP/1.1", "Host: gw.test", "Connection: close"))
	if got.URI != "/public/a%2Fb?q=1" {
		t.Errorf("forwarded %q, want the encoded slash kept", got.URI)
	}
}

func TestMethodsGetTheSameAuth(t *testing.T) {
	e := newEnv(t, "")
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		t.Run(m, func(t *testing.T) {
			res := e.do(m, "/", "", http.Header{"X-HTTP-Method-Override": {"GET"}})
			if res.StatusCode != 401 {
				t.Errorf("%s without token: %d", m, res.StatusCode)
			}
		})
	}
}
