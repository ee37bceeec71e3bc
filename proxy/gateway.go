// Package proxy is the gateway: it matches a request to a route, has authn
// judge its token, and forwards it with httputil.ReverseProxy, handing the
// upstream the caller's identity as headers. It also answers forward-auth
// requests and runs the listeners: the proxy itself and an admin listener
// with /metrics, /healthz and /readyz. What it serves (routes, the
// authenticator, the built-in issuer, the login) arrives built, as a
// [Spec]; package serve makes one from the configuration.
package proxy

import (
	"context"
	"crypto/sha256"
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
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/pages"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/rules"
)

// generation is the proxy for one Spec. A reload builds a new one and
// swaps it in; requests in flight finish on the one they started with.
type generation struct {
	log   *slog.Logger
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration)
	// Read from the configuration once, not on the request path.
	failureDelayMax time.Duration // server.auth_failure_delay
	readTimeout     time.Duration // the listener's bounds on reading a request
	writeTimeout    time.Duration // and on writing its response
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
	builtin       *builtin // nil without a built-in issuer
	login         *login   // nil without browser login
	adminToken    []byte   // SHA-256 of admin.token; nil: the revoke endpoint is off
	tracing       *Tracing // nil: not traced

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
func (g *generation) enter() bool {
	g.active.Add(1)
	if g.retired.Load() {
		g.leave()
		return false
	}
	return true
}

// leave ends a request on g, closing g if it is retired and was the last.
func (g *generation) leave() {
	if g.active.Add(-1) == 0 && g.retired.Load() {
		g.closeAll()
	}
}

// retireAfter marks g replaced: it closes what it opened once its last
// request in flight has ended (at once when there is none). With
// sequentially consistent atomics, a request either sees retired in enter
// and moves on, or is counted before retireAfter looks.
func (g *generation) retireAfter() {
	g.retired.Store(true)
	if g.active.Load() == 0 {
		g.closeAll()
	}
}

func (g *generation) closeAll() {
	g.closeOnce.Do(func() {
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
	folded       string // prefix in lower case, as a lenient upstream reads it
	upstream     *url.URL
	auth         Auth
	policy       authn.Policy
	idHeaders    []identityHeader
	forwardToken ForwardToken
	preserveHost bool
	maxBody      int64
	onUnauth     Unauthenticated
	methods      []string // nil: every method
	allow        string   // the Allow header of a 405: methods joined
	preflight    bool     // CORS preflights pass without a token
	rules        *rules.Set
	proxy        *httputil.ReverseProxy
	meta         *resourceMeta // RFC 9728 metadata; nil for none
	// Metrics of the hot path, bound once.
	upstreamT prometheus.Observer
	// ruleDecisions counts the decisions of each rule, by index, and of
	// the default (no rule matched) last.
	ruleDecisions []prometheus.Counter
}

// reqState travels from ServeHTTP to the ReverseProxy hooks in the request's
// context.
type reqState struct {
	route *route
	id    *authn.Identity
	raw   string // cleaned escaped path to forward
	w     http.ResponseWriter
	// deadline is set when the request carries its own deadline
	// (grpc-timeout), which bounds the round trip; cancel releases it.
	deadline bool
	cancel   context.CancelFunc
	start    time.Time
	body     *bodyReader // nil without a body
	span     trace.Span  // the upstream round trip's, when traced
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

// newGeneration builds the proxy for one Spec.
func newGeneration(s Spec, log *slog.Logger, now func() time.Time, sleep func(context.Context, time.Duration), m *metrics) (*generation, error) {
	g := &generation{log: log, now: now, sleep: sleep, realm: s.PublicURL, metrics: m,
		failureDelayMax: s.AuthFailureDelay, audiences: s.Audiences, trusted: s.TrustedProxies,
		authn: s.Authn, remotes: s.KeySets}
	if s.AdminToken != "" {
		sum := sha256.Sum256([]byte(s.AdminToken))
		g.adminToken = sum[:]
	}
	var ownURLs = []string{s.PublicURL}
	if b := s.Issuer; b != nil {
		g.builtin = &builtin{iss: b.Issuer, keys: b.Keys, store: b.Store, base: b.Issuer.PathPrefix(), roots: b.Issuer.RootPaths()}
		ownURLs = append(ownURLs, b.Issuer.URL())
	}
	if l := s.Login; l != nil {
		if g.authn == nil {
			return nil, errors.New("proxy: login needs the provider listed under issuers, so sessions can be verified")
		}
		g.login = &login{client: l.Client, cookies: l.Cookies, prefix: l.Prefix, cookie: l.Cookies.Name(l.CookieName),
			cookieBase: l.CookieName, clientID: l.ClientID, sessions: l.Sessions}
	}
	routes := make([]*route, 0, len(s.Routes))
	var idNames []string
	for i := range s.Routes {
		rt, err := g.buildRoute(&s.Routes[i])
		if err != nil {
			return nil, err
		}
		routes = append(routes, rt)
		for _, h := range rt.idHeaders {
			idNames = append(idNames, h.name)
		}
		if rt.forwardToken.Mode == TokenHeader {
			idNames = append(idNames, rt.forwardToken.Header)
		}
	}
	g.routes = newRouteTable(routes)
	g.protected = newHeaderSet(alwaysProtected, idNames)
	g.fwdNames = forwardAuthNames(routes)
	for _, raw := range ownURLs {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			g.ownHosts = append(g.ownHosts, requestHost(u.Host))
		}
	}
	return g, nil
}

// ServeHTTP authenticates and forwards one request.
func (g *generation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if st, out := g.handle(w, r); st != nil {
		st.forward(w, out)
	}
}

// handle does everything for one request but forwarding it: it answers
// itself, and returns nil, or returns the request's state and the request
// to forward. Forwarding is the caller's, from a shallower frame: an
// HTTP/2 stream's handler runs on a goroutine of its own, whose stack is
// copied each time it grows, and the upstream round trip is the deepest
// part of a request.
func (g *generation) handle(w http.ResponseWriter, r *http.Request) (*reqState, *http.Request) {
	// 1. Route on the cleaned path, so "/public/../admin", "//admin" and
	// "/%2e%2e/admin" are judged as the path the upstream will see. The
	// cleaned path is also what is forwarded. If a permissive upstream
	// could read the path as one that routes elsewhere (backslashes,
	// ";params", encoded slashes, letter case), refuse it.
	raw, key, ok := cleanPath(r.URL.EscapedPath())
	if !ok {
		g.plain(w, nil, http.StatusBadRequest, outcomeBadRequest, "malformed path")
		return nil, nil
	}
	// portcullis' own paths come before any route. They answer in HTTP,
	// whatever the request's content type: a forward-auth answer must be
	// a 401 or 403 to the proxy that asks, never a gRPC status in a 200.
	if g.builtin != nil && g.builtin.owns(key) {
		notGRPC(w)
		g.serveIssuer(w, r)
		return nil, nil
	}
	if g.login != nil && g.login.owns(key) {
		notGRPC(w)
		g.serveLogin(w, r, key)
		return nil, nil
	}
	if g.login == nil && (key == defaultPrefix+"/auth" || strings.HasPrefix(key, defaultPrefix+"/auth/")) {
		// Forward-auth for API-only gateways: tokens, no sessions.
		notGRPC(w)
		g.serveForwardAuth(w, r, defaultPrefix, key)
		return nil, nil
	}
	if strings.HasPrefix(key, wellKnownResource) && g.serveResourceMetadata(w, r, requestHost(r.Host), key) {
		return nil, nil
	}
	rt := g.routeFor(w, requestHost(r.Host), raw, key, http.StatusNotFound)
	if rt == nil {
		return nil, nil
	}
	// The route's methods come before anything else is read, and a CORS
	// preflight it passes goes on without a token: browsers send none.
	preflight := rt.preflight && isPreflight(r)
	if !preflight && !rt.allowsMethod(r.Method) {
		g.methodNotAllowed(w, rt)
		return nil, nil
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
			return nil, nil
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}

	// 3. Authenticate. A bad token is rejected even where auth is optional:
	// it is never silently downgraded to anonymous.
	var id *authn.Identity
	outcome := outcomePublic
	var now time.Time
	if rt.auth != AuthPublic && !preflight {
		start := g.now()
		var err error
		id, err = g.authn.Authenticate(r, &rt.policy)
		if id == nil && err == nil && g.login != nil {
			id, err = g.sessionIdentity(w, r, &rt.policy)
		}
		now = g.now()
		g.metrics.authnLatency.Observe(now.Sub(start).Seconds())
		if id == nil && err == nil && rt.auth == AuthRequired {
			err = authn.Missing()
		}
		if err != nil {
			if g.sendToLogin(w, r, rt, err) {
				return nil, nil
			}
			g.deny(w, r, rt, err)
			return nil, nil
		}
		outcome = outcomeAllowed
		if id == nil {
			outcome = outcomeAnonymous
		} else {
			authSucceeded(r)
		}
	}
	// The route's rules, on every request: a cached token's claims too.
	if rt.rules != nil && !preflight {
		if now.IsZero() {
			now = g.now()
		}
		if ae := g.authorize(r, rt, key, id, now); ae != nil {
			g.refuse(w, r, rt, id, ae)
			return nil, nil
		}
	}

	// 4. Streams outlive the server's timeouts: lift the write timeout for
	// upgrades and gRPC calls (whose streams may also send for longer than
	// the read timeout) here, and for event streams when the response
	// arrives. Each change of a deadline is a message to an HTTP/2
	// connection's goroutine, so only a timeout that could cut the call is
	// lifted: none is when the listener sets none, or when the call's own
	// grpc-timeout ends it at least a second earlier.
	//
	// A gRPC call's grpc-timeout bounds it here too, so an upstream that
	// never answers is cut at the client's deadline, with
	// DEADLINE_EXCEEDED. The header travels on, so the upstream sees the
	// deadline as well.
	grpc := grpcCall(w)
	var (
		callTimeout time.Duration
		deadline    bool
	)
	if grpc {
		callTimeout, deadline = grpcTimeout(r.Header.Get("Grpc-Timeout"))
	}
	if isUpgrade(r) || grpc {
		cuts := func(timeout time.Duration) bool {
			return timeout > 0 && (!deadline || callTimeout+time.Second > timeout)
		}
		rc := http.NewResponseController(w)
		if cuts(g.writeTimeout) {
			_ = rc.SetWriteDeadline(time.Time{})
		}
		if grpc && cuts(g.readTimeout) {
			_ = rc.SetReadDeadline(time.Time{})
		}
	}
	ctx := r.Context()
	var cancel context.CancelFunc
	if deadline {
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
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
		now = g.now()
	}
	st := &reqState{route: rt, id: id, raw: raw, w: w, start: now, body: body, deadline: deadline, cancel: cancel}
	return st, r.WithContext(context.WithValue(ctx, stateKey{}, st))
}

// forward hands the request handle admitted to its route's upstream.
func (st *reqState) forward(w http.ResponseWriter, out *http.Request) {
	st.route.proxy.ServeHTTP(w, out)
	if st.cancel != nil {
		st.cancel()
	}
	if st.span != nil { // neither a response nor an error came back
		st.span.End()
	}
}

// routeFor returns the route for host and the cleaned path key (raw its
// escaped form), or answers itself and returns nil: noRoute when no route
// takes the path, 400 when a lenient upstream could read raw as a path
// that routes elsewhere (backslashes, ";params", encoded slashes, letter
// case), as "/x%2F..%2Fadmin" for /admin.
func (g *generation) routeFor(w http.ResponseWriter, host, raw, key string, noRoute int) *route {
	rt := g.routes.match(host, key)
	if rt == nil {
		g.plain(w, nil, noRoute, outcomeNoRoute, strings.ToLower(http.StatusText(noRoute)))
		return nil
	}
	if g.routes.ambiguous(host, raw, key, rt) {
		g.plain(w, rt, http.StatusBadRequest, outcomeBadRequest, "ambiguous path")
		return nil
	}
	return rt
}

// sendToLogin redirects a browser without a valid session to log in, where
// the route allows it: on_unauthenticated login always, auto for page
// navigations only. Forbidden (403) and malformed (400) requests are never
// redirected: logging in again would not change the answer.
func (g *generation) sendToLogin(w http.ResponseWriter, r *http.Request, rt *route, err error) bool {
	var ae *authn.Error
	var rejected errSessionRejected
	if g.login == nil || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || errors.As(err, &rejected) || grpcCall(w) {
		return false
	}
	switch rt.onUnauth {
	case UnauthLogin:
	case UnauthAuto:
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
func (g *generation) deny(w http.ResponseWriter, r *http.Request, rt *route, err error) {
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
func (g *generation) writeDenial(w http.ResponseWriter, r *http.Request, rt *route, ae *authn.Error) {
	if grpcCall(w) {
		// UNAUTHENTICATED or PERMISSION_DENIED, with the same RFC 6750
		// challenge an HTTP client gets.
		code := grpcUnauthenticated
		if ae.Status == http.StatusForbidden {
			code = grpcPermissionDenied
		}
		msg := ae.Description
		if ae.Code != "" {
			msg = ae.Code + ": " + ae.Description
		}
		ae.SetChallenges(w.Header(), g.realm, rt.metadataURL())
		writeGRPCStatus(w, code, msg)
		return
	}
	if ae.Status == http.StatusForbidden && g.login != nil && rt != nil && isNavigation(r) {
		g.forbiddenPage(w, rt, ae)
		return
	}
	authn.WriteErrorFor(w, g.realm, rt.metadataURL(), ae)
}

// forbiddenPage answers a browser navigation whose sign-in lacks a scope
// or claim the route requires: a page saying which, with a way to sign in
// as someone else. The status and the RFC 6750 challenge are the same as
// an API client gets.
func (g *generation) forbiddenPage(w http.ResponseWriter, rt *route, ae *authn.Error) {
	need := "a permission your sign-in does not have"
	switch ae.Reason {
	case authn.ReasonScope:
		need = "the scope " + ae.Scope + ", which your sign-in was not granted"
		if strings.Contains(ae.Scope, " ") {
			need = "the scopes " + ae.Scope + ", which your sign-in was not all granted"
		}
	case authn.ReasonRule:
		need = "a permission your sign-in does not have (" + ae.Description + ")"
	case authn.ReasonClaim:
		name := strings.TrimSuffix(strings.TrimPrefix(ae.Description, "claim "), " does not match")
		if want := rt.policy.Claims[name]; len(want) > 0 {
			need = "your account's " + name + " to be " + strings.Join(want, " or ")
		}
	}
	w.Header().Set("WWW-Authenticate", ae.ChallengeFor(g.realm, rt.metadataURL()))
	pages.Write(w, http.StatusForbidden, pages.Message{
		Title:  "Access denied",
		Text:   "You are signed in, but this page needs " + need + ".",
		Detail: "Ask for access, or sign in with another account.",
		Links:  []pages.Link{{Text: "Sign out", Href: g.login.prefix + "/sign_out"}},
	})
}

// countDenied counts the reason a request was refused under route name and
// notes its outcome and reason for the request's metrics and log line.
func (g *generation) countDenied(w http.ResponseWriter, name string, ae *authn.Error) {
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
func (g *generation) plain(w http.ResponseWriter, rt *route, status int, outcome, msg string) {
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
func (g *generation) Ready() bool { return len(g.notReady(context.Background())) == 0 }

// notReady lists what is not ready yet.
func (g *generation) notReady(ctx context.Context) []string {
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

func (g *generation) keySetInfo() []keySetInfo {
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
func (g *generation) cacheInfo() []cacheInfo {
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

var _ http.Handler = (*generation)(nil)
