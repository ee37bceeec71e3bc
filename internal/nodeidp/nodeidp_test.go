package nodeidp_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/dpop/prooftest"
	"github.com/portcullis-dev/portcullis/internal/nodeidp"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutPost is one request to a relying party's back-channel logout URI.
type logoutPost struct {
	method      string
	contentType string
	form        url.Values
}

// rp is a relying party: /protected redirects to the provider until the
// browser has signed in, /callback exchanges the code at the token
// endpoint, /backchannel-logout records what it receives.
type rp struct {
	t      *testing.T
	id     string
	srv    *httptest.Server
	base   string
	client nodeidp.Client
	conf   *oauth2.Config
	extra  []oauth2.AuthCodeOption // more authorization request parameters

	logouts  chan logoutPost
	received atomic.Int32 // back-channel POSTs received, counted before answering

	mu      sync.Mutex
	pending map[string][2]string // state: verifier, nonce
	tokens  []*oauth2.Token      // from the token endpoint, in order
}

// newRP listens for a relying party; start serves it once the provider
// runs.
func newRP(t *testing.T, id string, sessionRequired bool) *rp {
	r := &rp{t: t, id: id, logouts: make(chan logoutPost, 8), pending: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /protected", r.protected)
	mux.HandleFunc("GET /callback", r.callback)
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "signed out") })
	mux.HandleFunc("/backchannel-logout", r.backchannel)
	r.srv = httptest.NewUnstartedServer(mux)
	r.base = "http://" + r.srv.Listener.Addr().String()
	t.Cleanup(r.srv.Close)
	r.client = nodeidp.Client{
		ID:                               id,
		Secret:                           id + "-secret-0123456789abcdef",
		RedirectURIs:                     []string{r.base + "/callback"},
		PostLogoutRedirectURIs:           []string{r.base + "/signed-out"},
		BackchannelLogoutURI:             r.base + "/backchannel-logout",
		BackchannelLogoutSessionRequired: sessionRequired,
	}
	return r
}

func (r *rp) start(p *nodeidp.Provider, scopes ...string) {
	r.conf = &oauth2.Config{
		ClientID: r.client.ID, ClientSecret: r.client.Secret,
		Endpoint: p.Endpoint(), RedirectURL: r.base + "/callback",
		Scopes: append([]string{oidc.ScopeOpenID, "profile", "email"}, scopes...),
	}
	r.srv.Start()
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (r *rp) protected(w http.ResponseWriter, req *http.Request) {
	if c, err := req.Cookie(r.id); err == nil {
		fmt.Fprintf(w, "hello %s at %s", c.Value, r.id)
		return
	}
	state, verifier, nonce := random(), oauth2.GenerateVerifier(), random()
	r.mu.Lock()
	r.pending[state] = [2]string{verifier, nonce}
	r.mu.Unlock()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce)}, r.extra...)
	http.Redirect(w, req, r.conf.AuthCodeURL(state, opts...), http.StatusFound)
}

func (r *rp) callback(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	r.mu.Lock()
	p, ok := r.pending[q.Get("state")]
	delete(r.pending, q.Get("state"))
	r.mu.Unlock()
	if !ok || q.Get("code") == "" {
		http.Error(w, "bad callback: "+req.URL.RawQuery, http.StatusBadRequest)
		return
	}
	tok, err := r.conf.Exchange(req.Context(), q.Get("code"), oauth2.VerifierOption(p[0]))
	if err != nil {
		http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	var claims struct {
		Sub   string `json:"sub"`
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(segment(r.t, raw, 1), &claims); err != nil || claims.Nonce != p[1] {
		http.Error(w, fmt.Sprintf("id_token nonce %q, want %q (%v)", claims.Nonce, p[1], err), http.StatusBadGateway)
		return
	}
	r.mu.Lock()
	r.tokens = append(r.tokens, tok)
	r.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: r.id, Value: claims.Sub, Path: "/"})
	http.Redirect(w, req, "/protected", http.StatusFound)
}

func (r *rp) backchannel(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	r.logouts <- logoutPost{method: req.Method, contentType: req.Header.Get("Content-Type"), form: req.PostForm}
	r.received.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (r *rp) lastToken() *oauth2.Token {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tokens) == 0 {
		r.t.Fatalf("%s: no token from the token endpoint", r.id)
	}
	return r.tokens[len(r.tokens)-1]
}

// idToken verifies the last id_token of r with the provider's keys and
// returns its claims.
func (r *rp) idToken(ctx context.Context, p *nodeidp.Provider) (raw string, claims map[string]any) {
	r.t.Helper()
	raw, _ = r.lastToken().Extra("id_token").(string)
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		r.t.Fatal(err)
	}
	idt, err := op.Verifier(&oidc.Config{ClientID: r.id}).Verify(ctx, raw)
	if err != nil {
		r.t.Fatalf("%s: id_token: %v", r.id, err)
	}
	if err := idt.Claims(&claims); err != nil {
		r.t.Fatal(err)
	}
	return raw, claims
}

// logoutToken waits for one back-channel POST to r and returns the logout
// token's header and its claims, verified with the provider's keys.
func (r *rp) logoutToken(ctx context.Context, p *nodeidp.Provider) (header, claims map[string]any) {
	r.t.Helper()
	var post logoutPost
	select {
	case post = <-r.logouts:
	case <-time.After(10 * time.Second):
		r.t.Fatalf("%s: no back-channel logout POST after 10s\n%s", r.id, p.Output())
	}
	if post.method != http.MethodPost || post.contentType != "application/x-www-form-urlencoded" {
		r.t.Errorf("%s: back-channel logout by %s %q", r.id, post.method, post.contentType)
	}
	raw := post.form.Get("logout_token")
	if raw == "" {
		r.t.Fatalf("%s: back-channel logout without logout_token: %v", r.id, post.form)
	}
	payload, err := oidc.NewRemoteKeySet(ctx, p.Discovery.JWKSURI).VerifySignature(ctx, raw)
	if err != nil {
		r.t.Fatalf("%s: logout_token signature: %v", r.id, err)
	}
	if err := json.Unmarshal(segment(r.t, raw, 0), &header); err != nil {
		r.t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		r.t.Fatal(err)
	}
	return header, claims
}

// segment decodes part i of a compact JWT.
func segment(t testing.TB, jwt string, i int) []byte {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Errorf("not a JWT: %q", jwt)
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Errorf("JWT part %d: %v", i, err)
	}
	return b
}

// checkLogoutToken checks a logout token's claims for r and the session.
func checkLogoutToken(t *testing.T, p *nodeidp.Provider, r *rp, header, claims map[string]any, sub, sid string) {
	t.Helper()
	if header["typ"] != "logout+jwt" {
		t.Errorf("%s: logout_token typ %v, want logout+jwt", r.id, header["typ"])
	}
	if claims["iss"] != p.Issuer {
		t.Errorf("%s: logout_token iss %v, want %s", r.id, claims["iss"], p.Issuer)
	}
	if aud := fmt.Sprint(claims["aud"]); aud != r.id && aud != "["+r.id+"]" {
		t.Errorf("%s: logout_token aud %v", r.id, claims["aud"])
	}
	if claims["sub"] != sub {
		t.Errorf("%s: logout_token sub %v, want %s", r.id, claims["sub"], sub)
	}
	if got, _ := claims["sid"].(string); got != sid {
		t.Errorf("%s: logout_token sid %q, want %q", r.id, got, sid)
	}
	events, _ := claims["events"].(map[string]any)
	if ev, ok := events[backchannelEvent].(map[string]any); !ok || len(ev) != 0 {
		t.Errorf("%s: logout_token events %v, want {%q: {}}", r.id, claims["events"], backchannelEvent)
	}
	if _, ok := claims["nonce"]; ok {
		t.Errorf("%s: logout_token has a nonce", r.id)
	}
	for _, c := range []string{"jti", "iat", "exp"} {
		if _, ok := claims[c]; !ok {
			t.Errorf("%s: logout_token without %s: %v", r.id, c, claims)
		}
	}
}

func TestSignInAndBackchannelLogout(t *testing.T) {
	ctx := t.Context()
	app := newRP(t, "portcullis", true)
	p := nodeidp.Start(t, app.client)
	app.start(p)
	b := testgw.NewBrowser(t)

	// The gateway's flow: a protected page, the provider's login and
	// consent, the callback, and back to the page.
	res, body := p.SignIn(t, b, app.base+"/protected", "alice")
	if res.StatusCode != http.StatusOK || body != "hello alice at portcullis" || res.Request.URL.String() != app.base+"/protected" {
		t.Fatalf("SignIn ended at %s: %d %q\n%s", res.Request.URL, res.StatusCode, body, p.Output())
	}
	rawIDToken, claims := app.idToken(ctx, p)
	sid, _ := claims["sid"].(string)
	if sid == "" {
		t.Fatalf("id_token without sid: %v", claims)
	}
	if claims["sub"] != "alice" || claims["email"] != "alice@example.test" || claims["iss"] != p.Issuer {
		t.Errorf("id_token claims %v", claims)
	}
	if app.lastToken().RefreshToken != "" {
		t.Errorf("a refresh token without offline_access")
	}

	// The relying party's session serves the page; without it, the
	// provider's session signs alice in again with no page to fill in.
	res, body = b.Do("GET", app.base+"/protected", nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("protected page after sign-in: %d %q", res.StatusCode, body)
	}
	u, _ := url.Parse(app.base)
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: app.id, Value: "", MaxAge: -1, Path: "/"}})
	res, body = p.SignIn(t, b, app.base+"/protected", "ignored")
	if res.StatusCode != http.StatusOK || body != "hello alice at portcullis" {
		t.Fatalf("second SignIn: %d %q", res.StatusCode, body)
	}
	_, claims2 := app.idToken(ctx, p)
	if claims2["sid"] != sid {
		t.Errorf("second id_token sid %v, want %s (same provider session)", claims2["sid"], sid)
	}

	// RP-initiated logout with the id_token as hint.
	res, _ = p.EndSessionWith(t, b, url.Values{
		"id_token_hint":            {rawIDToken},
		"post_logout_redirect_uri": {app.base + "/signed-out"},
		"state":                    {"after-logout"},
	})
	if loc := res.Header.Get("Location"); loc != app.base+"/signed-out?state=after-logout" {
		t.Errorf("logout answer: %d to %q", res.StatusCode, loc)
	}
	// oidc-provider answers only after the back-channel POST was answered.
	if n := app.received.Load(); n != 1 {
		t.Errorf("%d back-channel POSTs received when the logout answered, want 1", n)
	}
	header, lt := app.logoutToken(ctx, p)
	checkLogoutToken(t, p, app, header, lt, "alice", sid)
	t.Logf("logout_token header %v, claims %v", header, lt)
	if !strings.Contains(p.Output(), "back-channel logout sent to portcullis") {
		t.Errorf("provider output without the back-channel logout:\n%s", p.Output())
	}

	// The provider's session is gone: the next authorization shows the
	// login page again, where bob signs in.
	b.Client.Jar.SetCookies(u, []*http.Cookie{{Name: app.id, Value: "", MaxAge: -1, Path: "/"}})
	res, body = p.SignIn(t, b, app.base+"/protected", "bob")
	if res.StatusCode != http.StatusOK || body != "hello bob at portcullis" {
		t.Fatalf("SignIn after logout: %d %q", res.StatusCode, body)
	}
	select {
	case post := <-app.logouts:
		t.Errorf("unexpected back-channel POST: %v", post.form)
	default:
	}
}

// TestEndSessionEndsEveryClient signs one browser in at two clients, one
// without backchannel_logout_session_required, and checks both get a
// logout token from one logout without a hint.
func TestEndSessionEndsEveryClient(t *testing.T) {
	ctx := t.Context()
	withSid := newRP(t, "with-sid", true)
	noSid := newRP(t, "without-sid", false)
	p := nodeidp.Start(t, withSid.client, noSid.client)
	withSid.start(p)
	noSid.start(p, "offline_access")
	noSid.extra = []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "consent")}
	b := testgw.NewBrowser(t)

	for _, r := range []*rp{withSid, noSid} {
		res, body := p.SignIn(t, b, r.base+"/protected", "carol@example.org")
		if want := "hello carol@example.org at " + r.id; res.StatusCode != http.StatusOK || body != want {
			t.Fatalf("SignIn at %s: %d %q\n%s", r.id, res.StatusCode, body, p.Output())
		}
	}
	_, c1 := withSid.idToken(ctx, p)
	_, c2 := noSid.idToken(ctx, p)
	sid, _ := c1["sid"].(string)
	if sid == "" || c1["email"] != "carol@example.org" {
		t.Fatalf("id_token of %s: %v", withSid.id, c1)
	}
	if _, ok := c2["sid"]; ok {
		t.Errorf("id_token of %s has a sid: %v", noSid.id, c2)
	}

	// offline_access with prompt=consent: a refresh token that works.
	tok := noSid.lastToken()
	if tok.RefreshToken == "" {
		t.Fatalf("no refresh token with offline_access and prompt=consent")
	}
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := noSid.conf.TokenSource(ctx, &expired).Token()
	if err != nil || fresh.AccessToken == "" || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %v %v", fresh, err)
	}

	res, _ := p.EndSession(t, b)
	if loc, _ := res.Location(); loc == nil || !strings.HasPrefix(loc.String(), p.Issuer+"/session/end/success") {
		t.Errorf("logout answer to %v", loc)
	}
	if withSid.received.Load() != 1 || noSid.received.Load() != 1 {
		t.Errorf("back-channel POSTs received before the logout answer: %d and %d, want 1 each", withSid.received.Load(), noSid.received.Load())
	}
	header, lt := withSid.logoutToken(ctx, p)
	checkLogoutToken(t, p, withSid, header, lt, "carol@example.org", sid)
	header, lt = noSid.logoutToken(ctx, p)
	checkLogoutToken(t, p, noSid, header, lt, "carol@example.org", "")

	// offline_access outlives the logout at the provider: the grant is
	// not revoked and the refresh token still works.
	expired.RefreshToken = fresh.RefreshToken
	if expired.RefreshToken == "" {
		expired.RefreshToken = tok.RefreshToken
	}
	if _, err := noSid.conf.TokenSource(ctx, &expired).Token(); err != nil {
		t.Errorf("offline_access refresh token after the logout: %v", err)
	}
}

// TestBackchannelFailureDoesNotFailLogout: a relying party that answers
// the back-channel POST with an error does not stop the logout.
func TestBackchannelFailureDoesNotFailLogout(t *testing.T) {
	app := newRP(t, "broken", true)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	app.client.BackchannelLogoutURI = broken.URL + "/backchannel-logout"
	p := nodeidp.Start(t, app.client)
	app.start(p)
	b := testgw.NewBrowser(t)
	if res, body := p.SignIn(t, b, app.base+"/protected", "dave"); res.StatusCode != http.StatusOK {
		t.Fatalf("SignIn: %d %q", res.StatusCode, body)
	}
	p.EndSession(t, b) // fails the test unless the provider answers 303
	// The provider logs the failure after the logout page is answered:
	// wait for the line, not for time.
	logged := func() bool {
		out := p.Output()
		return strings.Contains(out, "back-channel logout to broken") && strings.Contains(out, "500")
	}
	tick := time.NewTicker(10 * time.Millisecond)
	for deadline := time.After(10 * time.Second); !logged(); {
		select {
		case <-tick.C:
			continue
		case <-deadline:
		}
		t.Errorf("provider output without the failed back-channel logout:\n%s", p.Output())
		break
	}
	tick.Stop()
	// Without a session at the provider there is nothing to confirm and
	// nobody to tell.
	p.EndSession(t, b)
	if n := strings.Count(p.Output(), "back-channel logout to"); n != 1 {
		t.Errorf("%d back-channel logouts after a second logout, want 1:\n%s", n, p.Output())
	}
}

// TestClientCredentialsDPoP: a machine client gets a JWT access token for
// a resource, bound to the DPoP key of the proof it sends to the token
// endpoint, and a plain bearer JWT without a proof.
func TestClientCredentialsDPoP(t *testing.T) {
	machine := nodeidp.Client{ID: "machine", Secret: "machine-secret-0123456789", GrantTypes: []string{"client_credentials"}}
	p := nodeidp.Start(t, machine)
	const resource = "http://127.0.0.1:1/api"
	claimsOf := func(tok string) (map[string]any, map[string]any) {
		var h, c map[string]any
		if err := json.Unmarshal(segment(t, tok, 0), &h); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(segment(t, tok, 1), &c); err != nil {
			t.Fatal(err)
		}
		return h, c
	}

	k := prooftest.NewKey(t)
	tok, typ := p.ClientCredentials(t, machine, resource, "api:read", k.Proof(t, "POST", p.Discovery.TokenEndpoint, "", time.Now(), nil))
	if typ != "DPoP" {
		t.Errorf("token_type %q, want DPoP", typ)
	}
	h, c := claimsOf(tok)
	if h["alg"] != "RS256" || h["typ"] != "at+jwt" {
		t.Errorf("header %v, want alg RS256, typ at+jwt", h)
	}
	cnf, _ := c["cnf"].(map[string]any)
	if cnf["jkt"] != k.JKT {
		t.Errorf("cnf %v, want jkt %s", c["cnf"], k.JKT)
	}
	if c["iss"] != p.Issuer || fmt.Sprint(c["aud"]) != resource || c["sub"] != "machine" || c["client_id"] != "machine" || c["scope"] != "api:read" {
		t.Errorf("claims %v, want iss %s, aud %s, sub and client_id machine, scope api:read", c, p.Issuer, resource)
	}

	tok, typ = p.ClientCredentials(t, machine, resource, "api:read api:write", "")
	if typ != "Bearer" {
		t.Errorf("token_type %q without a proof, want Bearer", typ)
	}
	if _, c := claimsOf(tok); c["cnf"] != nil || c["scope"] != "api:read api:write" {
		t.Errorf("claims without a proof %v, want no cnf, scope api:read api:write", c)
	}
}
