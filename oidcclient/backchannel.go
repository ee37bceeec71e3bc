package oidcclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the
// provider POSTs a signed logout token naming a session (sid) or a user
// (sub) that ended at the provider, and the gateway refuses those sessions
// from then on.

// BackchannelEvent is the member of a logout token's events claim that
// makes it one.
const BackchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

const (
	// LogoutTokenMaxAge is how old a logout token's iat may be; ids of
	// tokens seen are remembered that long (plus the leeway), so a replay
	// is refused for as long as the token itself would be accepted.
	LogoutTokenMaxAge = 5 * time.Minute
	// logoutLeeway is the clock skew allowed on iat and exp.
	logoutLeeway = 30 * time.Second
	// logoutBodyMax bounds the request body of a back-channel logout.
	logoutBodyMax = 64 << 10
)

// Results of a back-channel logout request, as Config.LogoutReceived is
// told.
const (
	// LogoutOK: the token verified and its sessions are ended.
	LogoutOK = "ok"
	// LogoutInvalid: the request or its token was refused (400).
	LogoutInvalid = "invalid"
	// LogoutReplayed: a token whose jti was seen before (400).
	LogoutReplayed = "replayed"
	// LogoutError: the token verified, but the store could not record the
	// logout (503; the provider may send it again).
	LogoutError = "error"
)

// LogoutStore keeps what back-channel logouts ended, for sessions kept in
// the cookie itself, and the ids of the logout tokens seen. Every method is
// safe for concurrent use; with several replicas it must be shared
// ([RedisStore]), or a logout reaches only the replica that received it.
type LogoutStore interface {
	// RecordLogout records that the provider ended, at at, the session sid
	// or, when sid is "", every session of subject; the record is kept for
	// ttl, after which no session it could match is alive any longer. A
	// logout naming both sid and subject also ends subject's sessions that
	// carry no sid (their provider's id_token had none) started by at.
	RecordLogout(ctx context.Context, sid, subject string, at time.Time, ttl time.Duration) error
	// LoggedOut reports whether a session of subject with the provider's
	// sid (may be ""), started at started, was ended by a recorded logout.
	LoggedOut(ctx context.Context, sid, subject string, started time.Time) (bool, error)
	// FirstUse records a logout token's jti for ttl and reports whether
	// it was new; false means a replay.
	FirstUse(ctx context.Context, jti string, ttl time.Duration) (bool, error)
}

// logoutToken is what a verified logout token says.
type logoutToken struct {
	sid, sub, jti string
	iat           time.Time
}

// backchannelLogout serves POST Prefix/backchannel_logout (§2.5 to §2.8):
// 200 when the token verified and its sessions are ended, 400 with an
// error JSON otherwise, never cached.
func (c *Client) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		c.logoutRefused(w, r, http.StatusMethodNotAllowed, LogoutInvalid, "use POST", nil)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		c.logoutRefused(w, r, http.StatusBadRequest, LogoutInvalid, "the body must be application/x-www-form-urlencoded", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, logoutBodyMax)
	if err := r.ParseForm(); err != nil {
		c.logoutRefused(w, r, http.StatusBadRequest, LogoutInvalid, "the form could not be read", err)
		return
	}
	raw := r.PostForm["logout_token"]
	if len(raw) != 1 || raw[0] == "" {
		c.logoutRefused(w, r, http.StatusBadRequest, LogoutInvalid, "want exactly one logout_token", nil)
		return
	}
	lt, err := c.verifyLogoutToken(r.Context(), raw[0])
	if err != nil {
		c.logoutRefused(w, r, http.StatusBadRequest, LogoutInvalid, err.Error(), nil)
		return
	}
	now := c.now()
	// Remembered for as long as the token would still be accepted.
	fresh, err := c.logouts.FirstUse(r.Context(), lt.jti, lt.iat.Add(LogoutTokenMaxAge+2*logoutLeeway).Sub(now))
	if err != nil {
		c.logoutFailed(w, r, lt, err)
		return
	}
	if !fresh {
		c.logoutRefused(w, r, http.StatusBadRequest, LogoutReplayed, "this logout token was used before (jti)", nil,
			"sid", lt.sid, "sub", lt.sub)
		return
	}
	// A session started after now cannot be one the provider meant: it
	// was signed in after the logout.
	n, err := c.EndSessions(r.Context(), lt.sid, lt.sub)
	if err != nil {
		c.logoutFailed(w, r, lt, err)
		return
	}
	args := []any{"sid", lt.sid, "sub", lt.sub}
	if n >= 0 {
		args = append(args, "sessions_deleted", n)
	}
	c.log.Info("back-channel logout", args...)
	c.logoutResult(LogoutOK)
	w.WriteHeader(http.StatusOK)
}

// logoutRefused answers a back-channel logout that was not accepted.
func (c *Client) logoutRefused(w http.ResponseWriter, r *http.Request, status int, result, desc string, err error, more ...any) {
	args := append([]any{"reason", desc, "remote", c.remote(r)}, more...)
	if err != nil {
		args = append(args, "err", err)
	}
	c.log.Warn("back-channel logout refused", args...)
	c.logoutResult(result)
	writeJSONError(w, status, "invalid_request", desc)
}

// logoutFailed answers a valid logout the store could not record: 503, so
// a provider that retries sends it again (its jti is forgotten, so the
// retry is not taken for a replay).
func (c *Client) logoutFailed(w http.ResponseWriter, r *http.Request, lt *logoutToken, err error) {
	c.log.Error("back-channel logout not recorded", "sid", lt.sid, "sub", lt.sub, "remote", c.remote(r), "err", err)
	if f, ok := c.logouts.(interface {
		ForgetUse(ctx context.Context, jti string) error
	}); ok {
		_ = f.ForgetUse(r.Context(), lt.jti)
	}
	c.logoutResult(LogoutError)
	w.Header().Set("Retry-After", "5")
	writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the logout could not be recorded; send it again")
}

func (c *Client) logoutResult(result string) {
	if c.cfg.LogoutReceived != nil {
		c.cfg.LogoutReceived(result)
	}
}

func (c *Client) remote(r *http.Request) string {
	if c.cfg.ClientAddr != nil {
		return c.cfg.ClientAddr(r)
	}
	return r.RemoteAddr
}

// writeJSONError writes an OAuth-style error object.
func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// verifyLogoutToken checks a logout token (§2.6): the signature with a
// provider key whose type fits an algorithm the provider signs id_tokens
// with (never none), iss, aud, iat (not in the future, not older than
// LogoutTokenMaxAge), exp when present, typ (logout+jwt when present;
// required when so configured), the events claim, sid and/or sub, jti, and
// no nonce. Errors are fit for the answer's error_description.
func (c *Client) verifyLogoutToken(ctx context.Context, raw string) (*logoutToken, error) {
	c.mu.Lock()
	algs := c.algs
	c.mu.Unlock()
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	algs = signatureAlgs(algs)
	claims := jwt.MapClaims{}
	p := jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithIssuer(c.cfg.Issuer), jwt.WithAudience(c.cfg.ClientID),
		jwt.WithIssuedAt(), jwt.WithLeeway(logoutLeeway), jwt.WithTimeFunc(c.now))
	tok, err := p.ParseWithClaims(raw, claims, c.providerKeys(ctx))
	if err != nil {
		if tok != nil && tok.Method != nil && !slices.Contains(algs, tok.Method.Alg()) {
			return nil, fmt.Errorf("logout token: algorithm %s is not allowed; the provider's keys sign with %s",
				shortText(tok.Method.Alg()), strings.Join(algs, ", "))
		}
		return nil, fmt.Errorf("logout token: %s", logoutTokenError(err))
	}
	// Explicit typing (RFC 8725 §3.11) is recommended, not required, by the
	// spec: a token typed as a plain JWT is accepted unless configured
	// otherwise (the events claim keeps an id_token from passing as one).
	typ, _ := tok.Header["typ"].(string)
	logoutTyp := strings.EqualFold(typ, "logout+jwt") || strings.EqualFold(typ, "application/logout+jwt")
	switch {
	case c.cfg.LogoutTokenTypRequired && !logoutTyp:
		return nil, fmt.Errorf("logout token: typ is %q; logout+jwt is required", shortText(typ))
	case typ != "" && !logoutTyp && !strings.EqualFold(typ, "JWT"):
		return nil, fmt.Errorf("logout token: typ is %q; want logout+jwt", shortText(typ))
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return nil, errors.New("logout token: no iat")
	}
	if age := c.now().Sub(iat.Time); age > LogoutTokenMaxAge+logoutLeeway {
		return nil, fmt.Errorf("logout token: issued %s ago; tokens older than %s are refused", age.Round(time.Second), LogoutTokenMaxAge)
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events[BackchannelEvent].(map[string]any); !ok {
		return nil, errors.New("logout token: events has no " + BackchannelEvent + " object")
	}
	if _, ok := claims["nonce"]; ok {
		return nil, errors.New("logout token: carries a nonce, which logout tokens must not")
	}
	lt := &logoutToken{iat: iat.Time}
	var ok bool
	if lt.jti, ok = claims["jti"].(string); !ok || lt.jti == "" {
		return nil, errors.New("logout token: no jti")
	}
	if v, present := claims["sid"]; present {
		if lt.sid, ok = v.(string); !ok || lt.sid == "" {
			return nil, errors.New("logout token: sid is not a non-empty string")
		}
	}
	if v, present := claims["sub"]; present {
		if lt.sub, ok = v.(string); !ok || lt.sub == "" {
			return nil, errors.New("logout token: sub is not a non-empty string")
		}
	}
	if lt.sid == "" && lt.sub == "" {
		return nil, errors.New("logout token: names neither sid nor sub")
	}
	return lt, nil
}

// signatureAlgs drops what can never verify a logout token: none, and
// HMAC, whose key would be the client secret (the provider's keys are
// public keys).
func signatureAlgs(algs []string) []string {
	out := make([]string, 0, len(algs))
	for _, a := range algs {
		if a != "none" && !strings.HasPrefix(a, "HS") {
			out = append(out, a)
		}
	}
	return out
}

// logoutTokenError says, in a few words, why golang-jwt refused a token.
func logoutTokenError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "not a well-formed JWS"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "no provider key can verify it (unknown kid or algorithm not allowed)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature invalid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "iss is not the provider"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "aud does not name this client"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "iat is in the future"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return "claims invalid"
	}
	return "invalid"
}

// shortText bounds a value quoted back in an error.
func shortText(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ErrNoLogouts: sessions kept in cookies cannot be ended without a logout
// store, which only back-channel logout configures.
var ErrNoLogouts = errors.New("oidcclient: sessions in cookies can be ended only with back-channel logout on")

// EndSessions ends sessions as a back-channel logout naming sid and
// subject would (see [LogoutStore.RecordLogout]): deleted when they live
// in the store, refused from their next request when they live in
// cookies. It returns how many were deleted, -1 when they live in cookies
// (their number is not known).
func (c *Client) EndSessions(ctx context.Context, sid, subject string) (int, error) {
	if sid == "" && subject == "" {
		return 0, errors.New("oidcclient: a sid or a subject is needed")
	}
	if c.cfg.Sessions != nil {
		return c.cfg.Sessions.DeleteSessionsOf(ctx, sid, subject)
	}
	if c.logouts == nil {
		return 0, ErrNoLogouts
	}
	return -1, c.logouts.RecordLogout(ctx, sid, subject, c.now(), c.cfg.SessionMaxAge+logoutLeeway)
}
