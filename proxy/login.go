package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/oidcclient"
)

// login is the browser login of the gateway, when configured.
type login struct {
	client     *oidcclient.Client
	cookies    *oidcclient.CookieCodec
	prefix     string
	cookie     string // the session cookie's effective name; login-state cookies share it as a prefix
	cookieBase string // the configured name, as the codec takes it
	clientID   string
	sessions   interface{ Ping(context.Context) error } // nil: no shared store
}

// owns reports whether a cleaned path is one of the gateway endpoints.
func (l *login) owns(path string) bool {
	return strings.HasPrefix(path, l.prefix+"/")
}

// defaultPrefix is where the gateway endpoints are without a login
// section: forward-auth is served there all the same.
const defaultPrefix = "/oauth2"

// serveForwardAuth answers prefix/auth and prefix/auth/..., and reports
// whether path was one of them.
func (g *generation) serveForwardAuth(w http.ResponseWriter, r *http.Request, prefix, path string) bool {
	rest, ok := strings.CutPrefix(path, prefix)
	switch {
	case !ok:
		return false
	case rest == "/auth":
		g.forwardAuth(w, r, "/")
	case strings.HasPrefix(rest, "/auth/"):
		// Envoy's ext_authz appends the original path to path_prefix. The
		// suffix is taken as sent, so that forwardAuth cleans it and sees
		// its escapes like the proxy mode does.
		suffix := strings.TrimPrefix(rest, "/auth")
		if raw, ok := strings.CutPrefix(r.URL.EscapedPath(), prefix+"/auth/"); ok {
			suffix = "/" + raw
		}
		g.forwardAuth(w, r, suffix)
	default:
		return false
	}
	return true
}

// serveLogin answers the gateway endpoints.
func (g *generation) serveLogin(w http.ResponseWriter, r *http.Request, path string) {
	if g.serveForwardAuth(w, r, g.login.prefix, path) {
		return
	}
	rest := strings.TrimPrefix(path, g.login.prefix)
	switch {
	case rest == "/userinfo":
		g.sessionUserinfo(w, r)
	default:
		note(w, "login", outcomeLogin, "")
		g.login.client.ServeHTTP(w, r)
	}
}

// sessionIdentity verifies the identity of the request's session, like a
// bearer token; a refreshed session's cookie is written to w. A session
// whose token no longer verifies (revoked, say) is cleared, so the browser
// logs in again; one that verifies but does not satisfy the route keeps
// its 401 or 403 (logging in again would not change it, and redirecting
// would loop).
func (g *generation) sessionIdentity(w http.ResponseWriter, r *http.Request, p *authn.Policy) (*authn.Identity, error) {
	return g.sessionIdentityFrom(w, r, p, g.login.client.Session)
}

// sessionIdentityFrom is sessionIdentity with the session read by session,
// such as [oidcclient.Client.SessionOneCookie] for forward-auth answers.
func (g *generation) sessionIdentityFrom(w http.ResponseWriter, r *http.Request, p *authn.Policy,
	session func(http.ResponseWriter, *http.Request) (*oidcclient.Session, error)) (*authn.Identity, error) {
	sess, err := session(w, r)
	if err != nil || sess == nil {
		return nil, err
	}
	id, err := g.verifySession(r, sess, p)
	if err == nil {
		return id, nil
	}
	var ae *authn.Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Reason != authn.ReasonAudience {
		g.login.cookies.Clear(w, r, g.login.cookieBase)
		return nil, err
	}
	return nil, errSessionRejected{err}
}

// errSessionRejected is a valid session that the route does not accept.
type errSessionRejected struct{ error }

func (e errSessionRejected) Unwrap() error { return e.error }

// verifySession checks the session's token against the route's policy, on
// every request: verification (cached by token in authn) and authorization
// always run; only the merge of the id_token's user claims into an access
// token's is remembered with the session, for as long as authn hands out
// the same claims.
func (g *generation) verifySession(r *http.Request, sess *oidcclient.Session, p *authn.Policy) (*authn.Identity, error) {
	tok, pol := sess.AccessToken, p
	if sess.FromIDToken {
		// The provider's access token is opaque or meant for another
		// audience: the verified id_token speaks for the user.
		tok = sess.IDToken
		cp := *p
		cp.Audiences = []string{g.login.clientID}
		pol = &cp
	}
	id, err := g.authn.Verify(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	if sess.FromIDToken {
		id.Scopes = sess.Scopes
	} else if id.Subject == sess.Subject {
		// id is Verify's own copy: setting its claims touches no one else's.
		id.Claims = sess.MergeIDClaims(id.Claims, func(base, extra map[string]any) map[string]any {
			return (&authn.Identity{Claims: base}).WithClaims(extra).Claims
		})
	}
	id.Source = authn.Source{Kind: authn.SourceSession}
	if err := g.authn.Authorize(id, pol); err != nil {
		return nil, err
	}
	return id, nil
}

// isNavigation reports whether a request is a browser loading a page, the
// only kind that is sent to log in (RFC-less, but what users expect: XHR and
// API clients get 401).
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// sessionUserinfo answers the caller's identity as JSON.
func (g *generation) sessionUserinfo(w http.ResponseWriter, r *http.Request) {
	id, err := g.authn.Authenticate(r, &authn.Policy{})
	if id == nil && err == nil {
		id, err = g.sessionIdentity(w, r, &authn.Policy{Audiences: g.audiences})
	}
	var ae *authn.Error
	switch {
	case errors.As(err, &ae):
		authn.WriteError(w, g.realm, ae)
		return
	case err != nil:
		g.plain(w, nil, http.StatusServiceUnavailable, outcomeUnavailable, "authentication temporarily unavailable")
		return
	case id == nil:
		authn.WriteError(w, g.realm, authn.Missing())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	out := map[string]any{"sub": id.Subject, "iss": id.Issuer, "exp": id.Expiry.Unix(), "scopes": id.Scopes}
	for _, k := range []string{"email", "name", "preferred_username", "groups"} {
		if v, ok := id.Claims[k]; ok {
			out[k] = v
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}
