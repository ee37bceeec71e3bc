package oidcclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
)

// Session is a signed-in browser's state, kept in the encrypted session
// cookie. Sessions that [Client.Session] reads from the same cookie are
// copies that share Scopes and the decoded claims: set fields freely, but
// do not modify the elements of Scopes.
type Session struct {
	AccessToken  string    `json:"at,omitempty"`
	IDToken      string    `json:"it,omitempty"`
	RefreshToken string    `json:"rt,omitempty"`
	Expiry       time.Time `json:"exp"` // of the access token (or id_token)
	Subject      string    `json:"sub"` // from the verified id_token
	// SID is the provider's session id, the id_token's sid ("" if it had
	// none): back-channel logouts name it.
	SID         string    `json:"sid,omitempty"`
	Started     time.Time `json:"st"`  // login time; bounds the session's life
	FromIDToken bool      `json:"idt"` // identity comes from the id_token
	Scopes      []string  `json:"scp"` // granted scopes

	id     string      // its id in the server-side store, if there is one
	claims *claimsMemo // IDClaims, decoded once for a cached session
}

// IDClaims returns the claims of the session's id_token, which was
// verified when the session was made (the cookie that carries it is
// authenticated), numbers as json.Number; nil if there is none. Sessions
// read from the same cookie may share the map: do not modify it.
func (s *Session) IDClaims() map[string]any {
	if m := s.claims; m != nil && m.token == s.IDToken {
		return m.get()
	}
	return decodeIDClaims(s.IDToken)
}

// MergeIDClaims returns merge(base, s.IDClaims()), such as the claims of
// the session's access token with the user claims of its id_token added.
// For sessions read from the same cookie the result is remembered and
// returned again while base is the very map it was computed from, so merge
// must depend on nothing but its arguments, and neither base nor the
// result may be modified.
func (s *Session) MergeIDClaims(base map[string]any, merge func(base, idClaims map[string]any) map[string]any) map[string]any {
	m := s.claims
	if m == nil || m.token != s.IDToken {
		return merge(base, s.IDClaims())
	}
	if p := m.merged.Load(); p != nil && sameMap(p.base, base) {
		return p.claims
	}
	out := merge(base, m.get())
	m.merged.Store(&mergedClaims{base: base, claims: out})
	return out
}

// claimsMemo decodes the claims of one id_token once, for every copy of a
// cached session, and remembers the last [Session.MergeIDClaims].
type claimsMemo struct {
	token  string
	once   sync.Once
	claims map[string]any
	merged atomic.Pointer[mergedClaims]
}

// mergedClaims is one result of [Session.MergeIDClaims].
type mergedClaims struct {
	base, claims map[string]any
}

func newClaimsMemo(token string) *claimsMemo { return &claimsMemo{token: token} }

func (m *claimsMemo) get() map[string]any {
	m.once.Do(m.decode)
	return m.claims
}

func (m *claimsMemo) decode() { m.claims = decodeIDClaims(m.token) }

// sameMap reports whether a and b are the same map, not merely equal.
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// decodeIDClaims returns the claims of an id_token without verifying it,
// numbers as json.Number; nil if it is not a JWS with a JSON object.
func decodeIDClaims(token string) map[string]any {
	_, rest, ok := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if d.Decode(&m) != nil {
		return nil
	}
	return m
}

func (s *Session) mode() string {
	if s.FromIDToken {
		return "id_token"
	}
	return "access_token"
}

// defaultAlgs are accepted for id_tokens when discovery names none.
var defaultAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// verifyIDToken checks an id_token (OIDC Core §3.1.3.7): signature with a
// provider key whose type fits the algorithm, iss, aud, azp, exp, iat and,
// when given, nonce. It returns the claims.
func (c *Client) verifyIDToken(ctx context.Context, raw, nonce string) (jwt.MapClaims, error) {
	c.mu.Lock()
	algs := c.algs
	c.mu.Unlock()
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	claims := jwt.MapClaims{}
	p := jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithIssuer(c.cfg.Issuer), jwt.WithAudience(c.cfg.ClientID),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(c.now))
	_, err := p.ParseWithClaims(raw, claims, c.providerKeys(ctx))
	if err != nil {
		return nil, fmt.Errorf("oidcclient: id_token: %w", err)
	}
	if aud, _ := claims.GetAudience(); len(aud) > 1 {
		if azp, _ := claims["azp"].(string); azp != c.cfg.ClientID {
			return nil, errors.New("oidcclient: id_token: azp does not name this client")
		}
	}
	if nonce != "" {
		if got, _ := claims["nonce"].(string); got != nonce {
			return nil, errNonce
		}
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, errors.New("oidcclient: id_token: no sub")
	}
	return claims, nil
}

// providerKeys is the key function of tokens the provider signs: the
// keys of its set with the token's kid whose algorithm, if they name one,
// is the token's.
func (c *Client) providerKeys(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := c.cfg.Keys.Keys(ctx, kid)
		if err != nil {
			return nil, err
		}
		set := jwt.VerificationKeySet{}
		for _, k := range keys {
			if k.Algorithm == "" || k.Algorithm == t.Method.Alg() {
				set.Keys = append(set.Keys, k.Public)
			}
		}
		return set, nil
	}
}

// errNonce is an id_token whose nonce is not the sign-in's.
var errNonce = errors.New("oidcclient: id_token: nonce mismatch")

// newSession builds a session from a token response. nonce is checked for
// the first login; refreshes pass "" (OIDC Core §12.2: a refreshed id_token
// need not carry it).
func (c *Client) newSession(ctx context.Context, tok *oauth2.Token, nonce string) (*Session, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("oidcclient: the provider returned no id_token")
	}
	claims, err := c.verifyIDToken(ctx, raw, nonce)
	if err != nil {
		return nil, err
	}
	sub, _ := claims["sub"].(string)
	sid, _ := claims["sid"].(string)
	s := &Session{AccessToken: tok.AccessToken, IDToken: raw, RefreshToken: tok.RefreshToken,
		Subject: sub, SID: sid, Started: c.now()}
	if tok.ExpiresIn > 0 {
		// x/oauth2 computes Expiry with the wall clock; use ours.
		s.Expiry = c.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	} else {
		s.Expiry = tok.Expiry
	}
	if sc, ok := tok.Extra("scope").(string); ok {
		s.Scopes = splitFields(sc)
	} else {
		s.Scopes = slices.Clone(c.cfg.Scopes)
	}
	if c.cfg.AccessTokenUsable == nil || !c.cfg.AccessTokenUsable(ctx, tok.AccessToken) {
		s.FromIDToken = true
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil && (s.Expiry.IsZero() || exp.Before(s.Expiry)) {
			s.Expiry = exp.Time
		}
	}
	if s.Expiry.IsZero() {
		s.Expiry = c.now().Add(5 * time.Minute)
	}
	return s, nil
}

func splitFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// save writes the session cookie; it lives as long as the session may.
// With a server-side store the session is stored under its id (kept across
// refreshes, so requests still carrying the cookie keep working) and the
// cookie holds only the id.
func (c *Client) save(w http.ResponseWriter, r *http.Request, s *Session) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	left := c.cfg.SessionMaxAge - c.now().Sub(s.Started)
	if left <= 0 {
		return errors.New("oidcclient: session too old")
	}
	if st := c.cfg.Sessions; st != nil {
		if s.id == "" {
			s.id = random()
			err = st.SaveSession(r.Context(), s.id, b, left, SessionOwner{SID: s.SID, Subject: s.Subject})
		} else {
			err = st.UpdateSession(r.Context(), s.id, b, left)
		}
		if err != nil {
			return err
		}
		b = []byte(s.id)
	}
	return c.cfg.Cookies.Seal(w, r, c.cfg.CookieName, b, left)
}

// open reads the session cookie without refreshing it.
func (c *Client) open(r *http.Request) (*Session, error) {
	var (
		s   *Session
		err error
	)
	if c.cfg.Sessions != nil {
		s, err = c.openStored(r)
	} else {
		s, err = c.openCookie(r)
	}
	if err != nil {
		return nil, err
	}
	if !c.live(s) {
		return nil, errNoSession
	}
	if c.logouts != nil && c.cfg.Sessions == nil {
		// A stored session is deleted by its logout; one in a cookie is
		// checked against the logouts on every request, cached or not.
		ended, err := c.logouts.LoggedOut(r.Context(), s.SID, s.Subject, s.Started)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: %w", errStoreUnavailable, err)
		case ended:
			return nil, errLoggedOut
		}
	}
	return s, nil
}

// errLoggedOut is a session the provider ended by back-channel logout.
var errLoggedOut = fmt.Errorf("%w: ended by the provider", errNoSession)

// live reports whether s is within the session's maximum age.
func (c *Client) live(s *Session) bool {
	return c.now().Sub(s.Started) <= c.cfg.SessionMaxAge
}

// openCookie returns the session the cookie itself carries. A cookie whose
// sealed value opened before is served from the cache until the expiry
// sealed in it; anything else is opened and decoded, and cached if that
// works.
func (c *Client) openCookie(r *http.Request) (*Session, error) {
	codec := c.cfg.Cookies
	name := codec.Name(c.cfg.CookieName)
	chunks, err := cookieRequestChunks(r, name)
	if err != nil {
		return nil, err
	}
	var key [32]byte
	cacheable := false
	if c.cache != nil {
		key, cacheable = sessionKey(chunks)
	}
	if cacheable {
		if s := c.cache.get(&key, codec.clock()); s != nil {
			return s, nil
		}
	}
	raw, until, err := codec.openChunks(name, chunks)
	if err != nil {
		return nil, err
	}
	s, err := decodeSession(raw)
	if err != nil {
		return nil, err
	}
	if cacheable && c.live(s) {
		s.claims = newClaimsMemo(s.IDToken)
		c.cache.put(&key, s, until, codec.clock())
	}
	return s, nil
}

// openStored returns the session the server-side store keeps under the id
// the cookie carries. It is never cached: a sign-out on any replica must
// end the session on every replica at once.
func (c *Client) openStored(r *http.Request) (*Session, error) {
	raw, err := c.cfg.Cookies.Open(r, c.cfg.CookieName)
	if err != nil {
		return nil, err
	}
	id := string(raw)
	if raw, err = c.cfg.Sessions.LoadSession(r.Context(), id); err != nil {
		if errors.Is(err, ErrNoSession) {
			return nil, errNoSession
		}
		return nil, fmt.Errorf("%w: %w", errStoreUnavailable, err)
	}
	s, err := decodeSession(raw)
	if err != nil {
		return nil, err
	}
	s.id = id
	return s, nil
}

// decodeSession decodes a session as [Client.save] encodes it.
func decodeSession(raw []byte) (*Session, error) {
	var s Session
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCookie, err)
	}
	return &s, nil
}

// errStoreUnavailable: the server-side session store could not be asked.
var errStoreUnavailable = errors.New("oidcclient: session store unavailable")

// Session returns the request's session, refreshing its tokens when the
// access token expires within RefreshBefore; a refreshed session is written
// to w. It returns (nil, nil) when there is no usable session (none, expired,
// tampered, or refresh failed: the cookie is then cleared and the browser
// should log in again). Concurrent requests carrying the same session share
// one refresh. A cookie seen before is not decrypted and decoded again (see
// [Config.SessionCacheEntries]); everything else is decided anew each time.
func (c *Client) Session(w http.ResponseWriter, r *http.Request) (*Session, error) {
	return c.session(w, r, false)
}

// SessionOneCookie is [Client.Session] for an answer that a fronting proxy
// passes on with at most one Set-Cookie, such as nginx's auth_request: a
// session kept whole in a cookie split in several is then not refreshed
// (its refresh token stays unspent, so nothing is lost), but used until its
// token expires, and the browser logs in again after that. Sessions kept in
// a [SessionStore] travel in one cookie and are refreshed as usual.
func (c *Client) SessionOneCookie(w http.ResponseWriter, r *http.Request) (*Session, error) {
	return c.session(w, r, true)
}

func (c *Client) session(w http.ResponseWriter, r *http.Request, oneCookie bool) (*Session, error) {
	s, err := c.open(r)
	if err != nil {
		if errors.Is(err, errStoreUnavailable) {
			return nil, err
		}
		if errors.Is(err, errLoggedOut) {
			c.log.Info("session refused: ended by back-channel logout")
		}
		if !errors.Is(err, ErrNoCookie) {
			c.cfg.Cookies.Clear(w, r, c.cfg.CookieName)
		}
		return nil, nil
	}
	if c.now().Add(c.cfg.RefreshBefore).Before(s.Expiry) {
		return s, nil
	}
	var chunks [][]string
	if oneCookie && c.cfg.Sessions == nil {
		chunks, _ = cookieRequestChunks(r, c.cfg.Cookies.Name(c.cfg.CookieName))
	}
	split := len(chunks) > 1
	if s.RefreshToken == "" || split {
		if split {
			c.log.Warn("session not refreshed: it spans several cookies, and this answer can pass on only one; set login.session_store to memory or redis",
				"sub", s.Subject, "cookies", len(chunks))
		}
		if c.now().Before(s.Expiry) {
			return s, nil
		}
		c.cfg.Cookies.Clear(w, r, c.cfg.CookieName)
		return nil, nil
	}
	parent := trace.SpanContextFromContext(r.Context())
	next, err := c.refreshes.do(s.RefreshToken, func() (*Session, error) { return c.refreshTraced(parent, s) })
	if err != nil {
		c.log.Info("session refresh failed; login needed", "sub", s.Subject, "err", err)
		c.cfg.Cookies.Clear(w, r, c.cfg.CookieName)
		return nil, nil
	}
	if err := c.save(w, r, next); err != nil {
		if errors.Is(err, ErrNoSession) {
			// Ended (back-channel logout, sign-out) while it refreshed.
			c.cfg.Cookies.Clear(w, r, c.cfg.CookieName)
		}
		return nil, nil
	}
	return next, nil
}

// refreshTraced is refresh in a span of its own, a child of the request
// that asked for it (parent), when traced.
func (c *Client) refreshTraced(parent trace.SpanContext, s *Session) (*Session, error) {
	if c.cfg.Tracer == nil || !parent.IsSampled() {
		return c.refresh(c.ctx, s)
	}
	ctx, span := c.cfg.Tracer.Start(trace.ContextWithSpanContext(c.ctx, parent), "portcullis.session.refresh")
	defer span.End()
	next, err := c.refresh(ctx, s)
	if err != nil {
		span.SetStatus(codes.Error, "refresh failed")
	}
	return next, err
}

// refresh redeems the refresh token on the Client's own context (base,
// which carries only its trace), never a request's: one request going
// away must not fail everyone's refresh.
func (c *Client) refresh(base context.Context, s *Session) (*Session, error) {
	ep, err := c.discovered(base)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithValue(base, oauth2.HTTPClient, c.http), c.cfg.ProviderTimeout)
	defer cancel()
	tok, err := c.oauth2Config(ep).TokenSource(ctx, &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return nil, err
	}
	if _, ok := tok.Extra("id_token").(string); !ok {
		// Providers may omit the id_token on refresh; keep the old one.
		tok = tok.WithExtra(map[string]any{"id_token": s.IDToken, "scope": joinScopes(s.Scopes)})
	}
	next, err := c.newSession(ctx, tok, "")
	if err != nil {
		return nil, err
	}
	if next.Subject != s.Subject {
		return nil, errors.New("oidcclient: refresh changed the subject")
	}
	next.Started = s.Started
	next.id = s.id
	if next.SID == "" {
		next.SID = s.SID // a refreshed id_token need not repeat it
	}
	if next.RefreshToken == "" {
		next.RefreshToken = s.RefreshToken
	}
	return next, nil
}

func joinScopes(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

// refreshGroup merges concurrent refreshes of one refresh token and
// remembers the result for a minute, so requests that still carry the old
// cookie (sent before the new one arrived) get the new session instead of
// presenting a rotated refresh token, which the provider would treat as
// reuse and answer by revoking the session.
type refreshGroup struct {
	mu   sync.Mutex
	m    map[string]*refreshCall
	keep time.Duration
	now  func() time.Time
}

type refreshCall struct {
	done chan struct{}
	sess *Session
	err  error
	at   time.Time
}

func (g *refreshGroup) init(now func() time.Time) {
	g.m = map[string]*refreshCall{}
	g.keep = time.Minute
	g.now = now
}

func (g *refreshGroup) do(token string, fn func() (*Session, error)) (*Session, error) {
	sum := sha256.Sum256([]byte(token))
	key := base64.RawURLEncoding.EncodeToString(sum[:])
	g.mu.Lock()
	now := g.now()
	for k, call := range g.m {
		if !call.at.IsZero() && now.Sub(call.at) > g.keep {
			delete(g.m, k)
		}
	}
	if call, ok := g.m[key]; ok {
		g.mu.Unlock()
		<-call.done
		return call.sess, call.err
	}
	call := &refreshCall{done: make(chan struct{})}
	g.m[key] = call
	g.mu.Unlock()
	call.sess, call.err = fn()
	g.mu.Lock()
	call.at = g.now()
	if call.err != nil {
		delete(g.m, key)
	}
	g.mu.Unlock()
	close(call.done)
	return call.sess, call.err
}
