package issuer

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/pages"
)

// scopeClaims maps the standard scopes to their claims (OIDC Core §5.4).
var scopeClaims = map[string][]string{
	"profile": {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// standardClaim reports whether name belongs to a standard scope.
func standardClaim(name string) bool {
	for _, cs := range scopeClaims {
		if slices.Contains(cs, name) {
			return true
		}
	}
	return false
}

// userClaims returns sub and the user's configured claims that the scopes
// release: standard claims by OIDC Core §5.4, other claims (groups, say)
// with "profile" or with a scope of their own name.
func (i *Issuer) userClaims(subject string, scopes []string) map[string]any {
	out := map[string]any{"sub": subject}
	u := i.bySubject[subject]
	if u == nil {
		return out
	}
	for k, v := range u.Claims {
		release := slices.Contains(scopes, k)
		if standardClaim(k) {
			for _, s := range scopes {
				release = release || slices.Contains(scopeClaims[s], k)
			}
		} else {
			release = release || slices.Contains(scopes, "profile")
		}
		if release {
			out[k] = v
		}
	}
	if _, ok := out["preferred_username"]; !ok && slices.Contains(scopes, "profile") {
		out["preferred_username"] = u.Username
	}
	return out
}

// verifyOwn checks a JWT this issuer signed: signature with a published
// key, iss, and typ; expiry only when checkExp.
func (i *Issuer) verifyOwn(ctx context.Context, tok, typ string, checkExp bool) (jwt.MapClaims, error) {
	opts := []jwt.ParserOption{jwt.WithIssuer(i.url), jwt.WithTimeFunc(i.now), jwt.WithLeeway(0)}
	if checkExp {
		opts = append(opts, jwt.WithExpirationRequired())
	} else {
		opts = append(opts, jwt.WithoutClaimsValidation())
	}
	claims := jwt.MapClaims{}
	t, err := jwt.NewParser(opts...).ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := i.cfg.Keys.Keys(ctx, kid)
		if err != nil || len(keys) == 0 {
			return nil, errors.New("unknown key")
		}
		if keys[0].Algorithm != "" && keys[0].Algorithm != t.Method.Alg() {
			return nil, errors.New("algorithm mismatch")
		}
		return keys[0].Public, nil
	})
	if err != nil || !t.Valid {
		return nil, errors.New("issuer: token invalid")
	}
	if h, _ := t.Header["typ"].(string); !strings.EqualFold(h, typ) {
		return nil, errors.New("issuer: wrong token type")
	}
	if iss, _ := claims["iss"].(string); iss != i.url {
		return nil, errors.New("issuer: wrong issuer")
	}
	return claims, nil
}

// Revoked reports whether an access token id was revoked; the gateway's
// authn consults it for this issuer's tokens.
func (i *Issuer) Revoked(ctx context.Context, jti string) (bool, error) {
	return i.cfg.Store.IsAccessRevoked(ctx, jti)
}

// activeAccess verifies an access token and that it is not revoked.
func (i *Issuer) activeAccess(ctx context.Context, tok string) (jwt.MapClaims, error) {
	claims, err := i.verifyOwn(ctx, tok, "at+jwt", true)
	if err != nil {
		return nil, err
	}
	jti, _ := claims["jti"].(string)
	revoked, err := i.cfg.Store.IsAccessRevoked(ctx, jti)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, errors.New("issuer: token revoked")
	}
	return claims, nil
}

// userinfo is OIDC Core §5.3.
func (i *Issuer) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	challenge := func(status int, code, desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+i.url+`", error="`+code+`", error_description="`+desc+`"`)
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
	}
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "bearer ") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+i.url+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "no access token"})
		return
	}
	claims, err := i.activeAccess(r.Context(), strings.TrimSpace(auth[7:]))
	if err != nil {
		challenge(http.StatusUnauthorized, "invalid_token", "the access token is invalid")
		return
	}
	scopes := strings.Fields(stringOf(claims["scope"]))
	if !slices.Contains(scopes, "openid") {
		challenge(http.StatusForbidden, "insufficient_scope", "the openid scope is required")
		return
	}
	writeJSON(w, http.StatusOK, i.userClaims(stringOf(claims["sub"]), scopes))
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// revoke is RFC 7009. It answers 200 for unknown tokens and for tokens of
// other clients alike, so it reveals nothing.
func (i *Issuer) revoke(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	var c *Client
	if oe == nil {
		c, oe = i.authenticateClient(r, form)
	}
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, errInvalidRequest("token is missing"))
		return
	}
	ctx := r.Context()
	if rt, err := i.cfg.Store.LookupRefresh(ctx, hashToken(tok)); err == nil || errors.Is(err, ErrRefreshReused) {
		if rt.ClientID == c.ID {
			if err := i.cfg.Store.RevokeFamily(ctx, rt.FamilyID); err != nil {
				i.storeFailed(w, err)
				return
			}
		}
	} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRevoked) {
		i.storeFailed(w, err)
		return
	} else if claims, err := i.verifyOwn(ctx, tok, "at+jwt", true); err == nil && stringOf(claims["client_id"]) == c.ID {
		exp, _ := claims.GetExpirationTime()
		if err := i.cfg.Store.RevokeAccess(ctx, stringOf(claims["jti"]), exp.Time); err != nil {
			i.storeFailed(w, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// introspect is RFC 7662, for authenticated confidential clients.
func (i *Issuer) introspect(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	var c *Client
	if oe == nil {
		c, oe = i.authenticateClient(r, form)
	}
	if oe == nil && c.Public {
		oe = &oauthError{status: 401, code: "invalid_client", desc: "public clients cannot introspect"}
	}
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	tok := form.Get("token")
	ctx := r.Context()
	inactive := map[string]any{"active": false}
	if tok == "" {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	if rt, err := i.cfg.Store.LookupRefresh(ctx, hashToken(tok)); err == nil {
		writeJSON(w, http.StatusOK, map[string]any{
			"active": true, "token_type": "refresh_token", "client_id": rt.ClientID, "sub": rt.Subject,
			"scope": strings.Join(rt.Scopes, " "), "exp": rt.Expiry.Unix(), "iss": i.url,
		})
		return
	} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrRevoked) && !errors.Is(err, ErrRefreshReused) {
		i.storeFailed(w, err)
		return
	}
	claims, err := i.activeAccess(ctx, tok)
	if err != nil {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	out := map[string]any{"active": true, "token_type": "Bearer"}
	for _, k := range []string{"scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "auth_time"} {
		if v, ok := claims[k]; ok {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// logout is OpenID Connect RP-Initiated Logout 1.0. The issuer's session
// ends whatever else the request holds: a bad id_token_hint or an
// unregistered post_logout_redirect_uri only means that the browser sees
// the issuer's own "signed out" page instead of being redirected (§3). A
// post_logout_redirect_uri is followed only when it exactly matches one
// registered for the client named by id_token_hint or client_id. The
// clients that took part in the session are sent back-channel logout
// tokens in the background; the answer never waits for them.
func (i *Issuer) logout(w http.ResponseWriter, r *http.Request) {
	var p url.Values
	switch r.Method {
	case http.MethodGet:
		p = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			i.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-out form could not be read.")
			return
		}
		p = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		i.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Sign out with GET or POST.")
		return
	}
	if _, sid := i.session(r); sid != "" {
		h := hashToken(sid)
		sess, clients, err := i.cfg.Store.EndSession(r.Context(), h)
		switch {
		case errors.Is(err, ErrNotFound): // ended meanwhile, and its clients told
		case err != nil:
			i.storeError(w, err)
			return
		default:
			var notices logoutNotices
			for _, id := range clients {
				notices.add(id, sess.Subject, publicSID(h))
			}
			i.backchannelLogout(notices.list)
		}
	}
	http.SetCookie(w, i.cookie(sessionCookie, "", -1, http.SameSiteLaxMode))

	clientID, why := p.Get("client_id"), ""
	if hint := p.Get("id_token_hint"); hint != "" {
		claims, err := i.verifyOwn(r.Context(), hint, "JWT", false)
		aud := ""
		if err == nil {
			aud = stringOf(claims["aud"])
		}
		switch {
		case err != nil:
			why = "the sign-out request carried an id_token_hint this issuer did not sign"
		case clientID != "" && clientID != aud:
			why = "its client_id does not match its id_token_hint"
		default:
			clientID = aud
		}
	}
	c, _ := i.client(r.Context(), clientID) // a store failure reads as unknown: no redirect
	target := p.Get("post_logout_redirect_uri")
	switch {
	case why != "" || target == "":
	case c == nil:
		why = "the application that asked for it is not registered here"
	case !slices.Contains(c.PostLogoutRedirectURIs, target):
		why = "the address to return to is not registered for " + c.displayName()
	}
	if why != "" || target == "" {
		if why != "" {
			i.log.Info("logout: not redirecting", "reason", why, "client", clientID)
		}
		var next []pages.Link
		if home := c.home(); home != "" {
			next = append(next, pages.Link{Text: "Sign in again", Href: home})
		}
		msg := pages.Message{Title: "Signed out", Text: "You are signed out.", OK: true, Links: next}
		if why != "" {
			msg.Detail = "You were not sent back to the application: " + why + "."
		}
		pages.Write(w, http.StatusOK, msg)
		return
	}
	u, _ := url.Parse(target)
	if st := p.Get("state"); st != "" {
		q := u.Query()
		q.Set("state", st)
		u.RawQuery = q.Encode()
	}
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

// storeError answers a browser request whose state could not be read or
// written.
func (i *Issuer) storeError(w http.ResponseWriter, err error) {
	i.log.Error("issuer store", "err", err)
	w.Header().Set("Retry-After", "5")
	i.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Sign-in is temporarily unavailable. Try again in a moment.")
}
