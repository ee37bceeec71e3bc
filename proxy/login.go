package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/redislog"
	"github.com/portcullis-dev/portcullis/jwks"
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
	sessions   *oidcclient.RedisStore  // nil: sessions live in the cookie or in memory
	memory     *oidcclient.MemoryStore // session_store: memory; kept across reloads
}

// sessionsStore is the Redis session store of l, nil without one (or
// without l).
func (l *login) sessionsStore() *oidcclient.RedisStore {
	if l == nil {
		return nil
	}
	return l.sessions
}

// buildLogin wires the login section: cookie codec, provider keys (the
// built-in issuer's key ring, a configured issuer's key set, or a key set of
// its own), and, for the built-in issuer, an in-process transport so the
// code exchange never leaves the process. Sessions in memory are taken over
// from prev, the configuration being replaced, so a reload signs no one out.
func (g *gateway) buildLogin(ctx context.Context, httpClient *http.Client, prev *gateway) error {
	lc := g.cfg.Login
	if lc == nil {
		return nil
	}
	var (
		sessions *oidcclient.RedisStore
		memory   *oidcclient.MemoryStore
	)
	switch store := lc.SessionStore; store {
	case "", config.SessionStoreCookie:
	case config.SessionStoreMemory:
		if prev != nil && prev.login != nil && prev.login.memory != nil {
			memory = prev.login.memory
		} else {
			memory = &oidcclient.MemoryStore{Now: g.now}
		}
	default:
		if store == config.SessionStoreRedis && g.cfg.Issuer != nil {
			store = g.cfg.Issuer.Store
		}
		var before *login
		if prev != nil {
			before = prev.login
		}
		if s := before.sessionsStore(); s != nil && s.URL() == store {
			sessions = s // the same store: keep its connections
			break
		}
		var err error
		if sessions, err = oidcclient.NewRedisStore(store); err != nil {
			return fmt.Errorf("proxy: login.session_store: %w", err)
		}
		redislog.Install()
	}
	if g.authn == nil {
		return errors.New("proxy: login needs the provider listed under issuers, so sessions can be verified")
	}
	secrets := make([][]byte, 0, len(lc.Cookie.Secret))
	for _, s := range lc.Cookie.Secret {
		secrets = append(secrets, []byte(s))
	}
	codec, err := oidcclient.NewCookieCodec(oidcclient.CookieConfig{
		Secrets: secrets, Secure: lc.Cookie.Secure, Domain: lc.Cookie.Domain, Now: g.now,
	})
	if err != nil {
		return err
	}
	pub, err := url.Parse(g.cfg.Server.PublicURL)
	if err != nil {
		return fmt.Errorf("proxy: public_url: %w", err)
	}
	oc := oidcclient.Config{
		Issuer: lc.Issuer, ClientID: lc.ClientID, ClientSecret: lc.ClientSecret, Scopes: lc.Scopes,
		RedirectURL: lc.RedirectURL, PostLogoutRedirectURL: lc.PostLogoutRedirectURL, Prefix: lc.Prefix,
		PublicURL: pub, AllowedRedirectHosts: lc.AllowedRedirectHosts, Cookies: codec, CookieName: lc.Cookie.Name,
		SessionMaxAge: lc.Cookie.MaxAge.D(), RefreshBefore: lc.RefreshBefore.D(), HTTPClient: httpClient,
		SessionCacheEntries: sessionCacheEntries(lc.SessionCache), SessionCacheBytes: lc.SessionCache.Bytes,
		Now: g.now, Logger: g.log, LoginFailed: g.metrics.loginFailed,
		ClientAddr: func(r *http.Request) string { return clientAddr(g.trusted, r) },
		// An access token is usable when it verifies and is meant for
		// an audience portcullis serves; otherwise (opaque, or for another
		// API) the id_token speaks for the user.
		AccessTokenUsable: func(ctx context.Context, tok string) bool {
			id, err := g.authn.Verify(ctx, tok)
			return err == nil && g.authn.Authorize(id, &authn.Policy{Audiences: g.audiences}) == nil
		},
	}
	switch b := g.builtin; {
	case b != nil && g.cfg.LoginAtBuiltinIssuer():
		oc.Keys = b.keys
		u := b.iss.URL()
		oc.Endpoints = &oidcclient.Endpoints{Authorization: u + "/authorize", Token: u + "/token", EndSession: u + "/logout"}
		oc.HTTPClient = &http.Client{Transport: handlerTransport{b.iss}, Timeout: 15 * time.Second}
		for _, cl := range g.cfg.Issuer.Clients {
			if cl.ID == lc.ClientID && cl.Name != "" {
				oc.AppName = cl.Name // as the issuer's pages call it
			}
		}
	default:
		for _, r := range g.remotes {
			if r.Issuer() == lc.Issuer {
				oc.Keys = r
			}
		}
		if oc.Keys == nil {
			r := g.keySets.get(jwks.RemoteConfig{Issuer: lc.Issuer, Client: httpClient, Now: g.now, Logger: g.log})
			g.remotes = append(g.remotes, r)
			oc.Keys = r
		}
	}
	switch {
	case sessions != nil:
		oc.Sessions = sessions
	case memory != nil:
		oc.Sessions = memory
	}
	client, err := oidcclient.New(ctx, oc)
	if err != nil {
		return err
	}
	g.login = &login{client: client, cookies: codec, prefix: lc.Prefix, cookie: codec.Name(lc.Cookie.Name),
		cookieBase: lc.Cookie.Name, clientID: lc.ClientID, sessions: sessions, memory: memory}
	return nil
}

// owns reports whether a cleaned path is one of the gateway endpoints.
func (l *login) owns(path string) bool {
	return strings.HasPrefix(path, l.prefix+"/")
}

// serveLogin answers the gateway endpoints.
func (g *gateway) serveLogin(w http.ResponseWriter, r *http.Request, path string) {
	rest := strings.TrimPrefix(path, g.login.prefix)
	switch {
	case rest == "/auth":
		g.forwardAuth(w, r, "/")
	case strings.HasPrefix(rest, "/auth/"):
		// Envoy's ext_authz appends the original path to path_prefix. The
		// suffix is taken as sent, so that forwardAuth cleans it and sees
		// its escapes like the proxy mode does.
		suffix := strings.TrimPrefix(rest, "/auth")
		if raw, ok := strings.CutPrefix(r.URL.EscapedPath(), g.login.prefix+"/auth/"); ok {
			suffix = "/" + raw
		}
		g.forwardAuth(w, r, suffix)
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
func (g *gateway) sessionIdentity(w http.ResponseWriter, r *http.Request, p *authn.Policy) (*authn.Identity, error) {
	return g.sessionIdentityFrom(w, r, p, g.login.client.Session)
}

// sessionIdentityFrom is sessionIdentity with the session read by session,
// such as [oidcclient.Client.SessionOneCookie] for forward-auth answers.
func (g *gateway) sessionIdentityFrom(w http.ResponseWriter, r *http.Request, p *authn.Policy,
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
func (g *gateway) verifySession(r *http.Request, sess *oidcclient.Session, p *authn.Policy) (*authn.Identity, error) {
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
func (g *gateway) sessionUserinfo(w http.ResponseWriter, r *http.Request) {
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

// allAudiences is every audience any issuer or route accepts, for endpoints
// that are not a route.
func allAudiences(c *config.Config) []string {
	var out []string
	for _, i := range c.Issuers {
		out = append(out, i.Audiences...)
	}
	for _, r := range c.Routes {
		out = append(out, r.Audiences...)
	}
	return out
}

// handlerTransport is an http.RoundTripper that serves requests with a
// handler in this process: the gateway talks to its own issuer without a
// network hop, whatever its public URL resolves to.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &bufferedResponse{header: http.Header{}}
	in := req.Clone(req.Context())
	in.RemoteAddr = "127.0.0.1:0"
	in.RequestURI = req.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// sessionCacheEntries is login.session_cache.entries as oidcclient takes
// it, where 0 means its default and a negative number turns the cache off.
func sessionCacheEntries(sc config.SessionCache) int {
	if sc.Entries == 0 {
		return -1
	}
	return sc.Entries
}
