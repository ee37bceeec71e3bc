package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/portcullis-dev/portcullis/internal/dpop"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/bcrypt"
)

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status int
	code   string
	desc   string
	basic  bool  // add WWW-Authenticate: Basic (client authentication failed with it)
	cause  error // logged, never sent
}

func (e *oauthError) Error() string { return "issuer: " + e.code + ": " + e.desc }

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

// writeJSON answers with JSON that must never be cached (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if e.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// parseForm reads a bounded form body; parameters in the query string do
// not count (RFC 6749 §3.2: the token endpoint takes a POST body).
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, errInvalidRequest("the body must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return nil, errInvalidRequest("the form could not be read")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 && k != "resource" { // RFC 8707 §2: resource may repeat
			return nil, errInvalidRequest("parameter " + k + " sent more than once")
		}
	}
	return r.PostForm, nil
}

// authenticateClient applies client_secret_basic, client_secret_post or,
// for public clients, none. Secrets are compared in constant time.
func (i *Issuer) authenticateClient(r *http.Request, form url.Values) (*Client, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.Get("client_secret") != "" {
			return nil, errInvalidRequest("use one client authentication method")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, &oauthError{status: 401, code: "invalid_client", desc: "malformed client credentials", basic: true}
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return nil, errInvalidRequest("client_id does not match the credentials")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	bad := &oauthError{status: 401, code: "invalid_client", desc: "client authentication failed", basic: basic}
	c, err := i.client(r.Context(), id)
	switch {
	case err != nil:
		return nil, storeFailure(err)
	case c == nil:
		return nil, bad
	}
	switch {
	case c.Public:
		if secret != "" {
			return nil, bad
		}
	case c.secretSHA != "":
		got := hashToken(secret)
		if secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.secretSHA)) != 1 {
			return nil, bad
		}
	case c.SecretHash != "":
		if bcrypt.CompareHashAndPassword([]byte(c.SecretHash), []byte(secret)) != nil {
			return nil, bad
		}
	default:
		want, got := sha256.Sum256([]byte(c.Secret)), sha256.Sum256([]byte(secret))
		if secret == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			return nil, bad
		}
	}
	return c, nil
}

// tokenResponse is RFC 6749 §5.1 plus the OIDC id_token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// token is the token endpoint.
func (i *Issuer) token(w http.ResponseWriter, r *http.Request) {
	var span trace.Span
	if i.cfg.Tracer != nil && trace.SpanFromContext(r.Context()).IsRecording() {
		var ctx context.Context
		ctx, span = i.cfg.Tracer.Start(r.Context(), "portcullis.issuer.token", trace.WithSpanKind(trace.SpanKindInternal))
		defer span.End()
		r = r.WithContext(ctx)
	}
	form, oe := parseForm(w, r)
	if oe == nil {
		var c *Client
		if c, oe = i.authenticateClient(r, form); oe == nil {
			if span != nil {
				span.SetAttributes(attribute.String("oauth.grant_type", form.Get("grant_type")), attribute.String("oauth.client_id", c.ID))
			}
			var res *tokenResponse
			var jkt string
			if jkt, oe = i.dpopProof(w, r); oe == nil {
				res, oe = i.grant(r, c, form, jkt)
			}
			if oe == nil {
				writeJSON(w, http.StatusOK, res)
				return
			}
		}
	}
	if span != nil {
		span.SetAttributes(attribute.String("oauth.error", oe.code))
		span.SetStatus(codes.Error, oe.code)
	}
	if oe.status >= 500 {
		i.log.Error("token endpoint", "err", oe.desc, "cause", oe.cause)
	}
	writeOAuthError(w, oe)
}

func (i *Issuer) grant(r *http.Request, c *Client, form url.Values, jkt string) (*tokenResponse, *oauthError) {
	gt := form.Get("grant_type")
	switch gt {
	case "authorization_code", "refresh_token", "client_credentials":
	case "":
		return nil, errInvalidRequest("grant_type is missing")
	default:
		return nil, &oauthError{status: 400, code: "unsupported_grant_type", desc: "grant_type " + gt + " is not supported"}
	}
	if !slices.Contains(c.GrantTypes, gt) {
		return nil, &oauthError{status: 400, code: "unauthorized_client", desc: "the client may not use " + gt}
	}
	if c.DPoPBoundAccessTokens && jkt == "" {
		return nil, &oauthError{status: 400, code: dpop.CodeInvalidProof, desc: "this client's tokens are DPoP-bound: send a DPoP proof"}
	}
	switch gt {
	case "authorization_code":
		return i.codeGrant(r, c, form, jkt)
	case "refresh_token":
		return i.refreshGrant(r, c, form, jkt)
	}
	return i.clientCredentialsGrant(r, c, form, jkt)
}

// storeFailure maps a store error that is not a verdict to a 503. The
// cause is logged by the handler (token, revoke, introspect); the client
// learns nothing about the store.
func storeFailure(err error) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		desc: "the authorization server is temporarily unavailable", cause: err}
}

// codeGrant redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (i *Issuer) codeGrant(r *http.Request, c *Client, form url.Values, jkt string) (*tokenResponse, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, errInvalidRequest("code is missing")
	}
	ctx := r.Context()
	now := i.now()
	// The family ID is chosen before redemption so that the code's record
	// names it and a replay can revoke it.
	issued := Issued{FamilyID: randomToken(), AccessJTI: randomToken(), AccessExpiry: now.Add(i.cfg.AccessTTL)}
	ac, err := i.cfg.Store.RedeemCode(ctx, hashToken(code), issued)
	switch {
	case errors.Is(err, ErrCodeReused):
		// RFC 6749 §4.1.2: a replayed code should revoke what it issued.
		i.log.Warn("authorization code replayed; revoking its tokens", "client", c.ID)
		if ac.Issued.FamilyID != "" {
			_ = i.cfg.Store.RevokeFamily(ctx, ac.Issued.FamilyID)
		}
		if ac.Issued.AccessJTI != "" {
			_ = i.cfg.Store.RevokeAccess(ctx, ac.Issued.AccessJTI, ac.Issued.AccessExpiry)
		}
		return nil, errInvalidGrant("the code was already used")
	case errors.Is(err, ErrNotFound):
		return nil, errInvalidGrant("the code is invalid or expired")
	case err != nil:
		return nil, storeFailure(err)
	}
	// The code is now spent whatever happens below, so a failed check
	// cannot be retried with the same code.
	switch {
	case ac.ClientID != c.ID:
		return nil, errInvalidGrant("the code was issued to another client")
	case !now.Before(ac.Expiry):
		return nil, errInvalidGrant("the code is invalid or expired")
	case form.Get("redirect_uri") != ac.RedirectURI:
		return nil, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	switch {
	case ac.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier without a challenge is a downgrade.
		return nil, errInvalidGrant("code_verifier sent but no code_challenge was")
	case ac.CodeChallenge != "" && verifier == "":
		return nil, errInvalidGrant("code_verifier is missing")
	case ac.CodeChallenge != "" && !verifierMatches(verifier, ac.CodeChallenge):
		return nil, errInvalidGrant("code_verifier does not match")
	}
	if ac.SessionID != "" {
		// A session ended (sign-out, EndUserSessions) after the code was
		// issued must not come back as tokens, or a family made now would
		// escape the revocation of the session's families.
		switch _, err := i.cfg.Store.GetSession(ctx, ac.SessionID); {
		case errors.Is(err, ErrNotFound):
			return nil, errInvalidGrant("the sign-in session the code was issued in has ended")
		case err != nil:
			return nil, storeFailure(err)
		}
	}
	if ac.DPoPJKT != "" && ac.DPoPJKT != jkt {
		return nil, &oauthError{status: 400, code: dpop.CodeInvalidProof, desc: "the code is bound to another DPoP key (dpop_jkt)"}
	}
	resources, oe := i.narrowResources(form["resource"], ac.Resources)
	if oe != nil {
		return nil, oe
	}
	if c.registered {
		// A client issued a token is no longer removed as unused.
		switch err := i.cfg.Store.UseClient(ctx, c.ID); {
		case errors.Is(err, ErrNotFound):
			return nil, &oauthError{status: 401, code: "invalid_client", desc: "the client is no longer registered"}
		case err != nil:
			return nil, storeFailure(err)
		}
	}
	g := grantInfo{client: c, subject: ac.Subject, scopes: ac.Scopes, authTime: ac.AuthTime,
		sid: ac.SessionID, nonce: ac.Nonce, jti: issued.AccessJTI, now: now,
		resources: resources, grantResources: ac.Resources, jkt: jkt}
	if len(g.grantResources) == 0 {
		g.grantResources = resources
	}
	if i.offline(c, ac.Scopes) {
		g.familyID = issued.FamilyID
	}
	res, oe := i.issue(r, g)
	if oe != nil {
		return nil, oe
	}
	if g.familyID != "" {
		// Revoking the family (reuse of a refresh token) also revokes the
		// access token issued with it.
		err := i.cfg.Store.AddFamilyAccess(ctx, g.familyID, issued.AccessJTI, issued.AccessExpiry)
		switch {
		case errors.Is(err, ErrRevoked):
			// A replay of this code raced the redemption and revoked
			// the family: the jti is recorded as denied; the one
			// redemption that won still gets its (dead) answer.
			i.log.Warn("code replayed during its redemption; the tokens issued are revoked", "client", c.ID)
		case err != nil:
			return nil, storeFailure(err)
		}
	}
	return res, nil
}

// verifierMatches checks a PKCE verifier against its S256 challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// offline reports whether a grant gets a refresh token.
func (i *Issuer) offline(c *Client, scopes []string) bool {
	return slices.Contains(c.GrantTypes, "refresh_token") && slices.Contains(scopes, "offline_access")
}

// refreshGrant rotates a refresh token (RFC 6749 §6, RFC 9700 §4.14.2).
func (i *Issuer) refreshGrant(r *http.Request, c *Client, form url.Values, jkt string) (*tokenResponse, *oauthError) {
	old := form.Get("refresh_token")
	if old == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	ctx := r.Context()
	cur, err := i.cfg.Store.LookupRefresh(ctx, hashToken(old))
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrRevoked):
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	case err != nil && !errors.Is(err, ErrRefreshReused):
		return nil, storeFailure(err)
	}
	if cur.ClientID != c.ID {
		return nil, errInvalidGrant("the refresh token was issued to another client")
	}
	if cur.JKT != "" && cur.JKT != jkt {
		// RFC 9449 §5: a public client's refresh token is bound to the
		// key of the proof it was issued with.
		return nil, errInvalidGrant("the refresh token is bound to a DPoP key; send a DPoP proof of that key")
	}
	if errors.Is(err, ErrRefreshReused) && i.cfg.RefreshRetryGrace > 0 {
		if res, oe := i.retryRefresh(ctx, c, cur, old, jkt); res != nil || oe != nil {
			return res, oe
		}
	}
	scopes := cur.Scopes
	if s := form.Get("scope"); s != "" {
		scopes = strings.Fields(s)
		if !subset(scopes, cur.Scopes) {
			return nil, &oauthError{status: 400, code: "invalid_scope", desc: "a refresh cannot widen the scope"}
		}
	}
	resources, oe := i.narrowResources(form["resource"], cur.Resources)
	if oe != nil {
		return nil, oe
	}
	now := i.now()
	next := randomToken()
	jti := randomToken()
	rt := RefreshToken{FamilyID: cur.FamilyID, ClientID: c.ID, Subject: cur.Subject, Scopes: cur.Scopes,
		Resources: cur.Resources, JKT: cur.JKT, AuthTime: cur.AuthTime, SessionID: cur.SessionID, FamilyExpiry: cur.FamilyExpiry,
		Expiry: minTime(now.Add(i.cfg.RefreshTTL), cur.FamilyExpiry)}
	// The pair is minted before the rotation is written, so that the
	// rotation can keep it, sealed, for a retry.
	g := grantInfo{client: c, subject: cur.Subject, scopes: scopes, authTime: cur.AuthTime,
		sid: cur.SessionID, jti: jti, now: now, refresh: next, resources: resources, jkt: jkt}
	res, oe := i.issue(r, g)
	if oe != nil {
		return nil, oe
	}
	if i.cfg.RefreshRetryGrace > 0 {
		sealed, err := sealRetry(old, res, jkt, now)
		if err != nil {
			return nil, &oauthError{status: 500, code: "server_error", desc: err.Error()}
		}
		rt.Retry = &RefreshRetry{Until: now.Add(i.cfg.RefreshRetryGrace), Sealed: sealed}
	}
	_, err = i.cfg.Store.RotateRefresh(ctx, hashToken(old), hashToken(next), rt, jti, now.Add(i.cfg.AccessTTL))
	if errors.Is(err, ErrRefreshRetry) {
		// A concurrent request rotated it a moment ago (a double submit,
		// or this request's own lost first attempt): its pair.
		res, oe := i.retryRefresh(ctx, c, cur, old, jkt)
		if res == nil && oe == nil {
			oe = errInvalidGrant("the refresh token was already used")
		}
		return res, oe
	}
	switch {
	case errors.Is(err, ErrRefreshReused):
		// This call revoked the family: tell its client, whose session
		// the family stood for (back-channel logout).
		i.log.Warn("refresh token reused; family revoked", "client", c.ID, "sub", cur.Subject)
		sid := ""
		if cur.SessionID != "" {
			sid = publicSID(hashToken(cur.SessionID))
		}
		i.backchannelLogout([]logoutNotice{{clientID: cur.ClientID, subject: cur.Subject, sid: sid}})
		return nil, errInvalidGrant("the refresh token was already used")
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrRevoked):
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	case err != nil:
		return nil, storeFailure(err)
	}
	return res, nil
}

// retryRefresh hands out the pair old was rotated to, when the store says
// it may (see Config.RefreshRetryGrace) and the retry proves the DPoP key
// of the first request; nil, nil when it may not.
func (i *Issuer) retryRefresh(ctx context.Context, c *Client, cur RefreshToken, old, jkt string) (*tokenResponse, *oauthError) {
	rr, err := i.cfg.Store.RetryRefresh(ctx, hashToken(old))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		// Unknown whether it qualifies: refuse without revoking.
		return nil, storeFailure(err)
	}
	res, ok := openRetry(old, rr.Sealed, jkt, i.now())
	if !ok {
		return nil, nil
	}
	i.log.Info("refresh token presented again within the retry grace; the same pair returned", "client", c.ID, "sub", cur.Subject)
	return res, nil
}

// clientCredentialsGrant issues an access token to a machine client
// (RFC 6749 §4.4): no refresh token, no id_token.
func (i *Issuer) clientCredentialsGrant(_ *http.Request, c *Client, form url.Values, jkt string) (*tokenResponse, *oauthError) {
	if c.Public {
		return nil, &oauthError{status: 400, code: "unauthorized_client", desc: "public clients cannot use client_credentials"}
	}
	resources, oe := i.checkResources(form["resource"])
	if oe != nil {
		return nil, oe
	}
	var scopes []string
	if s := form.Get("scope"); s != "" {
		scopes = strings.Fields(s)
	} else {
		for _, s := range c.Scopes {
			if _, std := builtinScopes[s]; !std {
				scopes = append(scopes, s)
			}
		}
	}
	for _, s := range scopes {
		if _, std := builtinScopes[s]; std || !slices.Contains(c.Scopes, s) {
			return nil, &oauthError{status: 400, code: "invalid_scope", desc: "scope " + s + " is not allowed for this client"}
		}
	}
	now := i.now()
	tok, _, exp, err := i.mintAccess(c, c.ID, scopes, resources, jkt, time.Time{}, randomToken(), now, now.Add(i.cfg.AccessTTL))
	if err != nil {
		return nil, &oauthError{status: 500, code: "server_error", desc: err.Error()}
	}
	return &tokenResponse{AccessToken: tok, TokenType: tokenType(jkt), ExpiresIn: int64(exp.Sub(now) / time.Second),
		Scope: strings.Join(scopes, " ")}, nil
}

// grantInfo is what a code or refresh grant issues tokens for.
type grantInfo struct {
	client   *Client
	subject  string
	scopes   []string
	authTime time.Time
	sid      string
	nonce    string
	jti      string
	now      time.Time
	familyID string // code grant: start a refresh family
	refresh  string // refresh grant: the rotated token to return
	// jkt, when set, binds the access token to a DPoP key (RFC 9449).
	jkt string
	// resources are the access token's audience (RFC 8707); none means
	// the client's audiences. grantResources, for a new family, are the
	// resources its refreshes may ask for.
	resources, grantResources []string
}

// issue mints the access token, the id_token for openid requests, and a
// new refresh family when asked.
func (i *Issuer) issue(r *http.Request, g grantInfo) (*tokenResponse, *oauthError) {
	if _, ok := i.bySubject[g.subject]; !ok {
		return nil, errInvalidGrant("the user no longer exists")
	}
	at, _, exp, err := i.mintAccess(g.client, g.subject, g.scopes, g.resources, g.jkt, g.authTime, g.jti, g.now, g.now.Add(i.cfg.AccessTTL))
	if err != nil {
		return nil, &oauthError{status: 500, code: "server_error", desc: err.Error()}
	}
	res := &tokenResponse{AccessToken: at, TokenType: tokenType(g.jkt), ExpiresIn: int64(exp.Sub(g.now) / time.Second),
		Scope: strings.Join(g.scopes, " "), RefreshToken: g.refresh}
	if slices.Contains(g.scopes, "openid") {
		if res.IDToken, err = i.mintIDToken(g, at); err != nil {
			return nil, &oauthError{status: 500, code: "server_error", desc: err.Error()}
		}
	}
	if g.familyID != "" {
		rt := randomToken()
		famExp := g.now.Add(i.cfg.RefreshTTL)
		err := i.cfg.Store.CreateRefresh(r.Context(), hashToken(rt), RefreshToken{
			FamilyID: g.familyID, ClientID: g.client.ID, Subject: g.subject, Scopes: g.scopes,
			Resources: g.grantResources, JKT: publicJKT(g.client, g.jkt), AuthTime: g.authTime, SessionID: g.sid, Expiry: famExp, FamilyExpiry: famExp,
		})
		switch {
		case errors.Is(err, ErrRevoked):
			// A replay of the code revoked the family before it was
			// created: no refresh token is issued.
		case err != nil:
			return nil, storeFailure(err)
		default:
			res.RefreshToken = rt
		}
	}
	return res, nil
}

// mintAccess signs an RFC 9068 access token, for the resources when
// there are any (RFC 8707), else for the client's audiences.
func (i *Issuer) mintAccess(c *Client, sub string, scopes, resources []string, jkt string, authTime time.Time, jti string, now, exp time.Time) (string, string, time.Time, error) {
	claims := jwt.MapClaims{
		"iss": i.url, "sub": sub, "client_id": c.ID, "iat": now.Unix(), "exp": exp.Unix(), "jti": jti,
	}
	if jkt != "" {
		claims["cnf"] = map[string]any{"jkt": jkt} // RFC 9449 §6.1
	}
	aud := c.Audiences
	if len(resources) > 0 {
		aud = resources
	}
	if len(aud) == 1 {
		claims["aud"] = aud[0]
	} else {
		claims["aud"] = aud
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	if !authTime.IsZero() {
		claims["auth_time"] = authTime.Unix()
	}
	// RFC 9068 §2.2.3.1: identity claims the scopes release, so resource
	// servers (and the gateway's identity headers) need no userinfo call.
	for k, v := range i.userClaims(sub, scopes) {
		if _, set := claims[k]; !set {
			claims[k] = v
		}
	}
	tok, err := i.sign(claims, "at+jwt")
	return tok, jti, exp, err
}

// mintIDToken signs an OpenID Connect id_token (OIDC Core §2).
func (i *Issuer) mintIDToken(g grantInfo, accessToken string) (string, error) {
	claims := jwt.MapClaims{}
	for k, v := range i.userClaims(g.subject, g.scopes) {
		claims[k] = v
	}
	claims["iss"] = i.url
	claims["aud"] = g.client.ID
	claims["iat"] = g.now.Unix()
	claims["exp"] = g.now.Add(i.cfg.IDTokenTTL).Unix()
	claims["auth_time"] = g.authTime.Unix()
	if g.jti != "" && i.cfg.IDTokenTTL <= i.cfg.AccessTTL {
		// The access token's jti: revoking it (sign-out, refresh-token
		// reuse) revokes a session that the id_token speaks for, too. A
		// revocation is kept as long as the access token lives, so an
		// id_token that outlives it gets none: a relying party that checks
		// revocation refuses it rather than see it come back to life.
		claims["jti"] = g.jti
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if g.sid != "" {
		claims["sid"] = publicSID(hashToken(g.sid))
	}
	claims["at_hash"] = atHash(i.cfg.Keys.Active().Algorithm, accessToken)
	return i.sign(claims, "JWT")
}

// atHash is OIDC Core §3.1.3.6: the left half of the hash of the access
// token, with the hash of the signing algorithm.
func atHash(alg, token string) string {
	var h hash.Hash
	switch alg {
	case "ES384", "RS384", "PS384":
		h = sha512.New384()
	case "ES512", "RS512", "PS512", "EdDSA":
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(token))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// sign signs claims with the active key.
func (i *Issuer) sign(claims jwt.MapClaims, typ string) (string, error) {
	k := i.cfg.Keys.Active()
	m := jwt.GetSigningMethod(k.Algorithm)
	if m == nil {
		return "", errors.New("issuer: unsupported signing algorithm " + k.Algorithm)
	}
	t := jwt.NewWithClaims(m, claims)
	t.Header["kid"] = k.ID
	t.Header["typ"] = typ
	return t.SignedString(k.Signer)
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}

// MintAccessToken signs an access token for a registered client outside any
// flow (portcullis token, load tests): subject and scopes as given, the
// client's audiences, lifetime ttl (0: the configured access token TTL).
func (i *Issuer) MintAccessToken(clientID, subject string, scopes []string, ttl time.Duration) (string, error) {
	c := i.clients[clientID]
	if c == nil {
		return "", errors.New("issuer: unknown client " + clientID)
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return "", errors.New("issuer: scope " + s + " is not allowed for client " + clientID)
		}
	}
	if ttl <= 0 {
		ttl = i.cfg.AccessTTL
	}
	now := i.now()
	tok, _, _, err := i.mintAccess(c, subject, scopes, nil, "", time.Time{}, randomToken(), now, now.Add(ttl))
	return tok, err
}

// storeFailed logs a store failure and answers 503.
func (i *Issuer) storeFailed(w http.ResponseWriter, err error) {
	i.log.Error("issuer store", "err", err)
	writeOAuthError(w, storeFailure(err))
}

// tokenType is the token_type of an access token bound to jkt, or not.
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

// publicJKT is the key a new refresh family is bound to: a public
// client's DPoP key (RFC 9449 §5); confidential clients authenticate
// anyway, and their refresh tokens stay unbound.
func publicJKT(c *Client, jkt string) string {
	if c.Public {
		return jkt
	}
	return ""
}

// dpopProof checks the DPoP header of a token request (RFC 9449 §5) and
// returns the thumbprint of its key, "" without one; a refused proof is
// answered 400 with its error, use_dpop_nonce with a DPoP-Nonce to retry
// with.
func (i *Issuer) dpopProof(w http.ResponseWriter, r *http.Request) (string, *oauthError) {
	proofs := r.Header.Values("Dpop")
	v := i.cfg.DPoP
	switch {
	case len(proofs) == 0:
		return "", nil
	case v == nil:
		return "", &oauthError{status: 400, code: dpop.CodeInvalidProof, desc: "DPoP is not supported here"}
	case len(proofs) > 1:
		return "", &oauthError{status: 400, code: dpop.CodeInvalidProof, desc: "send exactly one DPoP header"}
	}
	p, err := v.Verify(r.Context(), proofs[0], dpop.Request{Method: http.MethodPost, URL: i.url + "/token"})
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		if n := v.Nonces(); n != nil && de.Code == dpop.CodeUseNonce {
			w.Header().Set("DPoP-Nonce", n.Current())
		}
		return "", &oauthError{status: 400, code: de.Code, desc: de.Description}
	case err != nil:
		return "", storeFailure(err)
	}
	if n := v.Nonces(); n != nil {
		w.Header().Set("DPoP-Nonce", n.Current())
	}
	return p.JKT, nil
}
