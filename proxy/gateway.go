// Package proxy is the gateway: it matches a request to a route, has authn
// judge its token, and forwards it with httputil.ReverseProxy, handing the
// upstream the caller's identity as headers. It also runs the listeners:
// the proxy itself and an admin listener with /metrics, /healthz and
// /readyz.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/pages"
	"github.com/portcullis-dev/portcullis/jwks"
)

// Config configures a [Gateway].
type Config struct {
	// Config is the validated configuration file. Required.
	Config *config.Config
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches discovery documents and key sets; nil means a
	// client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for token checks and metrics; nil means time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, whichever comes first; it
	// holds back answers to connections that keep failing authentication.
	// nil means a timer.
	Sleep func(ctx context.Context, d time.Duration)
}

// gateway is the proxy for one configuration. A reload builds a new one and
// swaps it in; requests in flight finish on the one they started with.
type gateway struct {
	cfg   *config.Config
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration)
	// Read from the configuration once, not on the request path.
	failureDelayMax time.Duration // server.auth_failure_delay
	audiences       []string      // every issuer's and route's, for sessions without a route
	routes          *routeTable
	authn           *authn.Authenticator
	remotes         []*jwks.Remote
	protected       headerSet
	fwdNames        []string // the headers every forward-auth answer carries
	ownHosts        []string // hosts of public_url and the issuer URL
	// untrustedOnce logs the first forward-auth request that names an
	// original URL from an address not in trusted_proxies.
	untrustedOnce sync.Once
	trusted       []netip.Prefix
	metrics       *metrics
	realm         string
	builtin       *builtin // nil without an issuer section
	login         *login   // nil without a login section
	keySets       *remoteCache
	cancel        context.CancelFunc // stops what this configuration started

	// A generation's lifetime: requests in flight on it (active), whether a
	// reload has replaced it (retired), and what it alone opened, closed
	// once both hold (see enter, leave and retireAfter).
	active    atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
	closers   []func()
}

// enter counts a request on g; it reports false when g was retired in the
// meantime, and the caller takes the current generation instead.
func (g *gateway) enter() bool {
	g.active.Add(1)
	if g.retired.Load() {
		g.leave()
		return false
	}
	return true
}

// leave ends a request on g, closing g if it is retired and was the last.
func (g *gateway) leave() {
	if g.active.Add(-1) == 0 && g.retired.Load() {
		g.closeAll()
	}
}

// retireAfter marks g replaced: it closes what it opened once its last
// request in flight has ended (at once when there is none). With
// sequentially consistent atomics, a request either sees retired in enter
// and moves on, or is counted before retireAfter looks.
func (g *gateway) retireAfter() {
	g.retired.Store(true)
	if g.active.Load() == 0 {
		g.closeAll()
	}
}

func (g *gateway) closeAll() {
	g.closeOnce.Do(func() {
		if g.cancel != nil {
			g.cancel()
		}
		for _, c := range g.closers {
			c()
		}
	})
}

// route is one configured route, converted for the request path.
type route struct {
	name         string
	host         string
	prefix       string
	upstream     *url.URL
	auth         string
	policy       authn.Policy
	idHeaders    []identityHeader
	forwardToken string // "", "authorization" or a canonical header name
	preserveHost bool
	maxBody      int64
	onUnauth     string
	proxy        *httputil.ReverseProxy
	// Metrics of the hot path, bound once.
	upstreamT prometheus.Observer
}

// reqState travels from ServeHTTP to the ReverseProxy hooks in the request's
// context.
type reqState struct {
	route *route
	id    *authn.Identity
	raw   string // cleaned escaped path to forward
	w     http.ResponseWriter
	start time.Time
	body  *bodyReader // nil without a body
}

// bodyReader remembers why reading the client's body failed, so a
// malformed body (bad chunk sizes) is answered 400, not blamed on the
// upstream.
type bodyReader struct {
	io.ReadCloser
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

type stateKey struct{}

// newGateway builds the proxy for one validated configuration. Key sets come
// from keySets, shared across reloads; prev, the configuration being
// replaced (nil at start), lends its built-in issuer when that section did
// not change. What the new configuration starts runs on ctx; the built-in
// issuer, which may outlive it, on root.
func newGateway(ctx, root context.Context, cfg Config, m *metrics, keySets *remoteCache, prev *gateway) (*gateway, error) {
	c := cfg.Config
	if c == nil {
		return nil, errors.New("proxy: no configuration")
	}
	g := &gateway{cfg: c, log: cfg.Logger, now: cfg.Now, sleep: cfg.Sleep, realm: c.Server.PublicURL, metrics: m, keySets: keySets,
		failureDelayMax: c.Server.AuthFailureDelay.D(), audiences: allAudiences(c)}
	for _, p := range c.Server.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			return nil, err
		}
		g.trusted = append(g.trusted, pfx)
	}
	if err := g.buildBuiltin(root, cfg, prev); err != nil {
		return nil, err
	}
	issuers, err := g.buildIssuers(ctx, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	if len(issuers) > 0 {
		if g.authn, err = authn.New(authnConfig(c, issuers, g.now)); err != nil {
			return nil, err
		}
	}
	if err := g.buildLogin(ctx, cfg.HTTPClient, prev); err != nil {
		return nil, err
	}
	routes := make([]*route, 0, len(c.Routes))
	var idNames []string
	for i := range c.Routes {
		rt, err := g.buildRoute(&c.Routes[i])
		if err != nil {
			return nil, err
		}
		routes = append(routes, rt)
		for name := range c.Routes[i].ForwardHeaders {
			idNames = append(idNames, name)
		}
		if rt.forwardToken != "" && rt.forwardToken != config.ForwardTokenAuthorization {
			idNames = append(idNames, rt.forwardToken)
		}
	}
	g.routes = newRouteTable(routes)
	g.protected = newHeaderSet(alwaysProtected, idNames)
	g.fwdNames = forwardAuthNames(c.Routes)
	for _, raw := range []string{c.Server.PublicURL, issuerURL(c)} {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			g.ownHosts = append(g.ownHosts, requestHost(u.Host))
		}
	}
	return g, nil
}

// issuerURL is the built-in issuer's URL, "" without one.
func issuerURL(c *config.Config) string {
	if c.Issuer == nil {
		return ""
	}
	return c.Issuer.URL
}

// authnConfig is the Authenticator's configuration: the issuers and the
// token cache's bounds.
func authnConfig(c *config.Config, issuers []authn.Issuer, now func() time.Time) authn.Config {
	tc := c.Server.TokenCache
	ac := authn.Config{Issuers: issuers, Now: now, CacheEntries: tc.Entries, CacheBytes: tc.Bytes, CacheMaxAge: tc.MaxAge.D()}
	if tc.Entries == 0 {
		ac.CacheEntries = -1 // off
	}
	return ac
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("proxy: trusted proxy " + s + ": not a CIDR")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("proxy: trusted proxy " + s + ": not an IP address")
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// ServeHTTP authenticates and forwards one request.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// 1. Route on the cleaned path, so "/public/../admin", "//admin" and
	// "/%2e%2e/admin" are judged as the path the upstream will see. The
	// cleaned path is also what is forwarded. If a permissive upstream
	// could read the path as one that routes elsewhere (backslashes,
	// ";params", encoded slashes, letter case), refuse it.
	raw, key, ok := cleanPath(r.URL.EscapedPath())
	if !ok {
		g.plain(w, nil, http.StatusBadRequest, outcomeBadRequest, "malformed path")
		return
	}
	// portcullis' own paths come before any route.
	if g.builtin != nil && g.builtin.owns(key) {
		g.serveIssuer(w, r)
		return
	}
	if g.login != nil && g.login.owns(key) {
		g.serveLogin(w, r, key)
		return
	}
	rt := g.routeFor(w, requestHost(r.Host), raw, key, http.StatusNotFound)
	if rt == nil {
		return
	}

	// 2. Bound the body before anything reads it. A chunked request may have
	// carried a Content-Length too, which net/http drops: RFC 9112 §6.3
	// then requires closing the connection after the response, so bytes
	// after the body can never be read as a second, smuggled request.
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
	var body *bodyReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &bodyReader{ReadCloser: r.Body}
		r.Body = body
	}
	if rt.maxBody > 0 {
		if r.ContentLength > rt.maxBody {
			g.plain(w, rt, http.StatusRequestEntityTooLarge, outcomeBadRequest, "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}

	// 3. Authenticate. A bad token is rejected even where auth is optional:
	// it is never silently downgraded to anonymous.
	var id *authn.Identity
	outcome := outcomePublic
	var now time.Time
	if rt.auth != config.AuthPublic {
		start := time.Now()
		var err error
		id, err = g.authn.Authenticate(r, &rt.policy)
		if id == nil && err == nil && g.login != nil {
			id, err = g.sessionIdentity(w, r, &rt.policy)
		}
		now = time.Now()
		g.metrics.authnLatency.Observe(now.Sub(start).Seconds())
		if id == nil && err == nil && rt.auth == config.AuthRequired {
			err = authn.Missing()
		}
		if err != nil {
			if g.sendToLogin(w, r, rt, err) {
				return
			}
			g.deny(w, r, rt, err)
			return
		}
		outcome = outcomeAllowed
		if id == nil {
			outcome = outcomeAnonymous
		} else {
			authSucceeded(r)
		}
	}

	// 4. Streams outlive the server's write timeout: lift it for upgrades
	// here and for event streams when the response arrives.
	if isUpgrade(r) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	}

	// 5. Forward. Identity headers are set in rewrite, after the
	// ReverseProxy has removed hop-by-hop headers, so a client's
	// "Connection: X-Auth-Request-User" cannot delete them.
	sub := ""
	if id != nil {
		sub = id.Subject
	}
	note(w, rt.name, outcome, sub)
	if now.IsZero() {
		now = time.Now()
	}
	st := &reqState{route: rt, id: id, raw: raw, w: w, start: now, body: body}
	rt.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// routeFor returns the route for host and the cleaned path key (raw its
// escaped form), or answers itself and returns nil: noRoute when no route
// takes the path, 400 when a lenient upstream could read raw as a path
// that routes elsewhere (backslashes, ";params", encoded slashes, letter
// case), as "/x%2F..%2Fadmin" for /admin.
func (g *gateway) routeFor(w http.ResponseWriter, host, raw, key string, noRoute int) *route {
	rt := g.routes.match(host, key)
	if rt == nil {
		g.plain(w, nil, noRoute, outcomeNoRoute, strings.ToLower(http.StatusText(noRoute)))
		return nil
	}
	if needsSuspicionCheck(raw) && g.routes.match(host, suspiciousKey(raw)) != rt {
		g.plain(w, rt, http.StatusBadRequest, outcomeBadRequest, "ambiguous path")
		return nil
	}
	return rt
}

// sendToLogin redirects a browser without a valid session to log in, where
// the route allows it: on_unauthenticated login always, auto for page
// navigations only. Forbidden (403) and malformed (400) requests are never
// redirected: logging in again would not change the answer.
func (g *gateway) sendToLogin(w http.ResponseWriter, r *http.Request, rt *route, err error) bool {
	var ae *authn.Error
	var rejected errSessionRejected
	if g.login == nil || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || errors.As(err, &rejected) {
		return false
	}
	switch rt.onUnauth {
	case "login":
	case "auto":
		if !isNavigation(r) {
			return false
		}
	default:
		return false
	}
	note(w, rt.name, outcomeRedirect, "")
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, g.login.client.LoginURL(r), http.StatusFound)
	return true
}

// deny answers a request whose authentication failed.
func (g *gateway) deny(w http.ResponseWriter, r *http.Request, rt *route, err error) {
	var ae *authn.Error
	if !errors.As(err, &ae) {
		g.log.Warn("authentication unavailable", "route", rt.name, "err", err)
		g.metrics.authFailures.WithLabelValues(rt.name, authn.ReasonKeysUnavailable).Inc()
		w.Header().Set("Retry-After", "5")
		g.plain(w, rt, http.StatusServiceUnavailable, outcomeUnavailable, "authentication temporarily unavailable")
		return
	}
	g.countDenied(w, rt.name, ae)
	if ae.Reason != authn.ReasonMissing {
		if g.log.Enabled(r.Context(), slog.LevelInfo) {
			g.log.Info("request denied", "route", rt.name, "reason", ae.Reason,
				"detail", ae.Description, "path", r.URL.Path, "remote", r.RemoteAddr)
		}
		if ae.Status == http.StatusUnauthorized {
			g.slowDown(r)
		}
	}
	g.writeDenial(w, r, rt, ae)
}

// writeDenial answers a refused request r, or for forward-auth the
// original request it judges: a browser navigation that is signed in but
// lacks a scope or claim gets a page saying which (with login configured),
// everything else the RFC 6750 answer.
func (g *gateway) writeDenial(w http.ResponseWriter, r *http.Request, rt *route, ae *authn.Error) {
	if ae.Status == http.StatusForbidden && g.login != nil && rt != nil && isNavigation(r) {
		g.forbiddenPage(w, rt, ae)
		return
	}
	authn.WriteError(w, g.realm, ae)
}

// forbiddenPage answers a browser navigation whose sign-in lacks a scope
// or claim the route requires: a page saying which, with a way to sign in
// as someone else. The status and the RFC 6750 challenge are the same as
// an API client gets.
func (g *gateway) forbiddenPage(w http.ResponseWriter, rt *route, ae *authn.Error) {
	need := "a permission your sign-in does not have"
	switch ae.Reason {
	case authn.ReasonScope:
		need = "the scope " + ae.Scope + ", which your sign-in was not granted"
		if strings.Contains(ae.Scope, " ") {
			need = "the scopes " + ae.Scope + ", which your sign-in was not all granted"
		}
	case authn.ReasonClaim:
		name := strings.TrimSuffix(strings.TrimPrefix(ae.Description, "claim "), " does not match")
		if want := rt.policy.Claims[name]; len(want) > 0 {
			need = "your account's " + name + " to be " + strings.Join(want, " or ")
		}
	}
	w.Header().Set("WWW-Authenticate", ae.Challenge(g.realm))
	pages.Write(w, http.StatusForbidden, pages.Message{
		Title:  "Access denied",
		Text:   "You are signed in, but this page needs " + need + ".",
		Detail: "Ask for access, or sign in with another account.",
		Links:  []pages.Link{{Text: "Sign out", Href: g.login.prefix + "/sign_out"}},
	})
}

// countDenied counts the reason a request was refused under route name and
// notes its outcome and reason for the request's metrics and log line.
func (g *gateway) countDenied(w http.ResponseWriter, name string, ae *authn.Error) {
	outcome := outcomeUnauth
	switch ae.Status {
	case http.StatusForbidden:
		outcome = outcomeForbidden
	case http.StatusBadRequest:
		outcome = outcomeBadRequest
	}
	g.metrics.authFailures.WithLabelValues(name, ae.Reason).Inc()
	note(w, name, outcome, "")
	noteReason(w, ae.Reason)
}

// plain answers with a short text body and notes the outcome.
func (g *gateway) plain(w http.ResponseWriter, rt *route, status int, outcome, msg string) {
	name := ""
	if rt != nil {
		name = rt.name
	}
	note(w, name, outcome, "")
	g.plainStatus(w, status, msg)
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// Ready reports whether every issuer's keys have been loaded and the
// built-in issuer's store answers.
func (g *gateway) Ready() bool { return len(g.notReady(context.Background())) == 0 }

// notReady lists what is not ready yet.
func (g *gateway) notReady(ctx context.Context) []string {
	var out []string
	for _, r := range g.remotes {
		if !r.Ready() {
			out = append(out, "keys of "+r.Issuer())
		}
	}
	if g.builtin != nil {
		if err := g.builtin.store.Ping(ctx); err != nil {
			out = append(out, "issuer store")
		}
	}
	if g.login != nil && g.login.sessions != nil {
		if err := g.login.sessions.Ping(ctx); err != nil {
			out = append(out, "session store")
		}
	}
	return out
}

func (g *gateway) keySetInfo() []keySetInfo {
	out := make([]keySetInfo, 0, len(g.remotes))
	now := g.now()
	for _, r := range g.remotes {
		out = append(out, keySetInfo{issuer: r.Issuer(), ready: r.Ready(), updated: r.Updated(), now: now})
	}
	if b := g.builtin; b != nil && !slices.ContainsFunc(out, func(k keySetInfo) bool { return k.issuer == b.iss.URL() }) {
		// The built-in issuer's own keys: ready once open; never fetched,
		// so no age.
		out = append(out, keySetInfo{issuer: b.iss.URL(), ready: b.keys.Ready(), local: true})
	}
	return out
}

// cacheInfo reports the token cache and, with browser login, the session
// cache. A cache that is off reports zeros.
func (g *gateway) cacheInfo() []cacheInfo {
	var out []cacheInfo
	if g.authn != nil {
		out = append(out, cacheInfo{name: "token", stats: g.authn.CacheStats()})
	}
	if g.login != nil {
		out = append(out, cacheInfo{name: "session", stats: g.login.client.SessionCacheStats()})
	}
	return out
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers. A buffered
// channel rather than a sync.Pool: putting a slice into a sync.Pool
// allocates, a channel send does not.
type bufferPool struct{ c chan []byte }

func newBufferPool() *bufferPool { return &bufferPool{c: make(chan []byte, 256)} }

func (b *bufferPool) Get() []byte {
	select {
	case buf := <-b.c:
		return buf
	default:
		return make([]byte, 32<<10)
	}
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != 32<<10 {
		return
	}
	select {
	case b.c <- buf[:cap(buf)]:
	default:
	}
}

var _ http.Handler = (*gateway)(nil)
