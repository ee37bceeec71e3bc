package oidcclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/jwks"
)

const (
	sessionTestIssuer = "https://idp.example"
	sessionTestClient = "app"
)

// sessionTestEnv is a Client whose tokens a key ring signs, on a clock the
// test moves by hand.
type sessionTestEnv struct {
	t     testing.TB
	c     *Client
	clock *cookieTestClock
	ring  *jwks.KeyRing
}

// newSessionTestEnv returns a Client sealing cookies with secrets (the
// first seals), with cfg edited by mod when it is not nil.
func newSessionTestEnv(t testing.TB, secrets [][]byte, mod func(*Config)) *sessionTestEnv {
	t.Helper()
	codec, clock := cookieTestCodec(t, secrets...)
	ring, err := jwks.OpenKeyRing(jwks.KeyRingConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := url.Parse("https://app.example")
	cfg := Config{Issuer: sessionTestIssuer, ClientID: sessionTestClient, RedirectURL: "https://app.example/oauth2/callback",
		Prefix: "/oauth2", PublicURL: pub, Cookies: codec, Keys: ring, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sessionTestEnv{t: t, c: c, clock: clock, ring: ring}
}

// mint signs claims with the ring's active key.
func (e *sessionTestEnv) mint(claims jwt.MapClaims) string {
	e.t.Helper()
	k := e.ring.Active()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Algorithm), claims)
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Signer)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// idToken returns an id_token for sub with some user claims and extra.
func (e *sessionTestEnv) idToken(sub string, extra jwt.MapClaims) string {
	now := e.clock.Now()
	claims := jwt.MapClaims{"iss": sessionTestIssuer, "sub": sub, "aud": sessionTestClient,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "sid": "sid-" + sub,
		"email": sub + "@example.com", "name": "Test User " + sub, "preferred_username": sub,
		"groups": []string{"admin", "dev", "ops"}}
	for k, v := range extra {
		claims[k] = v
	}
	return e.mint(claims)
}

// session returns a session for sub started now, its access token valid
// for 15 minutes, with a refresh token.
func (e *sessionTestEnv) session(sub string) *Session {
	now := e.clock.Now()
	at := e.mint(jwt.MapClaims{"iss": sessionTestIssuer, "sub": sub, "aud": "api", "exp": now.Add(15 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": "jti-" + sub, "scope": "openid profile email read", "client_id": sessionTestClient})
	return &Session{AccessToken: at, IDToken: e.idToken(sub, nil), RefreshToken: "rt-" + sub,
		Expiry: now.Add(15 * time.Minute), Subject: sub, Started: now, Scopes: []string{"openid", "profile", "email", "read"}}
}

// seal writes s as the session cookie and returns the cookies set.
func (e *sessionTestEnv) seal(s *Session) []*http.Cookie {
	e.t.Helper()
	rec := httptest.NewRecorder()
	if err := e.c.save(rec, cookieTestRequest(), s); err != nil {
		e.t.Fatal(err)
	}
	return cookieTestLive(rec.Result().Cookies())
}

// get asks the Client for the session of a request carrying cookies, and
// reports whether the answer cleared the session cookie.
func (e *sessionTestEnv) get(cookies ...*http.Cookie) (s *Session, cleared bool) {
	e.t.Helper()
	rec := httptest.NewRecorder()
	s, err := e.c.Session(rec, cookieTestRequest(cookies...))
	if err != nil {
		e.t.Fatalf("Session: %v", err)
	}
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == e.c.cfg.CookieName && ck.MaxAge < 0 {
			cleared = true
		}
	}
	return s, cleared
}

// stats returns the cache's entries, bytes and hits.
func (e *sessionTestEnv) stats() (entries, bytes int, hits uint64) {
	e.t.Helper()
	if e.c.cache == nil {
		e.t.Fatal("no session cache")
	}
	return e.c.cache.stats()
}

func (e *sessionTestEnv) hits() uint64 {
	_, _, h := e.stats()
	return h
}

// sessionTestSame fails unless got is want as it was sealed.
func sessionTestSame(t testing.TB, got, want *Session) {
	t.Helper()
	if got == nil {
		t.Fatal("no session")
	}
	if got.AccessToken != want.AccessToken || got.IDToken != want.IDToken || got.RefreshToken != want.RefreshToken ||
		got.Subject != want.Subject || !got.Expiry.Equal(want.Expiry) || !got.Started.Equal(want.Started) ||
		got.FromIDToken != want.FromIDToken || strings.Join(got.Scopes, " ") != strings.Join(want.Scopes, " ") {
		t.Fatalf("session = %+v, want %+v", got, want)
	}
}

func TestSessionCacheHit(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	want := e.session("alice")
	cks := e.seal(want)

	first, _ := e.get(cks...)
	sessionTestSame(t, first, want)
	if entries, _, hits := e.stats(); entries != 1 || hits != 0 {
		t.Fatalf("after the first request: %d entries, %d hits; want 1, 0", entries, hits)
	}
	second, _ := e.get(cks...)
	sessionTestSame(t, second, want)
	if hits := e.hits(); hits != 1 {
		t.Fatalf("repeated cookie: %d hits, want 1", hits)
	}

	// Each request gets its own copy: what one caller changes, the next
	// does not see.
	if first == second {
		t.Fatal("two requests got the same *Session")
	}
	second.AccessToken = "changed"
	second.Subject = "mallory"
	second.Scopes = append(second.Scopes, "admin")
	third, _ := e.get(cks...)
	sessionTestSame(t, third, want)
	if e.hits() != 2 {
		t.Fatalf("third request: %d hits, want 2", e.hits())
	}
}

func TestSessionCacheTampered(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	cks := e.seal(e.session("alice"))
	if len(cks) != 1 {
		t.Fatalf("%d cookies, want one", len(cks))
	}
	if s, _ := e.get(cks...); s == nil {
		t.Fatal("genuine cookie refused")
	}
	v := cks[0].Value
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	for name, value := range map[string]string{
		"one character changed":   flip(v, len(v)/2),
		"last character changed":  flip(v, len(v)-1),
		"first character changed": flip(v, 0),
		"truncated by one":        v[:len(v)-1],
		"truncated by half":       v[:len(v)/2],
		"extended":                v + "A",
		"garbage":                 "not-a-sealed-value",
	} {
		t.Run(name, func(t *testing.T) {
			entries, _, hits := e.stats()
			s, cleared := e.get(&http.Cookie{Name: cks[0].Name, Value: value})
			if s != nil || !cleared {
				t.Fatalf("session %v, cleared %v; want refused and cleared", s, cleared)
			}
			if e2, _, h2 := e.stats(); e2 != entries || h2 != hits {
				t.Fatalf("entries %d→%d, hits %d→%d: a refused cookie touched the cache", entries, e2, hits, h2)
			}
		})
	}
	// The genuine cookie still comes from the cache.
	hits := e.hits()
	if s, _ := e.get(cks...); s == nil || e.hits() != hits+1 {
		t.Fatalf("genuine cookie after the forgeries: %v, hits %d→%d", s, hits, e.hits())
	}
}

func TestSessionCacheChunks(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	want := e.session("alice")
	groups := make([]string, 600)
	for i := range groups {
		groups[i] = fmt.Sprintf("group-%04d", i)
	}
	want.IDToken = e.idToken("alice", jwt.MapClaims{"groups": groups})
	cks := e.seal(want)
	if len(cks) < 3 {
		t.Fatalf("%d chunks, want at least 3", len(cks))
	}
	if s, _ := e.get(cks...); s == nil {
		t.Fatal("genuine chunked cookie refused")
	}
	if s, _ := e.get(cks...); s == nil || e.hits() != 1 {
		t.Fatalf("repeated chunked cookie: %v, %d hits; want a hit", s, e.hits())
	}
	joined := ""
	for _, ck := range cks {
		joined += ck.Value
	}
	withValues := func(values ...string) []*http.Cookie {
		out := make([]*http.Cookie, len(values))
		for i, v := range values {
			out[i] = &http.Cookie{Name: cookieChunkName(e.c.cfg.CookieName, i), Value: v}
		}
		return out
	}
	values := func() []string {
		out := make([]string, len(cks))
		for i, ck := range cks {
			out[i] = ck.Value
		}
		return out
	}

	refused := map[string][]*http.Cookie{}
	swapped := values()
	swapped[1], swapped[2] = swapped[2], swapped[1]
	refused["chunks 1 and 2 swapped"] = withValues(swapped...)
	refused["last chunk missing"] = withValues(values()[:len(cks)-1]...)
	missing := values()
	refused["middle chunk missing"] = append(withValues(missing[0]), withValues(missing...)[2:]...)
	refused["a chunk added"] = withValues(append(values(), "AAAA")...)
	shorter := values()
	shorter[1] = shorter[1][:len(shorter[1])-4]
	refused["a chunk shortened"] = withValues(shorter...)
	for name, req := range refused {
		t.Run(name, func(t *testing.T) {
			entries, _, hits := e.stats()
			if s, cleared := e.get(req...); s != nil || !cleared {
				t.Fatalf("session %v, cleared %v; want refused and cleared", s, cleared)
			}
			if e2, _, h2 := e.stats(); e2 != entries || h2 != hits {
				t.Fatalf("entries %d→%d, hits %d→%d: a refused cookie touched the cache", entries, e2, hits, h2)
			}
		})
	}

	// The same characters cut at other places open as the codec opens
	// them, but under a key of their own: never from the genuine entry.
	t.Run("cut elsewhere", func(t *testing.T) {
		var recut []string
		for rest := joined; rest != ""; {
			n := min(len(rest), 3000)
			recut = append(recut, rest[:n])
			rest = rest[n:]
		}
		hits := e.hits()
		s, _ := e.get(withValues(recut...)...)
		sessionTestSame(t, s, want)
		if e.hits() != hits {
			t.Fatalf("a cookie cut differently hit the cache")
		}
		if s, _ = e.get(withValues(recut...)...); s == nil || e.hits() != hits+1 {
			t.Fatalf("repeated recut cookie: %v, hits %d→%d", s, hits, e.hits())
		}
	})
}

func TestSessionCacheDuplicates(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	alice := e.seal(e.session("alice"))
	mallory := e.seal(e.session("mallory"))
	if s, _ := e.get(alice...); s == nil {
		t.Fatal("genuine cookie refused")
	}
	hits := e.hits()

	// A repeated name is decided by the codec every time, never by the
	// cache: with a cookie that does not open beside it, alice's still
	// opens; with another session that opens, neither is taken.
	junk := &http.Cookie{Name: alice[0].Name, Value: "junk"}
	s, _ := e.get(append([]*http.Cookie{junk}, alice...)...)
	if s == nil || s.Subject != "alice" {
		t.Fatalf("alice's cookie beside junk: %v", s)
	}
	if s, cleared := e.get(append(mallory, alice...)...); s != nil || !cleared {
		t.Fatalf("two sessions at once: %v, cleared %v; want refused", s, cleared)
	}
	if e.hits() != hits {
		t.Fatalf("hits %d→%d: repeated names were served from the cache", hits, e.hits())
	}
}

func TestSessionCacheExpiry(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) { c.SessionMaxAge = time.Hour })
	s := e.session("alice")
	s.Expiry = s.Started.Add(2 * time.Hour) // the access token outlives the session
	cks := e.seal(s)
	if got, _ := e.get(cks...); got == nil {
		t.Fatal("fresh session refused")
	}
	e.clock.now = s.Started.Add(59 * time.Minute)
	if got, _ := e.get(cks...); got == nil || e.hits() != 1 {
		t.Fatalf("before the session's end: %v, %d hits; want a hit", got, e.hits())
	}
	e.clock.now = s.Started.Add(time.Hour + time.Second)
	if got, cleared := e.get(cks...); got != nil || !cleared {
		t.Fatalf("past the session's end: %v, cleared %v; want refused and cleared", got, cleared)
	}
	if entries, _, hits := e.stats(); entries != 0 || hits != 1 {
		t.Fatalf("past the session's end: %d entries, %d hits; want the entry dropped, no hit", entries, hits)
	}
}

// sessionTestProvider is a token endpoint that answers refresh grants with
// new tokens for alice, counting them.
type sessionTestProvider struct {
	e     *sessionTestEnv
	mu    sync.Mutex
	calls int
}

func (p *sessionTestProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.calls++
	n := p.calls
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": fmt.Sprintf("at-refreshed-%d", n), "token_type": "Bearer", "expires_in": 900,
		"refresh_token": fmt.Sprintf("rt-refreshed-%d", n), "id_token": p.e.idToken("alice", nil),
	})
}

// newRefreshTestEnv is a session test Client whose provider is a
// sessionTestProvider, refreshing a minute before expiry.
func newRefreshTestEnv(t *testing.T) (*sessionTestEnv, *sessionTestProvider) {
	t.Helper()
	p := &sessionTestProvider{}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) {
		c.Endpoints = &Endpoints{Authorization: srv.URL + "/authorize", Token: srv.URL + "/token"}
		c.HTTPClient = srv.Client()
		c.RefreshBefore = time.Minute
	})
	p.e = e
	return e, p
}

func TestSessionCacheDecidesEveryTime(t *testing.T) {
	e, p := newRefreshTestEnv(t)
	start := e.clock.Now()

	t.Run("refresh before the access token expires", func(t *testing.T) {
		s := e.session("alice")
		cks := e.seal(s)
		e.get(cks...)
		e.get(cks...)
		hits := e.hits()
		e.clock.now = s.Expiry.Add(-30 * time.Second)
		rec := httptest.NewRecorder()
		got, err := e.c.Session(rec, cookieTestRequest(cks...))
		if err != nil || got == nil || got.AccessToken != "at-refreshed-1" || p.calls != 1 {
			t.Fatalf("near expiry: %+v, %v, %d refreshes; want the refreshed session", got, err, p.calls)
		}
		if e.hits() != hits+1 {
			t.Fatalf("hits %d→%d: want the old cookie read from the cache", hits, e.hits())
		}
		if len(cookieTestLive(rec.Result().Cookies())) == 0 {
			t.Fatal("refreshed session not written")
		}
	})
	t.Run("no refresh token, access token expired", func(t *testing.T) {
		e.clock.now = start
		s := e.session("bob")
		s.RefreshToken = ""
		cks := e.seal(s)
		e.get(cks...)
		e.clock.now = s.Expiry.Add(-time.Second)
		if got, _ := e.get(cks...); got == nil {
			t.Fatal("refused before its access token expired")
		}
		hits := e.hits()
		e.clock.now = s.Expiry.Add(time.Second)
		if got, cleared := e.get(cks...); got != nil || !cleared {
			t.Fatalf("expired access token: %v, cleared %v; want refused and cleared", got, cleared)
		}
		if e.hits() != hits+1 {
			t.Fatalf("hits %d→%d: want the decision taken on a cached session", hits, e.hits())
		}
	})
}

func TestSessionCacheBounded(t *testing.T) {
	const entries, bytes = 32, 16 * 8 << 10
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) {
		c.SessionCacheEntries, c.SessionCacheBytes = entries, bytes
	})
	s := e.session("alice")
	for range 500 {
		// Every seal has a nonce of its own: 500 distinct cookies.
		if got, _ := e.get(e.seal(s)...); got == nil {
			t.Fatal("session refused")
		}
		if n, b, _ := e.stats(); n > entries || b > bytes {
			t.Fatalf("%d entries, %d bytes; bounds are %d and %d", n, b, entries, bytes)
		}
	}
	if n, _, _ := e.stats(); n == 0 {
		t.Fatal("nothing cached")
	}

	// A byte bound smaller than the entry bound holds too.
	small := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) {
		c.SessionCacheEntries, c.SessionCacheBytes = 10_000, 1
	})
	s = small.session("alice")
	for range 200 {
		small.get(small.seal(s)...)
	}
	// The cache's 16 shards each hold at least 4 KiB, at least one entry.
	const shards = 16
	n, b, _ := small.stats()
	if limit := shards * (1 << 12); b > limit || n > shards {
		t.Fatalf("%d entries, %d bytes; want at most %d entries in %d bytes", n, b, shards, limit)
	}
}

func TestSessionCacheNewSecret(t *testing.T) {
	old := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	s := old.session("alice")
	cks := old.seal(s)
	old.get(cks...)
	old.get(cks...)
	if old.hits() != 1 {
		t.Fatalf("%d hits, want 1", old.hits())
	}

	// A Client with another secret starts empty and cannot open the cookie.
	fresh := newSessionTestEnv(t, [][]byte{cookieTestSecretB}, nil)
	if got, cleared := fresh.get(cks...); got != nil || !cleared {
		t.Fatalf("cookie of the old secret: %v, cleared %v; want refused", got, cleared)
	}
	if n, _, hits := fresh.stats(); n != 0 || hits != 0 {
		t.Fatalf("new Client: %d entries, %d hits; want none", n, hits)
	}

	// With the old secret kept for opening, the cookie opens again, once
	// decrypted by this Client before it is cached here.
	rotated := newSessionTestEnv(t, [][]byte{cookieTestSecretB, cookieTestSecretA}, nil)
	got, _ := rotated.get(cks...)
	sessionTestSame(t, got, s)
	if rotated.hits() != 0 {
		t.Fatal("a new Client hit on its first request")
	}
	rotated.get(cks...)
	if rotated.hits() != 1 {
		t.Fatalf("%d hits, want 1", rotated.hits())
	}
}

func TestSessionCacheOff(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) { c.SessionCacheEntries = -1 })
	if e.c.cache != nil {
		t.Fatal("cache on")
	}
	want := e.session("alice")
	cks := e.seal(want)
	for range 2 {
		got, _ := e.get(cks...)
		sessionTestSame(t, got, want)
	}
}

func TestSessionCacheStoreBacked(t *testing.T) {
	store := &MemoryStore{}
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) {
		c.Sessions = store
		c.Endpoints = &Endpoints{Authorization: "https://idp.example/authorize", Token: "https://idp.example/token"}
	})
	if e.c.cache != nil {
		t.Fatal("sessions kept in a store are cached")
	}
	want := e.session("alice")
	cks := e.seal(want)
	for range 2 {
		got, _ := e.get(cks...)
		sessionTestSame(t, got, want)
		if got.id == "" {
			t.Fatal("session without its store id")
		}
	}
	// Signing out deletes the session from the store: the very next
	// request with the same cookie is refused.
	rec := httptest.NewRecorder()
	r := cookieTestRequest(cks...)
	r.URL.Path = "/oauth2/sign_out"
	e.c.ServeHTTP(rec, r)
	if n := store.Len(); n != 0 {
		t.Fatalf("store still holds %d sessions", n)
	}
	if got, cleared := e.get(cks...); got != nil || !cleared {
		t.Fatalf("after sign-out: %v, cleared %v; want refused", got, cleared)
	}
}

func TestSessionIDClaimsMemo(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	cks := e.seal(e.session("alice"))
	a, _ := e.get(cks...)
	b, _ := e.get(cks...)
	ca, cb := a.IDClaims(), b.IDClaims()
	if ca["email"] != "alice@example.com" || ca["sub"] != "alice" {
		t.Fatalf("claims = %v", ca)
	}
	if n, ok := ca["exp"].(json.Number); !ok || n.String() == "" {
		t.Fatalf("exp = %#v, want a json.Number", ca["exp"])
	}
	if !sameMap(ca, cb) {
		t.Fatal("copies of a cached session decoded their claims twice")
	}

	// A copy given another id_token answers for that token.
	b.IDToken = e.idToken("bob", nil)
	if got := b.IDClaims()["sub"]; got != "bob" {
		t.Fatalf("sub = %v after the id_token changed, want bob", got)
	}
	b.IDToken = "not a token"
	if b.IDClaims() != nil {
		t.Fatal("claims of a malformed id_token")
	}
	if (&Session{}).IDClaims() != nil {
		t.Fatal("claims without an id_token")
	}
}

func TestSessionMergeIDClaims(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	cks := e.seal(e.session("alice"))
	calls := 0
	merge := func(base, id map[string]any) map[string]any {
		calls++
		out := map[string]any{"email": id["email"]}
		for k, v := range base {
			out[k] = v
		}
		return out
	}
	base := map[string]any{"sub": "alice", "scope": "read"}
	for range 3 {
		s, _ := e.get(cks...)
		m := s.MergeIDClaims(base, merge)
		if m["email"] != "alice@example.com" || m["scope"] != "read" {
			t.Fatalf("merged = %v", m)
		}
	}
	if calls != 1 {
		t.Fatalf("merge ran %d times for one base, want once", calls)
	}
	// Another map, even an equal one, is merged again.
	other := map[string]any{"sub": "alice", "scope": "read"}
	s, _ := e.get(cks...)
	s.MergeIDClaims(other, merge)
	if calls != 2 {
		t.Fatalf("merge ran %d times after the base changed, want twice", calls)
	}
	// A session not from the cache merges every time.
	plain := e.session("alice")
	plain.MergeIDClaims(base, merge)
	plain.MergeIDClaims(base, merge)
	if calls != 4 {
		t.Fatalf("merge ran %d times, want 4", calls)
	}
}

func TestSessionCacheConcurrent(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) { c.SessionCacheEntries = 64 })
	var cookies [][]*http.Cookie
	for i := range 8 {
		cookies = append(cookies, e.seal(e.session(fmt.Sprintf("user%d", i))))
	}
	merge := func(base, id map[string]any) map[string]any {
		out := map[string]any{"email": id["email"]}
		for k, v := range base {
			out[k] = v
		}
		return out
	}
	base := map[string]any{"scope": "read"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				want := (g + i) % len(cookies)
				s, err := e.c.Session(httptest.NewRecorder(), cookieTestRequest(cookies[want]...))
				if err != nil || s == nil {
					errs <- fmt.Errorf("session: %v, %v", s, err)
					return
				}
				sub := fmt.Sprintf("user%d", want)
				if s.Subject != sub || s.IDClaims()["sub"] != sub || s.MergeIDClaims(base, merge)["email"] != sub+"@example.com" {
					errs <- fmt.Errorf("request for %s got %s", sub, s.Subject)
					return
				}
				s.Scopes = append(s.Scopes, "mine")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if e.hits() == 0 {
		t.Fatal("no hits")
	}
}

func TestSessionKey(t *testing.T) {
	k1, ok1 := sessionKey([][]string{{"abc"}, {"def"}})
	k2, ok2 := sessionKey([][]string{{"abcd"}, {"ef"}})
	k3, ok3 := sessionKey([][]string{{"abcdef"}})
	if !ok1 || !ok2 || !ok3 || k1 == k2 || k1 == k3 || k2 == k3 {
		t.Fatal("the same characters cut differently share a key")
	}
	big := strings.Repeat("x", 3*sessionKeyStack)
	if k, ok := sessionKey([][]string{{big}}); !ok || k == k3 {
		t.Fatal("no key for a large cookie")
	}
	if _, ok := sessionKey([][]string{{"abc"}, {"def", "ghi"}}); ok {
		t.Fatal("a repeated chunk has a key")
	}
}

// BenchmarkSessionDecode reads a session from its cookie and decodes its
// id_token claims, as the gateway does for each browser request: cold
// decrypts and decodes every time (the cache off), cached repeats one
// cookie.
//
//	go test -run=^$ -bench=SessionDecode -benchmem ./oidcclient/
func BenchmarkSessionDecode(b *testing.B) {
	for _, bc := range []struct {
		name    string
		entries int
	}{
		{"cold", -1},
		{"cached", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newSessionTestEnv(b, [][]byte{cookieTestSecretA}, func(c *Config) { c.SessionCacheEntries = bc.entries })
			r := cookieTestRequest(e.seal(e.session("alice"))...)
			b.ReportAllocs()
			for b.Loop() {
				s, err := e.c.Session(nil, r)
				if err != nil || s == nil || s.IDClaims() == nil {
					b.Fatal(s, err)
				}
			}
		})
	}
}
