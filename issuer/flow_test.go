package issuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
)

const (
	appRedirect   = "http://app.test/callback"
	appLogout     = "http://app.test/bye"
	webSecret     = "web-secret-0123456789"
	machineSecret = "machine-secret-0123456789"
)

// idp is a running issuer with its clock and store.
type idp struct {
	url   string
	iss   *issuer.Issuer
	clock *testclock.Clock
	store *issuer.MemoryStore
	keys  *jwks.KeyRing
}

func newIDP(t testing.TB) *idp {
	t.Helper()
	return newIDPWith(t, nil)
}

// newIDPWith is newIDP with the configuration changed by mod, if not nil.
func newIDPWith(t testing.TB, mod func(*issuer.Config)) *idp {
	t.Helper()
	aliceHash := testgw.AliceHash()
	clk := testclock.New(time.Now())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	keys, err := jwks.OpenKeyRing(jwks.KeyRingConfig{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	store := issuer.NewMemoryStore(issuer.MemoryConfig{Now: clk.Now})
	cfg := issuer.Config{
		URL: base + "/idp", Keys: keys, Store: store, Now: clk.Now,
		Clients: []issuer.Client{
			{ID: "webapp", Name: "Web App", Secret: webSecret, RedirectURIs: []string{appRedirect},
				PostLogoutRedirectURIs: []string{appLogout},
				GrantTypes:             []string{"authorization_code", "refresh_token"},
				Scopes:                 []string{"openid", "profile", "email", "offline_access", "read"}, Audiences: []string{"api"}},
			{ID: "spa", Public: true, FirstParty: true, RedirectURIs: []string{appRedirect},
				GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile"}},
			{ID: "machine", Secret: machineSecret, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}},
			{ID: "hashed", SecretHash: aliceHash, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}},
		},
		Users: []issuer.User{{Username: "alice", PasswordHash: aliceHash,
			Claims: map[string]any{"email": "alice@example.com", "name": "Alice", "groups": []any{"admin"}}}},
		ScopeDescriptions: map[string]string{"read": "Read your data"},
	}
	if mod != nil {
		mod(&cfg)
		if cfg.Store != issuer.Store(store) {
			store = nil
		}
	}
	iss, err := issuer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(iss)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = iss.Close() })
	return &idp{url: base + "/idp", iss: iss, clock: clk, store: store, keys: keys}
}

// browser is an HTTP client with cookies that stops at every redirect.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// form extracts the hidden fields of a page.
func form(t *testing.T, page string) url.Values {
	t.Helper()
	v := testgw.HiddenFields(page)
	if v.Get("csrf") == "" {
		t.Fatalf("no csrf field in page:\n%s", page)
	}
	return v
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	return testgw.Send(t, c, "GET", u, nil, nil)
}

func post(t *testing.T, c *http.Client, u string, v url.Values) (*http.Response, string) {
	t.Helper()
	return testgw.Send(t, c, "POST", u, v, nil)
}

// login drives the login page (and consent, answering allow) from an
// authorization URL and returns the final redirect to the client.
func (p *idp) login(t *testing.T, c *http.Client, authURL, password string) *url.URL {
	t.Helper()
	return p.loginAt(t, c, authURL, password, "http://app.test/")
}

// loginAt is login for a client whose redirect URIs start with back.
func (p *idp) loginAt(t *testing.T, c *http.Client, authURL, password, back string) *url.URL {
	t.Helper()
	res, page := get(t, c, authURL)
	for range 5 {
		switch {
		case res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther:
			loc, _ := res.Location()
			if strings.HasPrefix(loc.String(), back) {
				return loc
			}
			res, page = get(t, c, loc.String())
		case strings.Contains(page, `name="password"`):
			f := form(t, page)
			f.Set("username", "alice")
			f.Set("password", password)
			res, page = post(t, c, p.url+"/authorize", f)
			if res.StatusCode == http.StatusOK {
				t.Fatalf("login failed: %s", page)
			}
		case strings.Contains(page, `value="allow"`):
			f := form(t, page)
			f.Set("action", "allow")
			res, page = post(t, c, p.url+"/authorize", f)
		default:
			t.Fatalf("unexpected page %d:\n%s", res.StatusCode, page)
		}
	}
	t.Fatal("login did not finish")
	return nil
}

func TestFullFlowWithRealRelyingParty(t *testing.T) {
	p := newIDP(t)
	ctx := oidc.ClientContext(context.Background(), http.DefaultClient)
	provider, err := oidc.NewProvider(ctx, p.url)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: "webapp", ClientSecret: webSecret, Endpoint: provider.Endpoint(),
		RedirectURL: appRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess, "read"}}
	verifier := provider.Verifier(&oidc.Config{ClientID: "webapp", Now: p.clock.Now})

	pkce := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-123", oauth2.S256ChallengeOption(pkce), oidc.Nonce("nonce-456"))
	b := browser()
	back := p.login(t, b, authURL, "alice-password")
	q := back.Query()
	if q.Get("state") != "state-123" || q.Get("iss") != p.url || q.Get("code") == "" {
		t.Fatalf("callback %s", back)
	}

	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	if idt.Nonce != "nonce-456" || idt.Subject != "alice" {
		t.Errorf("id_token nonce %q sub %q", idt.Nonce, idt.Subject)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var idClaims map[string]any
	_ = idt.Claims(&idClaims)
	if idClaims["email"] != "alice@example.com" || idClaims["sid"] == nil || idClaims["auth_time"] == nil {
		t.Errorf("id_token claims %v", idClaims)
	}
	// The id_token carries the access token's jti: a relying party whose
	// session rests on the id_token is revoked with the access token.
	if jti, _ := idClaims["jti"].(string); jti == "" || jti != unverifiedClaims(t, tok.AccessToken)["jti"] {
		t.Errorf("id_token jti %q, access token's %q", jti, unverifiedClaims(t, tok.AccessToken)["jti"])
	}

	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Email != "alice@example.com" || ui.Subject != "alice" {
		t.Fatalf("userinfo %+v, %v", ui, err)
	}

	// A second login in the same browser skips the form and the consent.
	res, _ := get(t, b, conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(pkce)))
	if loc, _ := res.Location(); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), appRedirect) {
		t.Errorf("second authorize: %d %v, want a redirect straight back", res.StatusCode, loc)
	}

	// Refresh rotates; reusing the old token revokes the family.
	first := tok.RefreshToken
	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == first {
		t.Fatalf("refresh token not rotated")
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reuse of rotated refresh token: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("family not revoked after reuse: %v", err)
	}
	if active(t, p, "webapp", webSecret, refreshed.AccessToken) {
		t.Error("access token of a revoked family still active")
	}

	// Revocation, then introspection says inactive.
	tok2 := p.codeFlow(t, conf, ctx)
	if !active(t, p, "webapp", webSecret, tok2.AccessToken) {
		t.Fatal("fresh access token not active")
	}
	res, body := postBasic(t, p.url+"/revoke", "webapp", webSecret, url.Values{"token": {tok2.AccessToken}})
	if res.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	if active(t, p, "webapp", webSecret, tok2.AccessToken) {
		t.Error("revoked access token still active")
	}

	// Machine client.
	cc := clientcredentials.Config{ClientID: "machine", ClientSecret: machineSecret, TokenURL: provider.Endpoint().TokenURL, Scopes: []string{"read"}}
	mt, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	if mt.RefreshToken != "" || mt.Extra("id_token") != nil {
		t.Error("client_credentials returned a refresh token or id_token")
	}
	if !active(t, p, "webapp", webSecret, mt.AccessToken) {
		t.Error("machine token not active")
	}
}

// codeFlow runs a whole login in a fresh browser and exchanges the code.
func (p *idp) codeFlow(t *testing.T, conf oauth2.Config, ctx context.Context) *oauth2.Token {
	t.Helper()
	pkce := oauth2.GenerateVerifier()
	back := p.login(t, browser(), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce)), "alice-password")
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func postBasic(t *testing.T, u, id, secret string, v url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func active(t *testing.T, p *idp, id, secret, tok string) bool {
	t.Helper()
	res, body := postBasic(t, p.url+"/introspect", id, secret, url.Values{"token": {tok}})
	if res.StatusCode != 200 {
		t.Fatalf("introspect: %d %s", res.StatusCode, body)
	}
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out.Active
}

var _ = fmt.Sprintf

// unverifiedClaims decodes a JWS's claims without checking it.
func unverifiedClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("claims of %q: %v", tok, err)
	}
	return m
}
