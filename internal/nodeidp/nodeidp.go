// Package nodeidp runs a real third-party OpenID provider for tests: the
// npm package oidc-provider (panva's node-oidc-provider, pinned in
// provider/package-lock.json) with its built-in login and consent pages,
// RP-initiated logout and back-channel logout, on plain http on loopback.
//
// It needs node on PATH and the provider's modules installed
// (npm ci --prefix internal/nodeidp/provider). Without them a test skips,
// except when CI=true, where .ci/run must have installed them and their
// absence fails the test.
//
// Quirks of oidc-provider that callers meet:
//
//   - An id_token carries sid only for a client with a back-channel logout
//     URI and BackchannelLogoutSessionRequired; its logout tokens carry sid
//     on the same condition, and sub always.
//   - offline_access is dropped from an authorization request without
//     prompt=consent, and a refresh token is issued only when
//     offline_access was granted. Such a grant outlives the logout: its
//     refresh token keeps working after [Provider.EndSession].
//   - Its logout tokens have the JOSE header typ "logout+jwt" and expire
//     after 120s.
//   - The login page has a password field: testgw's Browser.Visit would
//     take it for the built-in issuer's form, so sign in with
//     [Provider.SignIn] instead.
//   - Cookies do not tell ports apart: a browser sends the provider's
//     session cookies (_session and _session.sig, path /) to every server
//     on 127.0.0.1, a gateway and its upstream included.
//   - The logout confirmation answers only after every back-channel
//     logout POST of the session has been answered (or has failed, after
//     at most 2.5s); a failed one does not fail the logout, it is logged.
//   - An access token is a JWT only when its request names a resource
//     (RFC 8707 resource indicator, one per client_credentials request);
//     otherwise it is opaque, for the userinfo endpoint. A JWT access token
//     has typ "at+jwt"; one of a client_credentials grant has sub = the
//     client_id. DPoP needs no nonce, and a proof's jti is accepted once.
//
// The provider (provider/server.mjs) also differs from oidc-provider's
// defaults where tests need it: it lets back-channel POSTs reach loopback
// addresses (oidc-provider refuses special-use addresses otherwise), puts
// the claims of the granted scopes in the id_token (conformIdTokenClaims
// off), signs with an RSA key made at startup, and turns on DPoP, the
// client_credentials grant and resource indicators.
package nodeidp

import (
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/peers"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// Client is a relying party registered at the provider: a confidential
// client with client_secret_basic at the token endpoint; by default a web
// client with response type code and grant types authorization_code and
// refresh_token.
type Client struct {
	ID                     string   // client_id
	Secret                 string   // client_secret
	RedirectURIs           []string // redirect_uris, matched exactly
	PostLogoutRedirectURIs []string // post_logout_redirect_uris

	// BackchannelLogoutURI receives a logout token by POST when a session
	// with this client ends at the provider; empty for none.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired puts sid in the client's id_tokens
	// and logout tokens; it takes effect only with BackchannelLogoutURI.
	BackchannelLogoutSessionRequired bool

	// GrantTypes replaces the default grant types; the client has
	// response type code only when they hold authorization_code. A
	// machine client has []string{"client_credentials"} (see
	// [Provider.ClientCredentials]) and needs no RedirectURIs.
	GrantTypes []string
}

// Provider is a running oidc-provider.
type Provider struct {
	// Issuer is the provider's issuer URL, http://127.0.0.1:PORT (no
	// trailing slash); discovery is at Issuer+"/.well-known/openid-configuration".
	Issuer string
	// Discovery is the provider's discovery document.
	Discovery Discovery
	// Clients are the clients registered at Start.
	Clients []Client

	proc   *peers.Process
	origin string // scheme://host:port of Issuer
}

// Discovery holds the endpoints of the provider's discovery document.
type Discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	EndSessionEndpoint    string `json:"end_session_endpoint"`
}

// Dir is the folder of the provider's server.mjs and package.json.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "provider")
}

// Start runs oidc-provider on a free loopback port with clients
// registered until the test ends, and returns once its discovery document
// answers. Without node on PATH or without the provider's node_modules the
// test skips, or fails when CI=true.
func Start(t testing.TB, clients ...Client) *Provider {
	t.Helper()
	node := peers.Find(t, false, "node", "nodejs")
	dir := Dir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		msg := "oidc-provider is not installed; run: npm ci --prefix internal/nodeidp/provider"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (.ci/run installs it)")
		}
		t.Skip(msg)
	}
	addr := peers.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	issuer := "http://" + addr
	type jsonClient struct {
		ID                     string   `json:"client_id"`
		Secret                 string   `json:"client_secret"`
		RedirectURIs           []string `json:"redirect_uris"`
		PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
		BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
		SessionRequired        bool     `json:"backchannel_logout_session_required"`
		GrantTypes             []string `json:"grant_types,omitempty"`
	}
	cfg := struct {
		Issuer  string       `json:"issuer"`
		Port    string       `json:"port"`
		Clients []jsonClient `json:"clients"`
	}{Issuer: issuer, Port: port, Clients: []jsonClient{}}
	for _, c := range clients {
		if c.ID == "" || c.Secret == "" {
			t.Fatalf("nodeidp: client %q needs an ID and a Secret", c.ID)
		}
		cfg.Clients = append(cfg.Clients, jsonClient{
			ID: c.ID, Secret: c.Secret,
			RedirectURIs:           nonNil(c.RedirectURIs),
			PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
			BackchannelLogoutURI:   c.BackchannelLogoutURI,
			SessionRequired:        c.BackchannelLogoutSessionRequired,
			GrantTypes:             c.GrantTypes,
		})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: issuer, Clients: clients, origin: issuer}
	p.proc = peers.Start(t, dir, addr, node, "server.mjs", string(raw))
	p.Discovery = p.waitDiscovery(t)
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// waitDiscovery polls the discovery document until it answers, for 30s.
func (p *Provider) waitDiscovery(t testing.TB) Discovery {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	u := p.Issuer + "/.well-known/openid-configuration"
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		res, err := c.Get(u)
		if err == nil {
			var d Discovery
			derr := json.NewDecoder(res.Body).Decode(&d)
			_ = res.Body.Close()
			switch {
			case res.StatusCode == http.StatusOK && derr == nil && d.Issuer == p.Issuer:
				return d
			case derr != nil:
				last = res.Status + ": " + derr.Error()
			default:
				last = res.Status + ", issuer " + d.Issuer
			}
		} else {
			last = err.Error()
		}
		select {
		case <-deadline:
			t.Fatalf("nodeidp: GET %s: still %s after 30s\n%s", u, last, p.Output())
		case <-tick.C:
		}
	}
}

// Output is what the provider has written so far: its readiness line,
// oidc-provider's warnings, one line per back-channel logout sent or
// failed, and errors.
func (p *Provider) Output() string { return p.proc.Output() }

// Endpoint is the provider's authorization and token endpoint for
// golang.org/x/oauth2, with the client credentials in a Basic header.
func (p *Provider) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{
		AuthURL:   p.Discovery.AuthorizationEndpoint,
		TokenURL:  p.Discovery.TokenEndpoint,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
}

// ClientCredentials asks the token endpoint for an access token with the
// client_credentials grant as c (client_secret_basic), for resource (a
// resource indicator, RFC 8707; "" for none) and scope ("" for none), with
// dpopProof in a DPoP header unless it is "". It returns the access token
// and its token_type, and fails the test unless the provider answers 200.
//
// With a resource, the access token is a JWT (RS256, typ at+jwt) with aud
// resource, sub and client_id c.ID, and scope the requested ones among
// the provider's resource scopes ("api:read api:write"); with a proof, it
// is bound to the proof's key (cnf.jkt) and token_type is "DPoP". The
// provider requires no DPoP nonce, and refuses a proof's jti seen before.
func (p *Provider) ClientCredentials(t testing.TB, c Client, resource, scope, dpopProof string) (accessToken, tokenType string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest("POST", p.Discovery.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	if dpopProof != "" {
		req.Header.Set("DPoP", dpopProof)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("nodeidp: POST %s: %v", p.Discovery.TokenEndpoint, err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("nodeidp: POST %s: %v", p.Discovery.TokenEndpoint, err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("nodeidp: POST %s (client_credentials for %s): %s %s\n%s", p.Discovery.TokenEndpoint, c.ID, res.Status, body, p.Output())
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("nodeidp: POST %s: no access_token in %s (%v)", p.Discovery.TokenEndpoint, body, err)
	}
	return tok.AccessToken, tok.TokenType
}

// SignIn signs b in at the provider as the account sub. It follows
// redirects from u, which is either the provider's authorization URL or
// any page that redirects there (a gateway's protected page), fills in
// the provider's login page (login sub, any password) and confirms its
// consent page when they appear, posts the provider's form_post pages,
// and keeps following redirects through the relying party's redirect_uri.
// It returns the first response that is none of these, with its body:
// typically the page u of a gateway, or whatever the relying party's
// redirect_uri handler answers. It fails the test if no hop reached the
// provider, or after 20 hops.
func (p *Provider) SignIn(t testing.TB, b *testgw.Browser, u, sub string) (*http.Response, string) {
	t.Helper()
	start, atProvider := u, false
	method, form := "GET", url.Values(nil)
	for range 20 {
		res, body := b.Do(method, u, form, nil)
		reqURL := res.Request.URL
		if p.owns(reqURL) {
			atProvider = true
		}
		switch {
		case isRedirect(res.StatusCode):
			loc, err := res.Location()
			if err != nil {
				t.Fatalf("nodeidp: %s %s: %d without a Location: %v", method, u, res.StatusCode, err)
			}
			method, u, form = "GET", loc.String(), nil
			continue
		case !p.owns(reqURL):
			if !atProvider {
				t.Fatalf("nodeidp: SignIn from %s never reached the provider at %s; it ended at %s with %d", start, p.Issuer, reqURL, res.StatusCode)
			}
			return res, body
		}
		f, ok := parseForm(reqURL, body)
		switch {
		case !ok:
			return res, body
		case f.fields.Get("prompt") == "login":
			f.fields.Set("login", sub)
			f.fields.Set("password", "any")
		case f.fields.Get("prompt") == "consent":
		case f.method == "post" && strings.Contains(body, "<title>Submitting Callback</title>"):
			// form_post response mode: post the hidden fields on.
		default:
			return res, body
		}
		method, u, form = "POST", f.action, f.fields
	}
	t.Fatalf("nodeidp: SignIn from %s: more than 20 hops", start)
	return nil, ""
}

// EndSession is [Provider.EndSessionWith] without parameters: it ends b's
// session at the provider, which sends a logout token to every client of
// the session with a BackchannelLogoutURI, and returns the provider's 303
// to its own end_session_success page.
func (p *Provider) EndSession(t testing.TB, b *testgw.Browser) (*http.Response, string) {
	t.Helper()
	return p.EndSessionWith(t, b, nil)
}

// EndSessionWith does an RP-initiated logout with b's cookies: it asks
// the provider's end_session_endpoint with params (id_token_hint,
// client_id, post_logout_redirect_uri, state, logout_hint; any may be
// absent) and confirms the "Do you want to sign-out" page with "Yes, sign
// me out", which ends the whole session at the provider, revokes its
// grants (not those with offline_access) and sends a logout token to every client of the session with a
// BackchannelLogoutURI. It returns the provider's answer to the
// confirmation without following it: a 303 to post_logout_redirect_uri
// (with state) when one was given with its client, otherwise to the
// provider's end_session_success page.
//
// oidc-provider answers the confirmation only after every back-channel
// POST has been answered or has failed (fetch timeout 2.5s), so when
// EndSessionWith returns, the relying parties have received their logout
// tokens; a failed POST is logged to [Provider.Output], not reported here.
// Without a session at the provider the confirmation page is an
// auto-submitting form, which is posted the same way and sends nothing.
func (p *Provider) EndSessionWith(t testing.TB, b *testgw.Browser, params url.Values) (*http.Response, string) {
	t.Helper()
	u := p.Discovery.EndSessionEndpoint
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	res, body := b.Do("GET", u, nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("nodeidp: GET %s: %d %q", u, res.StatusCode, body)
	}
	f, ok := parseForm(res.Request.URL, body)
	if !ok || f.fields.Get("xsrf") == "" {
		t.Fatalf("nodeidp: GET %s: no logout confirmation form in %q", u, body)
	}
	f.fields.Set("logout", "yes")
	res, body = b.Do("POST", f.action, f.fields, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("nodeidp: POST %s: %d %q, want 303\n%s", f.action, res.StatusCode, body, p.Output())
	}
	return res, body
}

// owns reports whether u is at the provider.
func (p *Provider) owns(u *url.URL) bool {
	return u.Scheme+"://"+u.Host == p.origin
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

type form struct {
	method string
	action string // absolute
	fields url.Values
}

var (
	formTag  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputTag = regexp.MustCompile(`(?is)<input\b([^>]*?)/?>`)
	attr     = regexp.MustCompile(`(?is)([a-z_-]+)\s*=\s*"([^"]*)"`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attr.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// parseForm returns the first form of page, with its hidden fields and
// its action resolved against base.
func parseForm(base *url.URL, page string) (form, bool) {
	m := formTag.FindStringSubmatch(page)
	if m == nil {
		return form{}, false
	}
	fa := attrs(m[1])
	action, err := base.Parse(fa["action"])
	if err != nil {
		return form{}, false
	}
	f := form{method: strings.ToLower(fa["method"]), action: action.String(), fields: url.Values{}}
	for _, in := range inputTag.FindAllStringSubmatch(m[2], -1) {
		ia := attrs(in[1])
		if strings.EqualFold(ia["type"], "hidden") && ia["name"] != "" {
			f.fields.Set(ia["name"], ia["value"])
		}
	}
	return f, true
}
