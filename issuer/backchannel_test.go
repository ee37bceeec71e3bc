package issuer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
)

const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutRP is a relying party's back-channel logout endpoint. It answers
// the n-th request (from 1) with status(n), 200 when status is nil, and
// hands every request to the test.
type logoutRP struct {
	*httptest.Server
	status func(n int) int
	hold   chan struct{} // when not nil, requests wait for it to close

	mu       sync.Mutex
	n        int
	received chan logoutRequest
}

// logoutRequest is what the relying party received.
type logoutRequest struct {
	method, contentType, token string
	extra                      url.Values // form fields besides logout_token
}

func newLogoutRP(t *testing.T, status func(n int) int) *logoutRP {
	t.Helper()
	rp := &logoutRP{status: status, received: make(chan logoutRequest, 32)}
	rp.Server = httptest.NewServer(http.HandlerFunc(rp.serve))
	t.Cleanup(rp.Close)
	return rp
}

func (rp *logoutRP) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	form := r.PostForm
	req := logoutRequest{method: r.Method, contentType: r.Header.Get("Content-Type"), token: form.Get("logout_token"), extra: url.Values{}}
	for k, v := range form {
		if k != "logout_token" {
			req.extra[k] = v
		}
	}
	rp.mu.Lock()
	rp.n++
	n := rp.n
	rp.mu.Unlock()
	rp.received <- req
	if rp.hold != nil {
		select {
		case <-rp.hold:
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if rp.status != nil {
		status = rp.status(n)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}

// requests returns how many requests the relying party has had.
func (rp *logoutRP) requests() int {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.n
}

// logoutIDP is an issuer whose back-channel deliveries the test watches:
// their results, and the waits between attempts, which are recorded and
// not slept.
type logoutIDP struct {
	*idp
	results chan string
	mu      sync.Mutex
	waits   []time.Duration
}

// newLogoutIDP starts an issuer where webapp and spa send back-channel
// logouts to the given URIs (empty: none), changed further by mod if not
// nil.
func newLogoutIDP(t *testing.T, webappURI, spaURI string, mod func(*issuer.Config)) *logoutIDP {
	t.Helper()
	p := &logoutIDP{results: make(chan string, 64)}
	p.idp = newIDPWith(t, func(c *issuer.Config) {
		for k := range c.Clients {
			switch c.Clients[k].ID {
			case "webapp":
				c.Clients[k].BackchannelLogoutURI = webappURI
			case "spa":
				c.Clients[k].BackchannelLogoutURI = spaURI
				c.Clients[k].BackchannelLogoutSessionRequired = true
			}
		}
		c.LogoutSent = func(result string) { p.results <- result }
		c.Sleep = func(_ context.Context, d time.Duration) {
			p.mu.Lock()
			p.waits = append(p.waits, d)
			p.mu.Unlock()
		}
		if mod != nil {
			mod(c)
		}
	})
	return p
}

// result waits for the next delivery to settle.
func (p *logoutIDP) result(t *testing.T) string {
	t.Helper()
	select {
	case r := <-p.results:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no back-channel logout settled")
		return ""
	}
}

// settled waits for n deliveries and returns their results, sorted.
func (p *logoutIDP) settled(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, p.result(t))
	}
	slices.Sort(out)
	return out
}

func (p *logoutIDP) recordedWaits() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.waits)
}

// signIn runs the authorization code flow for client in browser b (which
// signs in, or is signed in already) and returns the token response.
func (p *idp) signIn(t *testing.T, b *http.Client, clientID, secret, scope string) map[string]any {
	t.Helper()
	u, verifier := p.authURL(func(v url.Values) {
		v.Set("client_id", clientID)
		v.Set("scope", scope)
	})
	back := p.login(t, b, u, "alice-password")
	f := codeForm(back.Query().Get("code"), verifier)
	id := clientID
	if secret == "" {
		f.Set("client_id", clientID)
		id = ""
	}
	status, out, _ := p.exchange(t, id, secret, f)
	if status != http.StatusOK {
		t.Fatalf("code exchange for %s: %d %v", clientID, status, out)
	}
	return out
}

// sidOf returns the sid of a token response's id_token.
func sidOf(t *testing.T, tok map[string]any) string {
	t.Helper()
	raw, _ := tok["id_token"].(string)
	sid, _ := unverifiedClaims(t, raw)["sid"].(string)
	if sid == "" {
		t.Fatalf("id_token without sid: %v", unverifiedClaims(t, raw))
	}
	return sid
}

// receive waits for the relying party's next request.
func (rp *logoutRP) receive(t *testing.T) logoutRequest {
	t.Helper()
	select {
	case r := <-rp.received:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the relying party received no logout token")
		return logoutRequest{}
	}
}

// verifyLogout checks a back-channel logout request as a relying party
// must (Back-Channel Logout 1.0 §2.6): a form POST whose logout_token
// go-oidc verifies for clientID (signature from the issuer's JWKS, iss,
// aud, exp), with typ logout+jwt, the logout event, a jti, no nonce, and
// the sub expected and a sid. It returns the sid.
func verifyLogout(t *testing.T, p *idp, req logoutRequest, clientID, sub string) string {
	t.Helper()
	if req.method != http.MethodPost || req.contentType != "application/x-www-form-urlencoded" || len(req.extra) > 0 {
		t.Fatalf("logout request: %s %q with extra fields %v", req.method, req.contentType, req.extra)
	}
	ctx := t.Context()
	v := oidc.NewVerifier(p.url, oidc.NewRemoteKeySet(ctx, p.url+"/jwks"), &oidc.Config{
		ClientID: clientID, Now: p.clock.Now, SupportedSigningAlgs: []string{p.keys.Active().Algorithm},
	})
	tok, err := v.Verify(ctx, req.token)
	if err != nil {
		t.Fatalf("logout token does not verify: %v", err)
	}
	header := map[string]any{}
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(req.token, ".")[0])
	if err != nil || json.Unmarshal(b, &header) != nil {
		t.Fatalf("logout token header: %v", err)
	}
	if header["typ"] != "logout+jwt" || header["kid"] == nil {
		t.Errorf("logout token header %v, want typ logout+jwt and a kid", header)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	events, _ := claims["events"].(map[string]any)
	if ev, ok := events[logoutEvent].(map[string]any); !ok || len(ev) != 0 {
		t.Errorf("events %v, want the back-channel logout event with an empty object", claims["events"])
	}
	if _, ok := claims["nonce"]; ok || tok.Nonce != "" {
		t.Errorf("logout token carries a nonce: %v", claims)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Errorf("logout token without jti: %v", claims)
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if iat == 0 || exp-iat != 120 {
		t.Errorf("iat %v exp %v, want exp two minutes after iat", claims["iat"], claims["exp"])
	}
	sid, _ := claims["sid"].(string)
	if tok.Subject != sub || sid == "" {
		t.Errorf("logout token sub %q sid %q, want %q and a sid", tok.Subject, sid, sub)
	}
	return sid
}

// checkLogout is verifyLogout that also checks the sid.
func checkLogout(t *testing.T, p *idp, req logoutRequest, clientID, sub, sid string) {
	t.Helper()
	if got := verifyLogout(t, p, req, clientID, sub); got != sid {
		t.Errorf("logout token for %s: sid %q, want %q (the id_token's)", clientID, got, sid)
	}
}

func TestBackchannelLogoutOnSignOut(t *testing.T) {
	web, spa := newLogoutRP(t, nil), newLogoutRP(t, nil)
	p := newLogoutIDP(t, web.URL+"/backchannel", spa.URL+"/backchannel", nil)
	b := browser()
	webTok := p.signIn(t, b, "webapp", webSecret, "openid email offline_access")
	spaTok := p.signIn(t, b, "spa", "", "openid") // same browser: same session
	sid := sidOf(t, webTok)
	if sidOf(t, spaTok) != sid {
		t.Fatalf("one session, two sids: %q and %q", sid, sidOf(t, spaTok))
	}
	// Another session is not told, nor ended.
	b2 := browser()
	p.signIn(t, b2, "webapp", webSecret, "openid")

	res, page := get(t, b, p.url+"/logout")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "You are signed out.") {
		t.Fatalf("logout: %d\n%s", res.StatusCode, page)
	}
	checkLogout(t, p.idp, web.receive(t), "webapp", "alice", sid)
	checkLogout(t, p.idp, spa.receive(t), "spa", "alice", sid)
	if got := p.settled(t, 2); !slices.Equal(got, []string{issuer.LogoutSentOK, issuer.LogoutSentOK}) {
		t.Errorf("results %v, want ok twice", got)
	}

	// Signed out: logging out again tells no one.
	get(t, b, p.url+"/logout")
	if res, page := get(t, b2, p.authURLFor("webapp")); res.StatusCode != http.StatusFound {
		t.Errorf("the other browser's session ended too: %d\n%s", res.StatusCode, page)
	}
	_ = p.iss.Close() // waits for any delivery
	if n := web.requests() + spa.requests(); n != 2 {
		t.Errorf("relying parties got %d requests in all, want 2", n)
	}
	// A sign-out leaves offline_access refresh tokens alone (§2.7).
	rt, _ := webTok["refresh_token"].(string)
	if s, out, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); s != http.StatusOK {
		t.Errorf("refresh after sign-out: %d %v", s, out)
	}
}

func TestBackchannelLogoutOnRefreshReuse(t *testing.T) {
	web := newLogoutRP(t, nil)
	p := newLogoutIDP(t, web.URL, "", nil)
	tok := p.signIn(t, browser(), "webapp", webSecret, "openid offline_access")
	old, _ := tok["refresh_token"].(string)
	refresh := func(rt string) (int, map[string]any) {
		s, out, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		return s, out
	}
	if s, out := refresh(old); s != http.StatusOK {
		t.Fatalf("refresh: %d %v", s, out)
	}
	if s, out := refresh(old); s != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", s, out)
	}
	checkLogout(t, p.idp, web.receive(t), "webapp", "alice", sidOf(t, tok))
	if r := p.result(t); r != issuer.LogoutSentOK {
		t.Errorf("result %q, want ok", r)
	}
	// The family is revoked once: presenting the token again tells no one.
	refresh(old)
	_ = p.iss.Close()
	if n := web.requests(); n != 1 {
		t.Errorf("relying party got %d requests, want 1", n)
	}
}

func TestEndUserSessions(t *testing.T) {
	stores := map[string]func(t *testing.T, now func() time.Time) issuer.Store{
		"memory": func(_ *testing.T, now func() time.Time) issuer.Store {
			return issuer.NewMemoryStore(issuer.MemoryConfig{Now: now})
		},
		"redis": func(t *testing.T, now func() time.Time) issuer.Store {
			url, _, _ := testredis.Start(t)
			return redisStore(t, url, "end:", now, nil)
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Run("all sessions", func(t *testing.T) { testEndAllSessions(t, newStore) })
			t.Run("one session", func(t *testing.T) { testEndOneSession(t, newStore) })
		})
	}
}

// sessionIDP is newLogoutIDP on a store newStore makes.
func sessionIDP(t *testing.T, web, spa *logoutRP, newStore func(*testing.T, func() time.Time) issuer.Store) *logoutIDP {
	t.Helper()
	return newLogoutIDP(t, web.URL, spa.URL, func(c *issuer.Config) { c.Store = newStore(t, c.Now) })
}

func testEndAllSessions(t *testing.T, newStore func(*testing.T, func() time.Time) issuer.Store) {
	web, spa := newLogoutRP(t, nil), newLogoutRP(t, nil)
	p := sessionIDP(t, web, spa, newStore)
	b1, b2 := browser(), browser()
	tok1 := p.signIn(t, b1, "webapp", webSecret, "openid offline_access")
	p.signIn(t, b1, "spa", "", "openid")
	tok2 := p.signIn(t, b2, "webapp", webSecret, "openid offline_access")
	sid1, sid2 := sidOf(t, tok1), sidOf(t, tok2)
	if sid1 == sid2 {
		t.Fatal("two browsers, one sid")
	}

	n, err := p.iss.EndUserSessions(t.Context(), "alice", "")
	if err != nil || n != 2 {
		t.Fatalf("EndUserSessions = %d, %v; want 2 sessions", n, err)
	}
	// webapp took part in both sessions (and held a family in each): one
	// logout token per session; spa in the first.
	got := []string{verifyLogout(t, p.idp, web.receive(t), "webapp", "alice"), verifyLogout(t, p.idp, web.receive(t), "webapp", "alice")}
	if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values([]string{sid1, sid2}))) {
		t.Errorf("webapp's logout tokens name sessions %q, want %q and %q", got, sid1, sid2)
	}
	checkLogout(t, p.idp, spa.receive(t), "spa", "alice", sid1)
	if r := p.settled(t, 3); !slices.Equal(r, []string{"ok", "ok", "ok"}) {
		t.Errorf("results %v, want ok three times", r)
	}

	// The refresh tokens and their access tokens are dead, and both
	// browsers must sign in again.
	for _, tok := range []map[string]any{tok1, tok2} {
		s, out, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
		if s != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("refresh after EndUserSessions: %d %v", s, out)
		}
		if active(t, p.idp, "webapp", webSecret, tok["access_token"].(string)) {
			t.Error("access token of a revoked family still active")
		}
	}
	for _, b := range []*http.Client{b1, b2} {
		if res, page := get(t, b, p.authURLFor("webapp")); res.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
			t.Errorf("authorize after EndUserSessions: %d, want the login form", res.StatusCode)
		}
	}

	// Nothing is left to end or tell.
	if n, err := p.iss.EndUserSessions(t.Context(), "alice", ""); err != nil || n != 0 {
		t.Errorf("EndUserSessions again = %d, %v; want 0", n, err)
	}
	_ = p.iss.Close()
	if n := web.requests() + spa.requests(); n != 3 {
		t.Errorf("relying parties got %d requests in all, want 3", n)
	}
}

func testEndOneSession(t *testing.T, newStore func(*testing.T, func() time.Time) issuer.Store) {
	web, spa := newLogoutRP(t, nil), newLogoutRP(t, nil)
	p := sessionIDP(t, web, spa, newStore)
	b1, b2 := browser(), browser()
	tok1 := p.signIn(t, b1, "webapp", webSecret, "openid offline_access")
	tok2 := p.signIn(t, b2, "webapp", webSecret, "openid offline_access")
	p.signIn(t, b2, "spa", "", "openid")
	sid1 := sidOf(t, tok1)

	n, err := p.iss.EndUserSessions(t.Context(), "alice", sid1)
	if err != nil || n != 1 {
		t.Fatalf("EndUserSessions(sid) = %d, %v; want 1 session", n, err)
	}
	checkLogout(t, p.idp, web.receive(t), "webapp", "alice", sid1)
	if r := p.result(t); r != issuer.LogoutSentOK {
		t.Errorf("result %q, want ok", r)
	}
	refresh := func(tok map[string]any) int {
		s, _, _ := p.exchange(t, "webapp", webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
		return s
	}
	if s := refresh(tok1); s != http.StatusBadRequest {
		t.Errorf("refresh in the ended session: %d, want 400", s)
	}
	if s := refresh(tok2); s != http.StatusOK {
		t.Errorf("refresh in the other session: %d, want 200", s)
	}
	if res, _ := get(t, b2, p.authURLFor("webapp")); res.StatusCode != http.StatusFound {
		t.Errorf("the other session ended too: authorize answered %d", res.StatusCode)
	}

	for _, tc := range []struct{ name, sub, sid string }{
		{"the same sid again", "alice", sid1},
		{"an unknown sid", "alice", "AAAAAAAAAAAAAAAAAAAAAA"},
		{"another user", "bob", ""},
	} {
		if n, err := p.iss.EndUserSessions(t.Context(), tc.sub, tc.sid); err != nil || n != 0 {
			t.Errorf("EndUserSessions with %s = %d, %v; want 0", tc.name, n, err)
		}
	}
	if _, err := p.iss.EndUserSessions(t.Context(), "", ""); err == nil {
		t.Error("EndUserSessions without a subject: no error")
	}
	_ = p.iss.Close()
	if n := web.requests() + spa.requests(); n != 1 {
		t.Errorf("relying parties got %d requests in all, want 1", n)
	}
}

// authURLFor is an authorization request for clientID with scope openid.
func (p *idp) authURLFor(clientID string) string {
	u, _ := p.authURL(func(v url.Values) {
		v.Set("client_id", clientID)
		v.Set("scope", "openid")
	})
	return u
}

// signedInBrowser signs alice in to webapp in a new browser and returns
// it with the token response.
func (p *logoutIDP) signedInBrowser(t *testing.T) (*http.Client, map[string]any) {
	t.Helper()
	b := browser()
	return b, p.signIn(t, b, "webapp", webSecret, "openid")
}

// logoutAtOnce signs b out at the issuer.
func (p *logoutIDP) logoutAtOnce(t *testing.T, b *http.Client) {
	t.Helper()
	res, _ := get(t, b, p.url+"/logout")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", res.StatusCode)
	}
}

func TestBackchannelLogoutRetries(t *testing.T) {
	tests := []struct {
		name     string
		status   func(n int) int // the answer to the n-th attempt
		result   string
		requests int
		waits    []time.Duration
	}{
		{"503 then 200", func(n int) int {
			if n == 1 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}, issuer.LogoutSentOK, 2, []time.Duration{time.Second}},
		{"429 twice then 204", func(n int) int {
			if n <= 2 {
				return http.StatusTooManyRequests
			}
			return http.StatusNoContent
		}, issuer.LogoutSentOK, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"500 every time", func(int) int { return 500 }, issuer.LogoutSentFailed, 4, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"400", func(int) int { return 400 }, issuer.LogoutSentRejected, 1, nil},
		{"a redirect", func(int) int { return http.StatusFound }, issuer.LogoutSentRejected, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rp := newLogoutRP(t, tc.status)
			var logs bytes.Buffer
			p := newLogoutIDP(t, rp.URL, "", func(c *issuer.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			b, tok := p.signedInBrowser(t)
			p.logoutAtOnce(t, b)
			if r := p.result(t); r != tc.result {
				t.Errorf("result %q, want %q", r, tc.result)
			}
			_ = p.iss.Close()
			if n := rp.requests(); n != tc.requests {
				t.Errorf("relying party got %d requests, want %d", n, tc.requests)
			}
			for range tc.requests {
				checkLogout(t, p.idp, rp.receive(t), "webapp", "alice", sidOf(t, tok))
			}
			if got := p.recordedWaits(); !slices.Equal(got, tc.waits) {
				t.Errorf("waits between attempts %v, want %v", got, tc.waits)
			}
			want := fmt.Sprintf("msg=\"back-channel logout sent\" client=webapp sub=alice result=%s attempts=%d status=", tc.result, tc.requests)
			if !strings.Contains(logs.String(), want) {
				t.Errorf("logs lack %q:\n%s", want, logs.String())
			}
		})
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct {
	mu sync.Mutex
	n  int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func TestBackchannelLogoutHTTPClient(t *testing.T) {
	rp := newLogoutRP(t, nil)
	tr := &countingTransport{}
	p := newLogoutIDP(t, rp.URL, "", func(c *issuer.Config) { c.HTTPClient = &http.Client{Transport: tr} })
	b, _ := p.signedInBrowser(t)
	p.logoutAtOnce(t, b)
	if r := p.result(t); r != issuer.LogoutSentOK {
		t.Errorf("result %q, want ok", r)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.n != 1 {
		t.Errorf("Config.HTTPClient carried %d requests, want 1", tr.n)
	}
}

func ExampleIssuer_EndUserSessions() {
	keys, err := jwks.OpenKeyRing(jwks.KeyRingConfig{})
	if err != nil {
		panic(err)
	}
	iss, err := issuer.New(issuer.Config{
		URL: "https://id.example", Keys: keys, Store: issuer.NewMemoryStore(issuer.MemoryConfig{}),
		Clients: []issuer.Client{{ID: "app", RedirectURIs: []string{"https://app.example/callback"},
			GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"},
			BackchannelLogoutURI: "https://app.example/backchannel-logout"}},
	})
	if err != nil {
		panic(err)
	}
	defer iss.Close() // waits for the logout tokens being delivered
	// An administrator signs alice out everywhere: her sessions end, her
	// refresh tokens stop working, and every application she used in
	// them is told.
	n, err := iss.EndUserSessions(context.Background(), "alice", "")
	fmt.Println("sessions ended:", n, err)
	// Output: sessions ended: 0 <nil>
}

func TestBackchannelLogoutClientDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/backchannel"
	_ = ln.Close() // nothing listens there now
	p := newLogoutIDP(t, down, "", nil)
	b, _ := p.signedInBrowser(t)
	p.logoutAtOnce(t, b)
	if r := p.result(t); r != issuer.LogoutSentFailed {
		t.Errorf("result %q, want failed", r)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	if got := p.recordedWaits(); !slices.Equal(got, want) {
		t.Errorf("waits between attempts %v, want %v", got, want)
	}
}

// A client that accepts the request and never answers holds up neither
// the sign-out nor Close, which cancels the delivery.
func TestBackchannelLogoutClientHangs(t *testing.T) {
	rp := newLogoutRP(t, nil)
	rp.hold = make(chan struct{})
	defer close(rp.hold)
	p := newLogoutIDP(t, rp.URL, "", nil)
	b, _ := p.signedInBrowser(t)
	p.logoutAtOnce(t, b) // answered while the client holds the request
	rp.receive(t)
	select {
	case r := <-p.results:
		t.Fatalf("delivery settled (%q) while the client holds it", r)
	default:
	}
	_ = p.iss.Close()
	if r := p.result(t); r != issuer.LogoutSentFailed {
		t.Errorf("result after Close %q, want failed", r)
	}
	// After Close, a logout token is not sent and counts failed.
	b2, _ := p.signedInBrowser(t)
	p.logoutAtOnce(t, b2)
	if r := p.result(t); r != issuer.LogoutSentFailed {
		t.Errorf("result of a logout after Close %q, want failed", r)
	}
	if n := rp.requests(); n != 1 {
		t.Errorf("relying party got %d requests, want 1", n)
	}
	_ = p.iss.Close() // again: fine
}

func TestBackchannelLogoutURIChecked(t *testing.T) {
	for _, bad := range []string{"/relative", "ftp://app.test/bc", "http://app.test/bc#frag", "http:///bc", "http://app.test/bc#"} {
		t.Run(bad, func(t *testing.T) {
			_, err := issuer.New(issuer.Config{URL: "http://issuer.test", Keys: newIDP(t).keys,
				Store:   issuer.NewMemoryStore(issuer.MemoryConfig{}),
				Clients: []issuer.Client{{ID: "app", BackchannelLogoutURI: bad}}})
			if err == nil || !strings.Contains(err.Error(), "back-channel logout URI") {
				t.Errorf("New with BackchannelLogoutURI %q: %v, want an error", bad, err)
			}
		})
	}
}

// A code issued in a session that ends before the code is redeemed yields
// no tokens: they would outlive the session's end.
func TestCodeOfAnEndedSession(t *testing.T) {
	p := newLogoutIDP(t, "", "", nil)
	for _, end := range []struct {
		name string
		end  func(b *http.Client)
	}{
		{"sign-out", func(b *http.Client) { get(t, b, p.url+"/logout") }},
		{"EndUserSessions", func(*http.Client) {
			if _, err := p.iss.EndUserSessions(t.Context(), "alice", ""); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			b := browser()
			u, verifier := p.authURL(nil)
			back := p.login(t, b, u, "alice-password")
			end.end(b)
			s, out, _ := p.exchange(t, "webapp", webSecret, codeForm(back.Query().Get("code"), verifier))
			if s != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Errorf("code of an ended session: %d %v, want invalid_grant", s, out)
			}
		})
	}
}
