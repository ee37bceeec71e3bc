package attack_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
)

// loginConfig is a gateway with browser login against its built-in
// issuer, which also serves the clients the issuer attacks use. Loopback
// is not a trusted proxy. %[1]s base URL, %[2]s upstream, %[3]s password
// hash.
const loginConfig = `
server: {listen: "127.0.0.1:18091", public_url: "%[1]s", trusted_proxies: ["10.99.0.0/16"]}
admin: {listen: off}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [demo-api]
    algorithms: [ES256]
    typ: at+jwt
issuer:
  url: "%[1]s/idp"
  clients:
    - id: portcullis
      secret: gateway-secret-0123456789
      first_party: true
      redirect_uris: ["%[1]s/oauth2/callback"]
      post_logout_redirect_uris: ["%[1]s/"]
      scopes: [openid, profile, email, offline_access, read]
      audiences: [demo-api]
    - id: webapp
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
  users:
    - username: alice
      password_hash: %[3]q
      claims: {email: alice@example.com, groups: [admin]}
  scopes: {read: "Read your data", write: "Change your data"}
login:
  issuer: "%[1]s/idp"
  client_id: portcullis
  client_secret: gateway-secret-0123456789
  scopes: [openid, profile, email, offline_access, read]
  cookie: {secret: "cookie-secret-0123456789-0123456789-abc", secure: false}
routes:
  - name: public
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
  - name: app
    path_prefix: /
    upstream: %[2]q
    require_scopes: [read]
    forward_headers: {X-Auth-Request-User: sub}
`

const (
	appRedirect  = "https://app.example/callback"
	webappSecret = "webapp-secret-0123456789"
)

var (
	hashOnce  sync.Once
	aliceHash string
)

type loginEnv struct {
	*gateway
	t   *testing.T
	clk *clock
	up  *recorder
}

func newLoginEnv(t *testing.T) *loginEnv {
	t.Helper()
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("alice-password"), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		aliceHash = string(h)
	})
	e := &loginEnv{t: t, clk: newClock(time.Now()), up: newRecorder(t)}
	e.gateway = startGateway(t, e.clk, func(base string) string { return fmt.Sprintf(loginConfig, base, e.up.URL, aliceHash) })
	return e
}

// browser is a cookie-keeping client that stops at every redirect.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends one request as a page navigation (Accept: text/html).
func (b *browser) do(method, u string, form url.Values, hdr http.Header) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden returns the hidden fields of a page.
func hidden(page string) url.Values {
	f := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		f.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return f
}

// submitLogin fills in the issuer's login form on page.
func (b *browser) submitLogin(base, page string) (*http.Response, string) {
	b.t.Helper()
	f := hidden(page)
	f.Set("username", "alice")
	f.Set("password", "alice-password")
	return b.do("POST", base+"/idp/authorize", f, nil)
}

// loginUntilCallback follows redirects from u through the issuer, filling
// in the login form, and returns the gateway's answer to the callback,
// checking that no hop leaves the gateway's host on the way.
func (b *browser) loginUntilCallback(base, u string) (*http.Response, string) {
	b.t.Helper()
	res, body := b.do("GET", u, nil, nil)
	for range 10 {
		if res.Request.URL.Path == "/oauth2/callback" {
			return res, body
		}
		switch {
		case res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther:
			loc, err := res.Location()
			if err != nil || !strings.HasPrefix(loc.String(), base+"/") {
				b.t.Fatalf("redirected off the gateway before the callback: %v", loc)
			}
			res, body = b.do("GET", loc.String(), nil, nil)
		case strings.Contains(body, `name="password"`):
			res, body = b.submitLogin(base, body)
		default:
			b.t.Fatalf("stuck at %s: %d %.200q", res.Request.URL, res.StatusCode, body)
		}
	}
	b.t.Fatal("too many redirects")
	return nil, ""
}

// callbackURL runs a login from /oauth2/start up to the point where the
// issuer sends the browser back, and returns that callback URL unvisited.
func (b *browser) callbackURL(base, rd string) *url.URL {
	b.t.Helper()
	res, body := b.do("GET", base+"/oauth2/start?rd="+url.QueryEscape(rd), nil, nil)
	for range 10 {
		loc, err := res.Location()
		switch {
		case err == nil && loc.Path == "/oauth2/callback":
			return loc
		case err == nil:
			res, body = b.do("GET", loc.String(), nil, nil)
		case strings.Contains(body, `name="password"`):
			res, body = b.submitLogin(base, body)
		default:
			b.t.Fatalf("no callback: %d %.200q", res.StatusCode, body)
		}
	}
	b.t.Fatal("too many redirects")
	return nil
}

// sessionCookie returns the browser's session cookie value for base.
func (b *browser) sessionCookie(base string) string {
	u, _ := url.Parse(base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "_portcullis" {
			return c.Value
		}
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
	res, _ = b.submitLogin(e.url, body)
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
