package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/authn"
)

// forwardAuth is the forward-auth endpoint for nginx auth_request, Caddy
// forward_auth, Traefik ForwardAuth and Envoy ext_authz (HTTP). It judges
// the original request exactly as the proxy mode would and answers:
//
//   - 200 with every header of the forward-auth set (see fwdNames): the
//     caller's identity where a claim exists, an empty value everywhere
//     else, and Cookie: the client's cookies without portcullis' own. A
//     fronting proxy that copies that one fixed list onto the request
//     overwrites whatever the client sent under those names, whether the
//     user has the claim or not. Authorization comes only when the route's
//     forward_token asks for the token (an empty one would reach the app
//     as an empty header through Traefik and Caddy), or, on a public
//     route, as the client sent it (the proxy mode passes it on too).
//   - 302 to the login start, rd = the original absolute URL, for a browser
//     navigation on a route that logs in; with ?redirect=header (nginx,
//     whose auth_request passes nothing but 2xx, 401 and 403) a 401 that
//     names the login URL in X-Auth-Request-Redirect instead.
//   - 401/403 with the RFC 6750 challenge otherwise: sub-resources, XHR
//     and API clients never start a login.
//
// The original request is read from the headers of server.trusted_proxies
// only (see originalRequest). portcullis' own paths (the gateway prefix,
// the built-in issuer, on the hosts of server.public_url and the issuer
// URL) are always allowed, so a proxy that also sends them through
// forward-auth cannot make the login page loop. An original request that no
// route takes is refused (403), and so is an ambiguous path (400), as in
// the proxy mode.
func (g *generation) forwardAuth(w http.ResponseWriter, r *http.Request, suffix string) {
	w.Header().Set("Cache-Control", "no-store")
	o, ok := g.originalRequest(r, suffix)
	if !ok {
		g.plain(w, nil, http.StatusBadRequest, outcomeBadRequest, "malformed original URL")
		return
	}
	raw, key, ok := cleanPath(o.URL.EscapedPath())
	if !ok {
		g.plain(w, nil, http.StatusBadRequest, outcomeBadRequest, "malformed original path")
		return
	}
	noteOriginal(w, o.Method+" "+o.URL.Path)
	host := requestHost(o.Host)
	if g.ownHost(host) && (g.builtin != nil && g.builtin.owns(key) || g.login != nil && g.login.owns(key)) {
		note(w, "login", outcomePublic, "")
		g.fwdAllow(w, r, nil, nil)
		return
	}
	// As in the proxy mode, but no route is 403, not 404: an auth answer
	// of 404 is an error to nginx, and nothing is allowed that no route
	// allows.
	rt := g.routeFor(w, host, raw, key, http.StatusForbidden)
	if rt == nil {
		return
	}
	// The route's methods and rules apply to the original request. A
	// method the route does not serve is 403 here, with Allow: any answer
	// but 2xx, 401 and 403 is an error to nginx.
	preflight := rt.preflight && isPreflight(o)
	if !preflight && !rt.allowsMethod(o.Method) {
		w.Header().Set("Allow", rt.allow)
		g.plain(w, rt, http.StatusForbidden, outcomeMethod, "method not allowed")
		return
	}
	if preflight || rt.auth == AuthPublic && rt.rules == nil {
		note(w, rt.name, outcomePublic, "")
		g.fwdAllow(w, r, rt, nil)
		return
	}
	policy, name := &rt.policy, rt.name
	var id *authn.Identity
	if rt.auth != AuthPublic {
		var err error
		id, err = g.authn.Authenticate(o, policy)
		if id == nil && err == nil && g.login != nil {
			id, err = g.sessionIdentityFrom(w, o, policy, g.login.client.SessionOneCookie)
		}
		if id == nil && err == nil && rt.auth == AuthRequired {
			err = authn.Missing()
		}
		var ae *authn.Error
		switch {
		case errors.As(err, &ae):
			g.fwdDeny(w, r, o, rt, name, err, ae)
			return
		case err != nil:
			g.log.Warn("authentication unavailable", "route", name, "err", err)
			w.Header().Set("Retry-After", "5")
			g.plain(w, rt, http.StatusServiceUnavailable, outcomeUnavailable, "authentication temporarily unavailable")
			return
		}
	}
	if rt.rules != nil {
		if denied := g.authorize(o, rt, key, id, g.now()); denied != nil {
			if ae, err := ruleDenial(rt, id, denied); ae != nil {
				g.fwdDeny(w, r, o, rt, name, err, ae)
			} else {
				g.plain(w, rt, http.StatusForbidden, outcomeForbidden, denied.Description)
			}
			return
		}
	}
	outcome, sub := outcomeAnonymous, ""
	switch {
	case id != nil:
		outcome, sub = outcomeAllowed, id.Subject
	case rt.auth == AuthPublic:
		outcome = outcomePublic
	}
	note(w, name, outcome, sub)
	g.fwdAllow(w, r, rt, id)
}

// fwdAllow writes a 200 forward-auth answer for rt (nil: no route, or
// portcullis' own path) and id (nil: anonymous).
func (g *generation) fwdAllow(w http.ResponseWriter, r *http.Request, rt *route, id *authn.Identity) {
	h := w.Header()
	blank := make([]string, 1) // one shared [""] for every blank header
	for _, name := range g.fwdNames {
		h[name] = blank
	}
	if rt != nil && rt.auth == AuthPublic {
		// As in the proxy mode, a public route's request keeps its own
		// Authorization: portcullis did not read it.
		if v := r.Header.Get("Authorization"); v != "" {
			h.Set("Authorization", v)
		}
	}
	if id != nil {
		headers := defaultForwardAuthHeaders
		if rt != nil && len(rt.idHeaders) > 0 {
			headers = rt.idHeaders
		}
		setIdentity(h, headers, id)
		if rt != nil {
			switch rt.forwardToken.Mode {
			case TokenBearer:
				h.Set("Authorization", "Bearer "+id.Token)
			case TokenHeader:
				h.Set(rt.forwardToken.Header, id.Token)
			}
		}
	}
	// The client's cookies, less portcullis' own and a token's cookie that
	// is not forwarded.
	var prefix, tokenCookie string
	if g.login != nil {
		prefix = g.login.cookie
	}
	if id != nil && id.Source.Kind == authn.SourceCookie {
		tokenCookie = id.Source.Name
	}
	h["Cookie"] = blank
	if vals := r.Header["Cookie"]; len(vals) > 0 {
		kept := keptCookies(vals, func(n string) bool {
			return prefix != "" && strings.HasPrefix(n, prefix) || tokenCookie != "" && n == tokenCookie
		})
		if kept != "" {
			h["Cookie"] = []string{kept}
		}
	}
	w.WriteHeader(http.StatusOK)
}

// fwdDeny answers a forward-auth request whose authentication failed: a
// navigation that should log in is sent to log in, everything else gets
// the RFC 6750 answer.
func (g *generation) fwdDeny(w http.ResponseWriter, r, o *http.Request, rt *route, name string, err error, ae *authn.Error) {
	if g.fwdLogin(o, rt, err, ae) {
		note(w, name, outcomeRedirect, "")
		u := g.login.client.LoginURLFor(o.URL.String())
		if r.URL.Query().Get("redirect") == "header" {
			w.Header().Set("X-Auth-Request-Redirect", u)
			authn.WriteError(w, g.realm, ae)
			return
		}
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	g.countDenied(w, name, ae)
	if ae.Reason != authn.ReasonMissing {
		g.log.Info("request denied", "route", name, "reason", ae.Reason, "detail", ae.Description,
			"path", o.URL.Path, "remote", r.RemoteAddr, "forward_auth", true)
	}
	g.writeDenial(w, o, rt, ae)
}

// fwdLogin reports whether a failed forward-auth request should be sent to
// log in, by the rules of sendToLogin.
func (g *generation) fwdLogin(o *http.Request, rt *route, err error, ae *authn.Error) bool {
	var rejected errSessionRejected
	if g.login == nil || ae.Status != http.StatusUnauthorized || errors.As(err, &rejected) {
		return false
	}
	onUnauth := UnauthAuto
	if rt != nil {
		onUnauth = rt.onUnauth
	}
	switch onUnauth {
	case UnauthLogin:
		return true
	case UnauthAuto:
		return isNavigation(o)
	}
	return false
}

// originalRequest is the request the fronting proxy asks about, as a
// shallow copy of r with the original method, host and URL. They are read
// only from server.trusted_proxies, from one source per request:
//
//   - nginx: X-Original-URL (absolute) and X-Original-Method; when
//     X-Original-URL is there, X-Forwarded-* are ignored;
//   - Traefik, Caddy: X-Forwarded-Method, -Proto, -Host and -Uri;
//   - Envoy: the original path and query appended to the endpoint (suffix).
//
// A request from anyone else is judged on its own method and host, with the
// path it appended to the endpoint, escaped as sent ("/" without one); the first one that
// names an original URL is logged, as a proxy missing from trusted_proxies.
// It reports false for an original URL that does not parse or carries user
// information or a fragment.
func (g *generation) originalRequest(r *http.Request, suffix string) (*http.Request, bool) {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: "/"}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if suffix != "" {
		// The path as sent, escapes and all.
		p, err := url.PathUnescape(suffix)
		if err != nil {
			return nil, false
		}
		u.Path, u.RawPath, u.RawQuery = p, suffix, r.URL.RawQuery
	}
	method := r.Method
	h := r.Header
	trusted := g.isTrusted(r.RemoteAddr)
	switch {
	case !trusted:
		if h.Get("X-Original-Url") != "" || h.Get("X-Forwarded-Uri") != "" {
			g.untrustedOnce.Do(func() {
				g.log.Warn("forward-auth: the original URL from an address not in server.trusted_proxies is ignored, "+
					"and the request judged on its own URL; list the proxy there", "remote", r.RemoteAddr)
			})
		}
	case h.Get("X-Original-Url") != "":
		// nginx: X-Original-URL and X-Original-Method only. Its auth
		// subrequest carries the client's own headers too, so an
		// X-Forwarded-* beside them is the client's, never nginx's.
		ou, err := url.Parse(h.Get("X-Original-Url"))
		if err != nil || ou.Opaque != "" || ou.User != nil || ou.Fragment != "" {
			return nil, false
		}
		if ou.Scheme != "" {
			u.Scheme = strings.ToLower(ou.Scheme)
		}
		if ou.Host != "" {
			u.Host = ou.Host
		}
		u.Path, u.RawPath, u.RawQuery = ou.Path, ou.RawPath, ou.RawQuery
		if v := h.Get("X-Original-Method"); v != "" && validMethod(v) {
			method = v
		}
	default:
		// Traefik, Caddy: each sets these itself, over the client's.
		if v := h.Get("X-Forwarded-Uri"); v != "" {
			ou, err := url.ParseRequestURI(v)
			if err != nil || strings.Contains(v, "#") {
				return nil, false
			}
			u.Path, u.RawPath, u.RawQuery = ou.Path, ou.RawPath, ou.RawQuery
		}
		if v := h.Get("X-Forwarded-Host"); v != "" {
			u.Host = v
		}
		if v := strings.ToLower(h.Get("X-Forwarded-Proto")); v == "http" || v == "https" {
			u.Scheme = v
		}
		if v := h.Get("X-Forwarded-Method"); v != "" && validMethod(v) {
			method = v
		}
	}
	if u.Path == "" {
		u.Path = "/"
	}
	o := r.WithContext(r.Context())
	o.Method, o.Host, o.URL, o.RequestURI = method, u.Host, u, u.RequestURI()
	return o, true
}

// ownHost reports whether host (lower-case, no port) is one portcullis' own
// endpoints are served on for forward-auth: the host of server.public_url
// or of the built-in issuer's URL. On any other host the fronting proxy's
// routes decide, like for any path.
func (g *generation) ownHost(host string) bool {
	for _, h := range g.ownHosts {
		if h == host {
			return true
		}
	}
	return false
}

// validMethod reports whether m is an RFC 9110 token.
func validMethod(m string) bool {
	if len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTokenChar(m[i]) {
			return false
		}
	}
	return true
}

// defaultForwardAuthHeaders are answered when the matched route names none.
var defaultForwardAuthHeaders = []identityHeader{
	{name: "X-Auth-Request-User", claim: "sub"},
	{name: "X-Auth-Request-Email", claim: "email"},
	{name: "X-Auth-Request-Preferred-Username", claim: "preferred_username"},
	{name: "X-Auth-Request-Groups", claim: "groups"},
}

// forwardAuthFamily are the identity headers every forward-auth answer
// carries, blank unless the route's forward_headers (or, for a route with
// none, defaultForwardAuthHeaders) fills them: the names oauth2-proxy,
// Authelia and Pomerium users' upstreams read.
var forwardAuthFamily = []string{
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username",
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups",
	"X-Forwarded-Preferred-Username", "Remote-User",
}

// forwardAuthNames is the forward-auth set: forwardAuthFamily and every
// header a route names in forward_headers or forward_token, canonical and
// sorted.
func forwardAuthNames(routes []*route) []string {
	out := slices.Clone(forwardAuthFamily)
	for _, r := range routes {
		for _, h := range r.idHeaders {
			out = append(out, h.name)
		}
		if r.forwardToken.Mode == TokenHeader {
			out = append(out, r.forwardToken.Header)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
