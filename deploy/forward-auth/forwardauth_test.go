package forwardauth_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/peers"
	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// Env is one example proxy in front of the echoing app, asking portcullis
// (in this process, with the example's portcullis.yaml) about every
// request.
type Env struct {
	Base           string // the proxy, as browsers reach it: http://LISTEN_ADDR
	PortcullisAddr string // portcullis itself, host:port
	Dir            string // the rendered copy of this folder
	Clock          *testclock.Clock
	IdP            *testidp.Server // a second token issuer the tests mint bearer tokens with
	Key            *testidp.Key
	Proxy          *peers.Process
	Logs           *testgw.LogBuffer // portcullis' log
}

// bigGroups makes alice's tokens about 6 KB each, so her session (an
// id_token and an access token) is well past 8 KB.
func bigGroups() string {
	g := make([]string, 160)
	for i := range g {
		g[i] = fmt.Sprintf("team-%03d-with-a-rather-long-group-name", i)
	}
	return "[" + strings.Join(g, ", ") + "]"
}

const aliceClaims = `claims: {email: alice@example.com, name: Alice, groups: [staff]}`

// start runs portcullis with the example configuration, the echoing app,
// and the proxy that run starts in the rendered folder.
func start(t *testing.T, run func(t *testing.T, dir, listen string) *peers.Process) *Env {
	t.Helper()
	upstream := strings.TrimPrefix(testgw.Upstream(t), "http://")
	ln, _ := testgw.Listen(t)
	listen := peers.FreeAddr(t)
	e := &Env{Base: "http://" + listen, PortcullisAddr: ln.Addr().String(), Clock: testclock.New(time.Now()), Logs: &testgw.LogBuffer{}}
	e.Dir = peers.Render(t, ".", peers.Vars(listen, ln.Addr().String(), upstream))
	b, err := os.ReadFile(filepath.Join(e.Dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]*testidp.Key
	e.IdP, keys = testgw.NewIssuer(t)
	e.Key = keys["ES256"]
	cfg := string(b)
	for old, repl := range map[string]string{
		aliceClaims:  `claims: {email: alice@example.com, name: Alice, groups: ` + bigGroups() + `}`,
		"issuers:\n": "issuers:\n  - issuer: \"" + e.IdP.URL + "\"\n    audiences: [app]\n",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("portcullis.yaml no longer has %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	testgw.Start(t, testgw.Options{
		Listener: ln, Now: e.Clock.Now, Logger: testgw.Logger(t, slog.LevelDebug, e.Logs),
		Config: func(string) string { return cfg },
		Env: map[string]string{
			"PORTCULLIS_CLIENT_SECRET": "forward-auth-client-secret",
			"PORTCULLIS_COOKIE_SECRET": "forward-auth-cookie-secret-0123456789abcdef",
			"ALICE_PASSWORD_HASH":      testgw.AliceHash(),
		},
	})
	e.Proxy = run(t, e.Dir, listen)
	return e
}

// token mints a bearer token of the second issuer for sub with scope and
// extra claims.
func (e *Env) token(t *testing.T, sub, scope string, extra map[string]any) string {
	c := e.IdP.Claims(sub, e.Clock.Now())
	c["aud"] = "app"
	c["scope"] = scope
	for k, v := range extra {
		c[k] = v
	}
	return testidp.Mint(t, e.Key, c, nil)
}

// send sends one request to the proxy without following redirects. hdr's
// keys are sent exactly as spelled.
func send(t *testing.T, method, u string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return testgw.Send(t, c, method, u, nil, hdr)
}

// echoed decodes what the app received, failing the test if the answer is
// not the app's.
func echoed(t *testing.T, res *http.Response, body string) testgw.Echoed {
	t.Helper()
	var e testgw.Echoed
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &e) != nil {
		t.Fatalf("want the app's answer, got %d %v\n%s", res.StatusCode, res.Header, body)
	}
	return e
}

// identityFamily are the headers no client may set for the app, folded
// (lower case, "_" as "-"): every name a forward-auth answer carries.
var identityFamily = []string{
	"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups",
	"x-auth-request-preferred-username", "x-forwarded-user", "x-forwarded-email",
	"x-forwarded-groups", "x-forwarded-preferred-username", "remote-user",
}

func fold(name string) string { return strings.ReplaceAll(strings.ToLower(name), "_", "-") }

// spoofed is a client's attempt to speak for portcullis: every identity
// header in both spellings, a forged session cookie beside the app's own.
func spoofed() http.Header {
	h := http.Header{}
	for _, n := range identityFamily {
		canon := http.CanonicalHeaderKey(n)
		h[canon] = []string{"spoofed"}
		h[strings.ReplaceAll(canon, "-", "_")] = []string{"spoofed"}
	}
	h["Cookie"] = []string{"_portcullis=forged; app=kept; _portcullis_login_x=forged"}
	return h
}

// checkApp fails the test unless the app saw exactly the identity in want
// (folded name → value) and nothing a client could have spoofed: no other
// identity header with a value, no Authorization, no portcullis cookie.
func checkApp(t *testing.T, got testgw.Echoed, want map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for name, vals := range got.Headers {
		f := fold(name)
		for _, fam := range identityFamily {
			if f != fam {
				continue
			}
			for _, v := range vals {
				if v == "" {
					continue
				}
				if want[f] != v || seen[f] {
					t.Errorf("app got %s: %q, want %q", name, shorten(v), want[f])
				}
				seen[f] = true
			}
		}
		switch f {
		case "authorization":
			t.Errorf("app got Authorization: %q", shorten(strings.Join(vals, ",")))
		case "cookie":
			if strings.Contains(strings.Join(vals, ";"), "_portcullis") {
				t.Errorf("app got portcullis' cookies: %q", shorten(strings.Join(vals, "; ")))
			}
		}
	}
	for f, v := range want {
		if !seen[f] {
			t.Errorf("app did not get %s: %q", f, shorten(v))
		}
	}
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// runSuite checks everything a forward-auth user relies on, through the
// proxy's own port.
func runSuite(t *testing.T, e *Env) {
	t.Run("api client without credentials gets 401 and the challenge", func(t *testing.T) {
		for _, accept := range []string{"application/json", "*/*", ""} {
			res, _ := send(t, "GET", e.Base+"/api/orders", http.Header{"Accept": {accept}})
			if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("Accept %q: %d, WWW-Authenticate %q; want 401 with a Bearer challenge", accept, res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
			if c := res.Header.Values("Set-Cookie"); len(c) > 0 {
				t.Errorf("Accept %q: an API answer set cookies: %q", accept, c)
			}
		}
	})
	t.Run("browser navigation goes to login with the original URL", func(t *testing.T) {
		res, _ := send(t, "GET", e.Base+"/reports/q3?year=2026", http.Header{
			"Accept": {"text/html,application/xhtml+xml"}, "Sec-Fetch-Mode": {"navigate"}})
		want := e.Base + "/oauth2/start?rd=" + url.QueryEscape(e.Base+"/reports/q3?year=2026")
		if res.StatusCode != 302 || res.Header.Get("Location") != want {
			t.Errorf("navigation: %d to %q; want 302 to %q", res.StatusCode, res.Header.Get("Location"), want)
		}
	})
	t.Run("sub-resources and XHR never start a login", func(t *testing.T) {
		for name, h := range map[string]http.Header{
			"favicon": {"Accept": {"image/avif,image/webp,*/*"}, "Sec-Fetch-Mode": {"no-cors"}},
			"xhr":     {"Accept": {"text/html"}, "Sec-Fetch-Mode": {"cors"}},
			"fetch":   {"Accept": {"text/html"}, "X-Requested-With": {"XMLHttpRequest"}},
			"post":    {"Accept": {"text/html"}},
		} {
			method := "GET"
			if name == "post" {
				method = "POST"
			}
			res, _ := send(t, method, e.Base+"/favicon.ico", h)
			if res.StatusCode != 401 || len(res.Header.Values("Set-Cookie")) > 0 {
				t.Errorf("%s: %d, Set-Cookie %q; want 401 and no cookie", name, res.StatusCode, res.Header.Values("Set-Cookie"))
			}
		}
	})
	t.Run("valid bearer reaches the app as identity headers, spoofing does not", func(t *testing.T) {
		// bob has no groups claim: a spoofed groups header must not pass
		// either.
		tok := e.token(t, "bob", "read", map[string]any{"email": "bob@example.com"})
		h := spoofed()
		h.Set("Authorization", "Bearer "+tok)
		got := sendApp(t, "GET", e.Base+"/orders/7", h)
		checkApp(t, got, map[string]string{"x-auth-request-user": "bob", "x-auth-request-email": "bob@example.com"})
		if c := strings.Join(got.Headers["Cookie"], "; "); c != "app=kept" {
			t.Errorf("app's own cookie: got Cookie %q, want app=kept", c)
		}
		if got.URI != "/orders/7" {
			t.Errorf("app got %s, want /orders/7", got.URI)
		}
	})
	t.Run("portcullis' cookies alone never reach the app", func(t *testing.T) {
		tok := e.token(t, "erin", "read", map[string]any{"email": "erin@example.com"})
		got := sendApp(t, "GET", e.Base+"/orders/8", http.Header{"Authorization": {"Bearer " + tok},
			"Cookie": {"_portcullis=forged; _portcullis_login_abc=x"}})
		checkApp(t, got, map[string]string{"x-auth-request-user": "erin", "x-auth-request-email": "erin@example.com"})
	})
	t.Run("the client cannot name the original request", func(t *testing.T) {
		// A read-only token on /admin, with every header a proxy uses to
		// name the original request set by the client to a path that
		// would pass.
		read := e.token(t, "frank", "read", nil)
		res, _ := send(t, "GET", e.Base+"/admin/users", http.Header{"Authorization": {"Bearer " + read},
			"X-Forwarded-Uri": {"/"}, "X-Original-Url": {e.Base + "/"}, "X-Forwarded-Host": {"other.example"},
			"X-Forwarded-Method": {"OPTIONS"}, "X-Original-Method": {"OPTIONS"}})
		if res.StatusCode != 403 {
			t.Errorf("/admin with spoofed original-request headers: %d, want 403", res.StatusCode)
		}
	})
	t.Run("a bad token is 401 with its reason", func(t *testing.T) {
		res, _ := send(t, "GET", e.Base+"/orders", http.Header{"Authorization": {"Bearer not.a.jwt"}, "Accept": {"application/json"}})
		if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("require_scopes applies on its path only", func(t *testing.T) {
		read := e.token(t, "carol", "read", nil)
		res, _ := send(t, "GET", e.Base+"/admin/users", http.Header{"Authorization": {"Bearer " + read}})
		if res.StatusCode != 403 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("/admin without the scope: %d %q, want 403 insufficient_scope", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
		sendApp(t, "GET", e.Base+"/administrators", http.Header{"Authorization": {"Bearer " + read}})
		admin := e.token(t, "carol", "read admin", nil)
		sendApp(t, "GET", e.Base+"/admin/users", http.Header{"Authorization": {"Bearer " + admin}})
	})
	t.Run("browser logs in through the built-in issuer and stays signed in across refreshes", func(t *testing.T) {
		b := testgw.NewBrowser(t)
		res, body := b.Visit(e.Base, e.Base+"/dashboard?tab=1")
		got := echoed(t, res, body)
		if got.URI != "/dashboard?tab=1" {
			t.Errorf("landed on %s, want /dashboard?tab=1", got.URI)
		}
		groups := got.Headers["X-Auth-Request-Groups"]
		if len(groups) != 1 || len(groups[0]) < 6000 {
			t.Fatalf("alice's groups reached the app as %q, want one header of 6 KB", groups)
		}
		checkApp(t, got, map[string]string{"x-auth-request-user": "alice", "x-auth-request-email": "alice@example.com",
			"x-auth-request-groups": groups[0]})
		for _, c := range b.Client.Jar.Cookies(mustURL(t, e.Base)) {
			if len(c.Value) > 4096 {
				t.Errorf("cookie %s is %d bytes; browsers drop cookies past 4096", c.Name, len(c.Value))
			}
		}
		// Past the access token's lifetime, twice: each request refreshes
		// the session through the forward-auth answer.
		for i := range 2 {
			e.Clock.Advance(16 * time.Minute)
			res, body := b.Do("GET", e.Base+fmt.Sprintf("/after-refresh/%d", i), nil, nil)
			got := echoed(t, res, body)
			if u := got.Headers["X-Auth-Request-User"]; len(u) != 1 || u[0] != "alice" {
				t.Fatalf("after refresh %d the app got user %q", i, u)
			}
		}
		if !strings.Contains(e.Logs.String(), `original="GET /after-refresh/1"`) ||
			!strings.Contains(e.Logs.String(), `route=app status=200 outcome=allowed sub=alice`) {
			t.Errorf("no access-log line for the forward-auth answers:\n%s", e.Logs.String())
		}
	})
}

// sendApp sends one request that must reach the app and returns what the
// app received.
func sendApp(t *testing.T, method, u string, hdr http.Header) testgw.Echoed {
	t.Helper()
	res, body := send(t, method, u, hdr)
	return echoed(t, res, body)
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNginx(t *testing.T) {
	nginx := peers.Find(t, false, "nginx")
	e := start(t, func(t *testing.T, dir, listen string) *peers.Process {
		return peers.Start(t, dir, listen, nginx, "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	})
	runSuite(t, e)
}

func TestCaddy(t *testing.T) {
	caddy := peers.Find(t, false, "caddy")
	e := start(t, func(t *testing.T, dir, listen string) *peers.Process {
		return peers.Start(t, dir, listen, caddy, "run", "--adapter", "caddyfile", "--config", filepath.Join(dir, "Caddyfile"))
	})
	runSuite(t, e)
}

func TestTraefik(t *testing.T) {
	traefik := peers.Find(t, false, "traefik")
	e := start(t, func(t *testing.T, dir, listen string) *peers.Process {
		p := peers.Start(t, filepath.Join(dir, "traefik"), listen, traefik, "--configFile=static.yaml")
		// Traefik listens before its file provider has loaded the routers.
		peers.WaitHTTP(t, "http://"+listen+"/idp/.well-known/openid-configuration", http.StatusOK)
		return p
	})
	runSuite(t, e)
}

// TestEnvoy runs envoy.yaml for real where an envoy binary is on PATH
// (Debian does not package Envoy; TestEnvoyConfig checks it without one).
func TestEnvoy(t *testing.T) {
	envoy := peers.Find(t, true, "envoy")
	e := start(t, func(t *testing.T, dir, listen string) *peers.Process {
		return peers.Start(t, dir, listen, envoy, "-c", filepath.Join(dir, "envoy.yaml"), "--disable-hot-restart", "-l", "warning")
	})
	runSuite(t, e)
}
