package attack_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// loginConfig is a gateway with browser login against its built-in
// issuer, which also serves the clients the issuer attacks use. Loopback
// is not a trusted proxy. %[1]s base URL, %[2]s upstream, %[3]s password
// hash.
var loginConfig = testgw.Login{Listen: "127.0.0.1:18091", TrustedProxies: `"10.99.0.0/16"`, TokenType: "at+jwt",
	Clients: `    - id: webapp
      secret: webapp-secret-0123456789
      first_party: true
      redirect_uris: ["https://app.example/callback"]
      scopes: [openid, email, offline_access, read, write]
      audiences: [demo-api]
    - id: spa
      public: true
      first_party: true
      redirect_uris: ["https://app.example/callback"]
      grant_types: [authorization_code]
      scopes: [openid, read]
      audiences: [demo-api]
`,
	Scopes: `{read: "Read your data", write: "Change your data"}`,
	Routes: `  - name: public
    path_prefix: /public
    upstream: %[2]q
    auth: public
  - name: api
    path_prefix: /api
    upstream: %[2]q
    on_unauthenticated: deny
    forward_headers: {X-Auth-Request-User: sub}
  - name: dead
    path_prefix: /dead
    upstream: http://127.0.0.1:1
    auth: public
`}.YAML()

const (
	appRedirect  = "https://app.example/callback"
	webappSecret = "webapp-secret-0123456789"
)

// aliceHash is alice's password hash, for loginConfig.
var aliceHash = testgw.AliceHash()

type loginEnv struct {
	*gateway
	t   *testing.T
	clk *testclock.Clock
	up  *recorder
}

func newLoginEnv(t *testing.T) *loginEnv {
	t.Helper()
	e := &loginEnv{t: t, clk: newClock(time.Now()), up: newRecorder(t)}
	e.gateway = startGateway(t, e.clk, func(base string) string { return fmt.Sprintf(loginConfig, base, e.up.URL, aliceHash) })
	return e
}

// browser is a cookie-keeping client that stops at every redirect.
type browser struct {
	*testgw.Browser
	c *http.Client // Browser.Client, whose cookie jar tests read and set
}

func newBrowser(t *testing.T) *browser {
	b := testgw.NewBrowser(t)
	return &browser{Browser: b, c: b.Client}
}

// do sends one request as a page navigation (Accept: text/html).
func (b *browser) do(method, u string, form url.Values, hdr http.Header) (*http.Response, string) {
	b.T.Helper()
	return b.Do(method, u, form, hdr)
}

// hidden returns the hidden fields of a page.
func hidden(page string) url.Values { return testgw.HiddenFields(page) }

// loginUntilCallback follows redirects from u through the issuer, filling
// in the login form, and returns the gateway's answer to the callback,
// checking that no hop leaves the gateway's host on the way.
func (b *browser) loginUntilCallback(base, u string) (*http.Response, string) {
	b.T.Helper()
	res, body := b.do("GET", u, nil, nil)
	for range 10 {
		if res.Request.URL.Path == "/oauth2/callback" {
			return res, body
		}
		switch {
		case res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther:
			loc, err := res.Location()
			if err != nil || !strings.HasPrefix(loc.String(), base+"/") {
				b.T.Fatalf("redirected off the gateway before the callback: %v", loc)
			}
			res, body = b.do("GET", loc.String(), nil, nil)
		case strings.Contains(body, `name="password"`):
			res, body = b.SubmitLogin(base, body)
		default:
			b.T.Fatalf("stuck at %s: %d %.200q", res.Request.URL, res.StatusCode, body)
		}
	}
	b.T.Fatal("too many redirects")
	return nil, ""
}

// callbackURL runs a login from /oauth2/start up to the point where the
// issuer sends the browser back, and returns that callback URL unvisited.
func (b *browser) callbackURL(base, rd string) *url.URL {
	b.T.Helper()
	res, body := b.do("GET", base+"/oauth2/start?rd="+url.QueryEscape(rd), nil, nil)
	for range 10 {
		loc, err := res.Location()
		switch {
		case err == nil && loc.Path == "/oauth2/callback":
			return loc
		case err == nil:
			res, body = b.do("GET", loc.String(), nil, nil)
		case strings.Contains(body, `name="password"`):
			res, body = b.SubmitLogin(base, body)
		default:
			b.T.Fatalf("no callback: %d %.200q", res.StatusCode, body)
		}
	}
	b.T.Fatal("too many redirects")
	return nil
}

// sessionCookie returns the browser's session cookie value for base, or
// "" if it has none.
func (b *browser) sessionCookie(base string) string {
	if c := b.Cookie(base, testgw.SessionCookie); c != nil {
		return c.Value
	}
	return ""
}

// codeFlow logs alice in to client webapp (or spa) at the issuer by hand,
// returning the code and the PKCE verifier; mod changes the request.
func (e *loginEnv) code(t *testing.T, mod func(url.Values)) (string, string) {
	t.Helper()
	u, verifier := e.authURL(mod)
	b := newBrowser(t)
	res, body := b.do("GET", u, nil, nil)
	if !strings.Contains(body, `name="password"`) {
		t.Fatalf("no login page: %d %.200q", res.StatusCode, body)
	}
	res, _ = b.SubmitLogin(e.url, body)
	for range 5 {
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("no redirect: %d", res.StatusCode)
		}
		if strings.HasPrefix(loc.String(), appRedirect) {
			if c := loc.Query().Get("code"); c != "" {
				return c, verifier
			}
			t.Fatalf("no code: %s", loc)
		}
		res, _ = b.do("GET", loc.String(), nil, nil)
	}
	t.Fatal("too many redirects")
	return "", ""
}

// authURL is an authorization request of webapp with PKCE S256.
func (e *loginEnv) authURL(mod func(url.Values)) (string, string) {
	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	v := url.Values{
		"response_type": {"code"}, "client_id": {"webapp"}, "redirect_uri": {appRedirect},
		"scope": {"openid email offline_access read"}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if mod != nil {
		mod(v)
	}
	return e.url + "/idp/authorize?" + v.Encode(), verifier
}

// token posts form to the token endpoint as client id (basic auth unless
// secret is empty) and decodes the JSON answer.
func (e *loginEnv) token(t *testing.T, id, secret string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/idp/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	} else if id != "" {
		form.Set("client_id", id)
		req.Body = io.NopCloser(strings.NewReader(form.Encode()))
		req.ContentLength = int64(len(form.Encode()))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("token endpoint answered non-JSON %d: %.200q", res.StatusCode, body)
	}
	if m := leaks.FindString(string(body)); m != "" {
		t.Errorf("token endpoint body shows %q", m)
	}
	return res, out
}

func codeForm(code, verifier string) url.Values {
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}
	if verifier != "" {
		v.Set("code_verifier", verifier)
	}
	return v
}
