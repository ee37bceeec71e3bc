package e2e_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/nodeidp"
	"github.com/portcullis-dev/portcullis/internal/peers"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/jwks"
)

// Back-channel logout with a real third-party provider: node's
// oidc-provider signs the gateway in, and ending the session at the
// provider sends the gateway a logout token; the very next request of the
// browser asks for login again.

// providerGateway is the configuration of a gateway signing in at the
// provider: %[1]s is the provider, %[2]s the gateway's public URL, %[3]s
// the upstream, %[4]s extra keys of the login section.
const providerGateway = `server: {listen: "127.0.0.1:0", public_url: "%[2]s"}
admin: {listen: off}
issuers:
  - issuer: "%[1]s"
    audiences: [portcullis]
    algorithms: [RS256]
login:
  issuer: "%[1]s"
  client_id: portcullis
  client_secret: provider-client-secret-0123456789
  scopes: [openid, profile, email]
  cookie: {secret: "` + testgw.CookieSecret + `", secure: false}
  backchannel_logout: true
  backchannel_logout_require_typ: true
%[4]sroutes:
  - name: app
    path_prefix: /
    upstream: "%[3]s"
    forward_headers: {X-Auth-Request-User: sub}
`

// startProvider runs oidc-provider with the gateway at gw as its client,
// whose back-channel logout URI is on gw; with sid, its tokens carry the
// session's sid.
func startNodeProvider(t *testing.T, gw string, sid bool) *nodeidp.Provider {
	t.Helper()
	return nodeidp.Start(t, nodeidp.Client{ID: "portcullis", Secret: "provider-client-secret-0123456789",
		RedirectURIs: []string{gw + "/oauth2/callback"}, PostLogoutRedirectURIs: []string{gw + "/"},
		BackchannelLogoutURI: gw + "/oauth2/backchannel_logout", BackchannelLogoutSessionRequired: sid})
}

// startProviderGateway serves a gateway for the provider at public URL
// pub on ln, with extra login keys.
func startProviderGateway(t *testing.T, idp, pub, extra string, o testgw.Options) *testgw.Gateway {
	t.Helper()
	up := testgw.Upstream(t)
	o.Config = func(string) string { return fmt.Sprintf(providerGateway, idp, pub, up, extra) }
	o.Logger = testgw.Logger(t, slog.LevelInfo, nil)
	return testgw.Start(t, o)
}

// signedIn fails unless a page of the gateway at base is served to the
// browser as alice.
func signedIn(t *testing.T, b *testgw.Browser, base string) {
	t.Helper()
	res, body := b.Do("GET", base+"/page", nil, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Auth-Request-User":["alice"]`) {
		t.Fatalf("%s/page: %d %q, want the page for alice", base, res.StatusCode, body)
	}
}

// asksLogin fails unless the browser is sent to log in by the gateway at
// base.
func asksLogin(t *testing.T, b *testgw.Browser, base string) {
	t.Helper()
	res, body := b.Do("GET", base+"/page", nil, nil)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.Contains(loc, "/oauth2/start") {
		t.Fatalf("%s/page: %d Location %q %q, want a redirect to log in", base, res.StatusCode, loc, body)
	}
}

func TestBackchannelLogoutFromProvider(t *testing.T) {
	for _, tc := range []struct {
		name string
		sid  bool // the provider names the session (sid), else the user (sub)
	}{{"sid", true}, {"sub", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, pub := testgw.Listen(t)
			idp := startNodeProvider(t, pub, tc.sid)
			gw := startProviderGateway(t, idp.Issuer, pub, "", testgw.Options{Listener: ln, Admin: true})
			b := testgw.NewBrowser(t)
			res, body := idp.SignIn(t, b, pub+"/page", "alice")
			if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Auth-Request-User":["alice"]`) {
				t.Fatalf("after sign-in: %d %q", res.StatusCode, body)
			}
			signedIn(t, b, pub)

			idp.EndSession(t, b) // answers after the logout token was answered
			asksLogin(t, b, pub)
			if n := counter(t, gw.AdminURL, `portcullis_backchannel_logouts_total{direction="received",result="ok"}`); n != 1 {
				t.Fatalf("received logouts counted %v, want 1; provider log:\n%s", n, idp.Output())
			}
			// Signing in again works, and makes a session the old logout
			// does not end.
			if res, body := idp.SignIn(t, b, pub+"/page", "alice"); res.StatusCode != http.StatusOK {
				t.Fatalf("signing in again: %d %q", res.StatusCode, body)
			}
			signedIn(t, b, pub)
		})
	}
}

// TestBackchannelLogoutReplicasFromProvider: two replicas behind one
// public URL share Redis; the provider's logout token reaches one of them,
// and the session is refused by both. With cookie sessions the logout is
// kept in Redis; with sessions in Redis, they are deleted.
func TestBackchannelLogoutReplicasFromProvider(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	for _, tc := range []struct{ name, extra string }{
		{"cookie sessions", "  logout_store: " + redisURL + "\n"},
		{"redis sessions", "  session_store: " + redisURL + "\n"},
		{"the README's example", readmeLogout(t, redisURL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lnA, pub := testgw.Listen(t)
			lnB, baseB := testgw.Listen(t)
			idp := startNodeProvider(t, pub, true)
			startProviderGateway(t, idp.Issuer, pub, tc.extra, testgw.Options{Listener: lnA})
			startProviderGateway(t, idp.Issuer, pub, tc.extra, testgw.Options{Listener: lnB})
			b := testgw.NewBrowser(t)
			if res, body := idp.SignIn(t, b, pub+"/page", "alice"); res.StatusCode != http.StatusOK {
				t.Fatalf("after sign-in: %d %q", res.StatusCode, body)
			}
			signedIn(t, b, pub)
			signedIn(t, b, baseB) // cookies on 127.0.0.1 go to both ports

			idp.EndSession(t, b)
			asksLogin(t, b, baseB)
			asksLogin(t, b, pub)
		})
	}
}

// readmeLogout returns the login keys of README.md's back-channel logout
// example that providerGateway does not set itself, with its Redis at
// redisURL.
func readmeLogout(t *testing.T, redisURL string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "### Back-channel logout\n")
	_, block, ok := strings.Cut(sec, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no yaml block under ### Back-channel logout")
	}
	var keys strings.Builder
	for _, line := range strings.Split(block, "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "login", "issuer", "client_id", "client_secret", "cookie", "backchannel_logout", "":
			// set by providerGateway (cookies there are not Secure: plain http)
		default:
			keys.WriteString(line + "\n")
		}
	}
	out := keys.String()
	if !strings.Contains(out, "logout_store: redis://redis:6379/0") {
		t.Fatalf("README.md's example no longer shares the logouts in Redis:\n%s", block)
	}
	return strings.ReplaceAll(out, "redis://redis:6379/0", redisURL)
}

// counter reads one sample of the admin listener's metrics at admin.
func counter(t *testing.T, admin, sample string) float64 {
	t.Helper()
	res, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in the metrics", sample)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestAdminRevokeReplicas: two replicas of the gateway and built-in
// issuer share Redis. The README's revoke command, sent to one replica's
// admin listener, ends alice's sessions: the gateway session is refused by
// both replicas at once, the issuer asks for her password again, and the
// issuer's logout token reaches the gateway.
func TestAdminRevokeReplicas(t *testing.T) {
	curl := peers.Find(t, false, "curl")
	redisURL, _, _ := testredis.Start(t)
	key, _ := jwks.GenerateKey("ES256")
	pemKey, _ := jwks.MarshalPrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, pemKey, 0o400); err != nil {
		t.Fatal(err)
	}
	const token = "admin-token-0123456789abcdef"
	lnA, pub := testgw.Listen(t)
	lnB, baseB := testgw.Listen(t)
	up := testgw.Upstream(t)
	yml := fmt.Sprintf(testgw.Login{}.YAML(), pub, up, testgw.AliceHash())
	for _, r := range [][2]string{
		{"admin: {listen: off}\n", "admin: {listen: \"127.0.0.1:9\", token: \"${ADMIN_TOKEN}\"}\n"},
		{"issuer:\n  url: \"" + pub + "/idp\"\n", "issuer:\n  url: \"" + pub + "/idp\"\n  store: " + redisURL + "\n  signing: {key_files: [" + keyFile + "]}\n"},
		{"secure: false}\n", "secure: false}\n  backchannel_logout: true\n  logout_store: redis\n"},
	} {
		if !strings.Contains(yml, r[0]) {
			t.Fatalf("the configuration has no %q:\n%s", r[0], yml)
		}
		yml = strings.Replace(yml, r[0], r[1], 1)
	}
	start := func(ln net.Listener) *testgw.Gateway {
		return testgw.Start(t, testgw.Options{Listener: ln, Admin: true, Env: map[string]string{"ADMIN_TOKEN": token},
			Logger: testgw.Logger(t, slog.LevelInfo, nil), Config: func(string) string { return yml }})
	}
	a, _ := start(lnA), start(lnB)

	b := testgw.NewBrowser(t)
	if res, body := b.Visit(pub, pub+"/page"); res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Auth-Request-User":["alice"]`) {
		t.Fatalf("sign-in: %d %q", res.StatusCode, body)
	}
	signedIn(t, b, baseB)

	// The README's command, at replica a's admin listener.
	cmd := readmeLine(t, "curl ", "/admin/sessions/revoke")
	cmd = strings.Replace(cmd, "http://127.0.0.1:9090", a.AdminURL, 1)
	sh := exec.Command("bash", "-c", strings.Replace(cmd, "curl ", curl+" ", 1))
	sh.Env = append(os.Environ(), "PORTCULLIS_ADMIN_TOKEN="+token)
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	if !strings.Contains(string(out), `"issuer_sessions_ended":1`) || !strings.Contains(string(out), `"gateway_cookie_sessions_refused":true`) {
		t.Fatalf("revoke answered %s", out)
	}
	asksLogin(t, b, pub)
	asksLogin(t, b, baseB)
	b.LoginPage(pub + "/page") // the issuer's session ended too: the password again

	// The logout token the issuer sent, in the background, reached the
	// gateway (in-process: its own public URL).
	waitFor(t, "the issuer's logout token", func() bool {
		return counter(t, a.AdminURL, `portcullis_backchannel_logouts_total{direction="sent",result="ok"}`) == 1 &&
			counter(t, a.AdminURL, `portcullis_backchannel_logouts_total{direction="received",result="ok"}`) == 1
	})

	// Bad requests with the token.
	for _, tc := range []struct {
		method, body string
		status       int
	}{{"GET", "", http.StatusMethodNotAllowed}, {"POST", "sid=x", http.StatusBadRequest}} {
		req, _ := http.NewRequest(tc.method, a.AdminURL+"/admin/sessions/revoke", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(string(body), `"error_description"`) {
			t.Fatalf("%s %q: %d %s, want %d with an error", tc.method, tc.body, res.StatusCode, body, tc.status)
		}
	}

	// Without the token, or with another, nothing is ended.
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		req, _ := http.NewRequest("POST", a.AdminURL+"/admin/sessions/revoke", strings.NewReader("sub=alice"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("revoke with %q: %d, want 401 with a Bearer challenge", auth, res.StatusCode)
		}
	}
}

// readmeLine returns the line of README.md's code blocks holding every
// one of parts.
func readmeLine(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	t.Fatalf("README.md has no line with %q", parts)
	return ""
}

// waitFor polls cond until it holds, for at most 10 seconds: for work the
// gateway does in the background, not for the passing of time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waited 10s for %s", what)
		}
	}
}
