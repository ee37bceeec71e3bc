package oidcclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/jwks"
)

// newLogoutTestEnv is a session test env with back-channel logout on.
func newLogoutTestEnv(t testing.TB, mod func(*Config)) *sessionTestEnv {
	return newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) {
		c.BackchannelLogout = true
		if mod != nil {
			mod(c)
		}
	})
}

// logoutClaims are a valid logout token's claims for sid and sub ("" leaves
// one out), issued now.
func (e *sessionTestEnv) logoutClaims(sid, sub string) jwt.MapClaims {
	c := jwt.MapClaims{"iss": sessionTestIssuer, "aud": sessionTestClient, "iat": e.clock.Now().Unix(),
		"exp": e.clock.Now().Add(2 * time.Minute).Unix(), "jti": random(),
		"events": map[string]any{BackchannelEvent: map[string]any{}}}
	if sid != "" {
		c["sid"] = sid
	}
	if sub != "" {
		c["sub"] = sub
	}
	return c
}

// logoutToken signs claims as a logout token (typ logout+jwt).
func (e *sessionTestEnv) logoutToken(claims jwt.MapClaims) string {
	e.t.Helper()
	k := e.ring.Active()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Algorithm), claims)
	tok.Header["kid"] = k.ID
	tok.Header["typ"] = "logout+jwt"
	s, err := tok.SignedString(k.Signer)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// postLogout sends a back-channel logout with the form body and returns
// the answer.
func (e *sessionTestEnv) postLogout(form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/oauth2/backchannel_logout", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.c.ServeHTTP(rec, r)
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("Cache-Control %q, want no-store", cc)
	}
	return rec
}

// logout posts a logout token and fails unless it is answered 200.
func (e *sessionTestEnv) logout(tok string) {
	e.t.Helper()
	if rec := e.postLogout(url.Values{"logout_token": {tok}}); rec.Code != http.StatusOK {
		e.t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
}

// sessionWithSID is e.session(sub) with the provider's sid.
func (e *sessionTestEnv) sessionWithSID(sub, sid string) *Session {
	s := e.session(sub)
	s.SID = sid
	return s
}

// alive fails unless the cookies still carry a session for sub.
func (e *sessionTestEnv) alive(what string, sub string, cks []*http.Cookie) {
	e.t.Helper()
	if s, cleared := e.get(cks...); s == nil || cleared || s.Subject != sub {
		e.t.Fatalf("%s: session %v (cleared %v), want %s's session", what, s, cleared, sub)
	}
}

// ended fails unless the cookies' session is refused and cleared.
func (e *sessionTestEnv) ended(what string, cks []*http.Cookie) {
	e.t.Helper()
	if s, cleared := e.get(cks...); s != nil || !cleared {
		e.t.Fatalf("%s: session %v (cleared %v), want it refused and cleared", what, s, cleared)
	}
}

func TestBackchannelLogoutBySID(t *testing.T) {
	var results []string
	e := newLogoutTestEnv(t, func(c *Config) { c.LogoutReceived = func(r string) { results = append(results, r) } })
	a1 := e.seal(e.sessionWithSID("alice", "sid-a1"))
	a2 := e.seal(e.sessionWithSID("alice", "sid-a2"))
	bob := e.seal(e.sessionWithSID("bob", "sid-b"))
	e.alive("before", "alice", a1) // now in the session cache
	hits := e.hits()
	e.alive("before, cached", "alice", a1)
	if e.hits() == hits {
		t.Fatal("the session was not served from the cache; the test would prove less")
	}

	e.logout(e.logoutToken(e.logoutClaims("sid-a1", "alice")))
	e.ended("the logged-out sid, cached before", a1)
	e.alive("alice's other session", "alice", a2)
	e.alive("another user", "bob", bob)
	if len(results) != 1 || results[0] != LogoutOK {
		t.Fatalf("results %v, want [ok]", results)
	}
}

func TestBackchannelLogoutBySubject(t *testing.T) {
	e := newLogoutTestEnv(t, nil)
	a1 := e.seal(e.sessionWithSID("alice", "sid-a1"))
	a2 := e.seal(e.session("alice")) // its id_token had no sid
	bob := e.seal(e.sessionWithSID("bob", "sid-b"))

	e.logout(e.logoutToken(e.logoutClaims("", "alice")))
	e.ended("alice with a sid", a1)
	e.ended("alice without a sid", a2)
	e.alive("another user", "bob", bob)

	// Signing in after the logout makes a session it does not end.
	e.clock.now = e.clock.now.Add(time.Second)
	again := e.seal(e.sessionWithSID("alice", "sid-a3"))
	e.alive("alice, signed in again", "alice", again)
}

func TestBackchannelLogoutSIDAndSubjectEndSIDLessSessions(t *testing.T) {
	e := newLogoutTestEnv(t, nil)
	noSID := e.seal(e.session("carol"))
	other := e.seal(e.sessionWithSID("carol", "sid-c2"))
	e.logout(e.logoutToken(e.logoutClaims("sid-c1", "carol")))
	e.ended("carol's session without a sid", noSID)
	e.alive("carol's session with another sid", "carol", other)
}

func TestBackchannelLogoutRefused(t *testing.T) {
	e := newLogoutTestEnv(t, nil)
	other, err := jwks.OpenKeyRing(jwks.KeyRingConfig{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(claims jwt.MapClaims, header map[string]any, key jwks.SigningKey) string {
		tok := jwt.NewWithClaims(jwt.GetSigningMethod(key.Algorithm), claims)
		tok.Header["kid"] = key.ID
		tok.Header["typ"] = "logout+jwt"
		for k, v := range header {
			if v == nil {
				delete(tok.Header, k)
			} else {
				tok.Header[k] = v
			}
		}
		s, err := tok.SignedString(key.Signer)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mod := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := e.logoutClaims("sid-a", "alice")
		f(c)
		return c
	}
	own := e.ring.Active()
	foreign := other.Active()
	foreign.ID = own.ID // same kid, another key: the signature is what fails
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, e.logoutClaims("sid-a", "alice"))
	hsTok, _ := hs.SignedString([]byte("client-secret-client-secret-0123"))
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, e.logoutClaims("sid-a", "alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	good := e.logoutToken(e.logoutClaims("sid-a", "alice"))

	cases := []struct {
		name, token, want string
	}{
		{"bad signature", sign(e.logoutClaims("sid-a", "alice"), nil, foreign), "signature invalid"},
		{"another token's payload", splice(good, e.logoutToken(e.logoutClaims("", "mallory"))), "signature invalid"},
		{"wrong aud", e.logoutToken(mod(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), "aud does not name this client"},
		{"wrong iss", e.logoutToken(mod(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), "iss is not the provider"},
		{"no events", e.logoutToken(mod(func(c jwt.MapClaims) { delete(c, "events") })), "events has no"},
		{"events without the member", e.logoutToken(mod(func(c jwt.MapClaims) { c["events"] = map[string]any{"other": map[string]any{}} })), "events has no"},
		{"event member not an object", e.logoutToken(mod(func(c jwt.MapClaims) { c["events"] = map[string]any{BackchannelEvent: "yes"} })), "events has no"},
		{"with nonce", e.logoutToken(mod(func(c jwt.MapClaims) { c["nonce"] = "n-1" })), "carries a nonce"},
		{"no jti", e.logoutToken(mod(func(c jwt.MapClaims) { delete(c, "jti") })), "no jti"},
		{"no iat", e.logoutToken(mod(func(c jwt.MapClaims) { delete(c, "iat") })), "no iat"},
		{"iat far in the past", e.logoutToken(mod(func(c jwt.MapClaims) {
			c["iat"] = e.clock.Now().Add(-time.Hour).Unix()
			delete(c, "exp")
		})), "tokens older than"},
		{"iat in the future", e.logoutToken(mod(func(c jwt.MapClaims) { c["iat"] = e.clock.Now().Add(time.Hour).Unix() })), "iat is in the future"},
		{"expired", e.logoutToken(mod(func(c jwt.MapClaims) { c["exp"] = e.clock.Now().Add(-time.Hour).Unix() })), "expired"},
		{"neither sid nor sub", e.logoutToken(mod(func(c jwt.MapClaims) { delete(c, "sid"); delete(c, "sub") })), "neither sid nor sub"},
		{"sid not a string", e.logoutToken(mod(func(c jwt.MapClaims) { c["sid"] = 7 })), "sid is not"},
		{"typ of an access token", sign(e.logoutClaims("sid-a", "alice"), map[string]any{"typ": "at+jwt"}, own), "want logout+jwt"},
		{"HS256 with the client secret", hsTok, "algorithm HS256 is not allowed"},
		{"alg none", noneTok, "algorithm none is not allowed"},
		{"not a JWT", "not-a-jwt", "not a well-formed JWS"},
	}
	a := e.seal(e.sessionWithSID("alice", "sid-a"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.postLogout(url.Values{"logout_token": {tc.token}})
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", rec.Code, rec.Body)
			}
			var body struct{ Error, ErrorDescription string }
			if err := json.Unmarshal(rec.Body.Bytes(), &struct {
				Error            *string `json:"error"`
				ErrorDescription *string `json:"error_description"`
			}{&body.Error, &body.ErrorDescription}); err != nil || body.Error != "invalid_request" {
				t.Fatalf("body %s (%v), want an invalid_request error object", rec.Body, err)
			}
			if !strings.Contains(body.ErrorDescription, tc.want) {
				t.Errorf("error_description %q, want it to say %q", body.ErrorDescription, tc.want)
			}
			e.alive("after a refused logout", "alice", a)
		})
	}

	// Requests that are not a logout token at all.
	for name, send := range map[string]func() *httptest.ResponseRecorder{
		"no logout_token":  func() *httptest.ResponseRecorder { return e.postLogout(url.Values{}) },
		"two logout_token": func() *httptest.ResponseRecorder { return e.postLogout(url.Values{"logout_token": {good, good}}) },
		"JSON body": func() *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/backchannel_logout", strings.NewReader(`{"logout_token":"`+good+`"}`))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.c.ServeHTTP(rec, r)
			return rec
		},
	} {
		if rec := send(); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, rec.Code, rec.Body)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/oauth2/backchannel_logout?logout_token="+good, nil)
	rec := httptest.NewRecorder()
	e.c.ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q, want 405 Allow POST", rec.Code, rec.Header().Get("Allow"))
	}
	e.alive("after every refused request", "alice", a)

	// The good token still works once; its replay is refused and ends
	// nothing: a session signed in since survives it.
	e.logout(good)
	e.ended("after the good token", a)
	sub := e.logoutToken(e.logoutClaims("", "dave"))
	e.logout(sub)
	e.clock.now = e.clock.now.Add(time.Second)
	dave := e.seal(e.sessionWithSID("dave", "sid-d2"))
	if rec := e.postLogout(url.Values{"logout_token": {sub}}); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "used before") {
		t.Fatalf("replay: %d %s, want 400 naming the jti", rec.Code, rec.Body)
	}
	e.alive("a session signed in after the logout, on its replay", "dave", dave)
}

// splice returns sig's header and signature around payload's payload.
func splice(sig, payload string) string {
	p, q := strings.Split(sig, "."), strings.Split(payload, ".")
	return p[0] + "." + q[1] + "." + p[2]
}

func TestBackchannelLogoutTypRequired(t *testing.T) {
	e := newLogoutTestEnv(t, func(c *Config) { c.LogoutTokenTypRequired = true })
	claims := e.logoutClaims("sid-a", "alice")
	k := e.ring.Active()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Algorithm), claims)
	tok.Header["kid"] = k.ID
	delete(tok.Header, "typ")
	untyped, _ := tok.SignedString(k.Signer)
	if rec := e.postLogout(url.Values{"logout_token": {untyped}}); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "typ") {
		t.Fatalf("untyped token with typ required: %d %s", rec.Code, rec.Body)
	}
	e.logout(e.logoutToken(e.logoutClaims("sid-a", "alice")))

	// Without the setting, an untyped token is accepted.
	e2 := newLogoutTestEnv(t, nil)
	k2 := e2.ring.Active()
	tok2 := jwt.NewWithClaims(jwt.GetSigningMethod(k2.Algorithm), e2.logoutClaims("sid-a", "alice"))
	tok2.Header["kid"] = k2.ID
	delete(tok2.Header, "typ")
	s2, _ := tok2.SignedString(k2.Signer)
	e2.logout(s2)
}

func TestBackchannelLogoutOff(t *testing.T) {
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, nil)
	r := httptest.NewRequest(http.MethodPost, "/oauth2/backchannel_logout", strings.NewReader("logout_token=x"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.c.ServeHTTP(rec, r)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("%d, want 404 when back-channel logout is off", rec.Code)
	}
}

// TestBackchannelLogoutStoredSessions: sessions kept in a store are
// deleted, and a refresh racing the logout does not bring one back.
func TestBackchannelLogoutStoredSessions(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	rs, err := NewRedisStore(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	for name, st := range map[string]SessionStore{"memory": &MemoryStore{}, "redis": rs} {
		t.Run(name, func(t *testing.T) {
			e := newLogoutTestEnv(t, func(c *Config) {
				c.Sessions = st
				c.Endpoints = &Endpoints{Authorization: "https://idp.example/authorize", Token: "https://idp.example/token"}
			})
			sub := name + "-erin"
			s1 := e.sessionWithSID(sub, "sid-"+name+"-1")
			c1 := e.seal(s1)
			c2 := e.seal(e.session(sub)) // no sid
			c3 := e.seal(e.sessionWithSID(sub, "sid-"+name+"-3"))
			other := e.seal(e.sessionWithSID(name+"-frank", "sid-"+name+"-f"))

			e.logout(e.logoutToken(e.logoutClaims("sid-"+name+"-1", sub)))
			e.ended("the sid's session", c1)
			e.ended("the subject's session without a sid", c2)
			e.alive("the subject's session with another sid", sub, c3)
			if _, err := st.LoadSession(t.Context(), s1.id); err != ErrNoSession {
				t.Fatalf("the ended session is still stored: %v", err)
			}
			// A refresh finishing after the logout must not store it again.
			if err := st.UpdateSession(t.Context(), s1.id, []byte(`{}`), time.Hour); err != ErrNoSession {
				t.Fatalf("update of an ended session: %v, want ErrNoSession", err)
			}

			e.logout(e.logoutToken(e.logoutClaims("", sub)))
			e.ended("every session of the subject", c3)
			e.alive("another user", name+"-frank", other)
			n, err := st.DeleteSessionsOf(t.Context(), "", sub)
			if err != nil || n != 0 {
				t.Fatalf("a second delete found %d sessions (%v)", n, err)
			}
		})
	}
}

// TestBackchannelLogoutReplicas: two gateways sharing a Redis logout
// store; the logout reaches one, the session is refused by both, and the
// token cannot be replayed at the other.
func TestBackchannelLogoutReplicas(t *testing.T) {
	redisURL, stop, restart := testredis.Start(t)
	store := func() *RedisStore {
		s, err := NewRedisStore(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := newLogoutTestEnv(t, func(c *Config) { c.Logouts = store() })
	b := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) {
		c.BackchannelLogout, c.Logouts = true, store()
		c.Keys = a.ring
		c.Now = a.clock.Now
	})
	b.ring, b.clock = a.ring, a.clock
	sess := a.sessionWithSID("grace", "sid-g")
	cks := a.seal(sess)
	b.alive("on b before", "grace", cks)
	tok := a.logoutToken(a.logoutClaims("sid-g", "grace"))
	a.logout(tok)
	a.ended("on a", cks)
	b.ended("on b", cks)
	if rec := b.postLogout(url.Values{"logout_token": {tok}}); rec.Code != http.StatusBadRequest {
		t.Fatalf("replay at the other replica: %d %s", rec.Code, rec.Body)
	}

	// Redis down: a cookie session cannot be checked (503, not let in), and a
	// logout cannot be recorded (503 with Retry-After, and its jti is not
	// kept, so the provider's retry works once Redis is back).
	other := a.seal(a.sessionWithSID("heidi", "sid-h"))
	stop()
	rec := httptest.NewRecorder()
	if s, err := a.c.Session(rec, cookieTestRequest(other...)); err == nil || s != nil {
		t.Fatalf("with the logout store down: %v, %v; want an error", s, err)
	}
	tok = a.logoutToken(a.logoutClaims("sid-h", "heidi"))
	if rec := a.postLogout(url.Values{"logout_token": {tok}}); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("logout with the store down: %d %s", rec.Code, rec.Body)
	}
	restart()
	a.alive("heidi once Redis is back", "heidi", other)
	a.logout(tok)
	b.ended("heidi on b", other)
}

// FuzzBackchannelLogout: whatever the body, a back-channel logout not
// signed with the provider's keys is answered 400 (never 200, never a
// panic), and no session ends.
func FuzzBackchannelLogout(f *testing.F) {
	e := newLogoutTestEnv(f, nil)
	other := newLogoutTestEnv(f, nil) // another provider's keys
	good := other.logoutToken(other.logoutClaims("sid-a", "alice"))
	for _, seed := range []string{
		"", "logout_token=", "logout_token=a.b.c", "logout_token=" + good,
		"logout_token=" + good + "&logout_token=" + good,
		"logout_token=" + strings.ReplaceAll(good, ".", "%2E"),
		"logout_token=" + splice(good, other.logoutToken(other.logoutClaims("", "bob"))),
		"%zz", strings.Repeat("logout_token=x&", 100),
	} {
		f.Add(seed)
	}
	sess := e.seal(e.sessionWithSID("alice", "sid-a"))
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/backchannel_logout", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.c.ServeHTTP(rec, r)
		if rec.Code != http.StatusBadRequest {
			t.Fatalf("%q: %d %s, want 400", body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: the error is not JSON: %s", body, rec.Body)
		}
		if s, err := e.c.Session(httptest.NewRecorder(), cookieTestRequest(sess...)); err != nil || s == nil {
			t.Fatalf("%q ended the session: %v %v", body, s, err)
		}
	})
}

// BenchmarkSessionLogouts is a cached cookie session's read with
// back-channel logout off, on with no logout recorded, on with 10 000
// logouts of other users recorded, and on with the logouts in Redis.
func BenchmarkSessionLogouts(b *testing.B) {
	for _, bc := range []struct {
		name    string
		on      bool
		records int
		redis   bool
	}{{"off", false, 0, false}, {"on-empty", true, 0, false}, {"on-10k", true, 10_000, false}, {"on-redis", true, 0, true}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newSessionTestEnv(b, [][]byte{cookieTestSecretA}, func(c *Config) {
				c.BackchannelLogout = bc.on
				if bc.redis {
					u, _, _ := testredis.Start(b)
					rs, err := NewRedisStore(u)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { rs.Close() })
					c.Logouts = rs
				}
			})
			for i := range bc.records {
				_ = e.c.logouts.RecordLogout(b.Context(), fmt.Sprintf("sid-%d", i), fmt.Sprintf("user-%d", i), e.clock.Now(), time.Hour)
			}
			r := cookieTestRequest(e.seal(e.sessionWithSID("alice", "sid-alice"))...)
			b.ReportAllocs()
			for b.Loop() {
				if s, err := e.c.Session(nil, r); err != nil || s == nil {
					b.Fatal(s, err)
				}
			}
		})
	}
}
