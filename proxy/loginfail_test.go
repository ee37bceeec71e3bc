package proxy_test

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// TestLoginFailuresCountedAndLogged: a wrong password, an unknown user and
// a callback whose state no sign-in started are each counted under their
// reason and logged with the username, the address and the request id,
// never the password.
func TestLoginFailuresCountedAndLogged(t *testing.T) {
	up := upstream(t)
	logs := &testgw.LogBuffer{}
	clock := testclock.New(time.Now())
	g := testgw.Start(t, testgw.Options{Now: clock.Now, Logger: testgw.Logger(t, slog.LevelDebug, logs),
		Config: func(base string) string { return fmt.Sprintf(loginConfig, base, up, testgw.AliceHash()) }})
	b := newBrowser(t)

	page := b.LoginPage(g.URL + "/")
	for _, c := range []struct{ user, password string }{
		{testgw.Username, "not-the-password-7f3a"},
		{"mallory", "not-the-password-7f3a"},
	} {
		f := testgw.HiddenFields(page)
		f.Set("username", c.user)
		f.Set("password", c.password)
		b.Do("POST", g.URL+"/idp/authorize", f, http.Header{"X-Request-Id": {"req-" + c.user}})
	}
	b.Do("GET", g.URL+"/oauth2/callback?state=forged&code=x", nil, http.Header{"X-Request-Id": {"req-forged"}})

	metrics := func() string {
		rec := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	body := metrics()
	for _, want := range []string{
		`portcullis_login_failures_total{reason="bad_password"} 1`,
		`portcullis_login_failures_total{reason="unknown_user"} 1`,
		`portcullis_login_failures_total{reason="state_mismatch"} 1`,
		`portcullis_login_failures_total{reason="nonce_mismatch"} 0`,
		`portcullis_login_failures_total{reason="throttled"} 0`,
		`portcullis_login_failures_total{reason="provider_error"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The built-in issuer's keys count as a key set too, without an age.
	if want := `portcullis_jwks_ready{issuer="` + g.URL + `/idp"} 1`; !strings.Contains(body, want) {
		t.Errorf("metrics lack %s", want)
	}
	if strings.Contains(body, `portcullis_jwks_age_seconds{issuer="`+g.URL+`/idp"}`) {
		t.Error("the built-in issuer's keys report an age, but are never fetched")
	}
	out := logs.String()
	for _, want := range []string{
		`msg="login failed" reason=bad_password username=` + testgw.Username + ` remote=127.0.0.1 client=portcullis request_id=req-` + testgw.Username,
		`msg="login failed" reason=unknown_user username=mallory remote=127.0.0.1 client=portcullis request_id=req-mallory`,
		`msg="login failed" reason=state_mismatch remote=127.0.0.1 request_id=req-forged`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(out, "not-the-password") {
		t.Error("a password was logged")
	}
}

// TestForbiddenNavigationPage: a signed-in browser that lacks a claim the
// route requires gets a page saying which, with a sign-out link; an API
// client gets the RFC 6750 answer; both 403 with the challenge.
func TestForbiddenNavigationPage(t *testing.T) {
	e := newLoginEnvWith(t, func(yml string) string {
		return strings.Replace(yml, "  - name: api\n", `  - name: ops
    path_prefix: /ops
    upstream: "http://127.0.0.1:1"
    require_claims: {department: [ops, sre]}
  - name: api
`, 1)
	})
	b := newBrowser(t)
	if res, _ := b.visit(e.base, e.base+"/"); res.StatusCode != 200 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	res, body := b.do("GET", e.base+"/ops/x", nil, nil)
	if res.StatusCode != 403 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "this page needs your account&#39;s department to be ops or sre.") ||
		!strings.Contains(body, `href="/oauth2/sign_out">Sign out</a>`) ||
		!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("navigation: %d %q %q\n%s", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("WWW-Authenticate"), body)
	}
	res, body = b.do("GET", e.base+"/ops/x", nil, http.Header{"Accept": {"application/json"}})
	if res.StatusCode != 403 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "insufficient_scope") {
		t.Errorf("API client: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	// The same answer from forward-auth, for the original request a proxy
	// asks about.
	res, body = b.do("GET", e.base+"/oauth2/auth", nil, http.Header{"X-Forwarded-Uri": {"/ops/x"}, "X-Forwarded-Method": {"GET"}})
	if res.StatusCode != 403 || !strings.Contains(body, "department to be ops or sre") {
		t.Errorf("forward-auth navigation: %d\n%s", res.StatusCode, body)
	}
}

// TestSignInHostMismatch: a sign-in started under another loopback name
// than the public URL's moves there first; a callback for a sign-in
// started at another address names the mismatch.
func TestSignInHostMismatch(t *testing.T) {
	e := newLoginEnv(t)
	pub, _ := url.Parse(e.base)
	b := newBrowser(t)
	req, _ := http.NewRequest("GET", e.base+"/oauth2/start?rd=/orders", nil)
	req.Host = "localhost:" + pub.Port()
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc, _ := res.Location(); res.StatusCode != 302 || loc == nil || loc.Host != pub.Host || loc.Path != "/oauth2/start" || loc.Query().Get("rd") != e.base+"/orders" {
		t.Errorf("start under localhost: %d %v, want the same start at %s", res.StatusCode, loc, pub.Host)
	}
	state := "abcdefghijklmnop~" + base64.RawURLEncoding.EncodeToString([]byte("app.other.example:8080"))
	res, body := b.do("GET", e.base+"/oauth2/callback?code=x&state="+state, nil, nil)
	if res.StatusCode != 400 || !strings.Contains(body, "The sign-in was started at app.other.example:8080, but this site&#39;s address is "+pub.Host) {
		t.Errorf("callback for another address: %d\n%s", res.StatusCode, body)
	}
}

// TestDeviceCookieIsNoToken: the built-in issuer's device cookie is a JWT
// it signed, but no token the gateway accepts.
func TestDeviceCookieIsNoToken(t *testing.T) {
	e := newLoginEnv(t)
	b := newBrowser(t)
	if res, _ := b.visit(e.base, e.base+"/"); res.StatusCode != 200 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	dev := b.Cookie(e.base+"/idp/", "portcullis_idp_device")
	if dev == nil {
		t.Fatal("no device cookie after signing in")
	}
	req, _ := http.NewRequest("GET", e.base+"/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+dev.Value)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("device cookie as a bearer token: %d, want 401", res.StatusCode)
	}
}
