package proxy

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/config"
)

// forwardAuth is the forward-auth endpoint for nginx auth_request, Traefik
// ForwardAuth and Envoy ext_authz (HTTP): 200 with the identity headers for
// a valid bearer token or session, 401 otherwise. The original request is
// read from X-Forwarded-Uri / X-Original-URL and X-Forwarded-Host, only
// from trusted proxies, and chooses the route whose policy applies; without
// them the policy of the route for path (the path Envoy appends to the
// endpoint, else "/") on the request's host applies. A
// refreshed session comes back as Set-Cookie for the proxy to pass on. It
// never redirects: the fronting proxy turns 401 into a login redirect, so
// the login page itself is never behind forward-auth and cannot loop.
func (g *gateway) forwardAuth(w http.ResponseWriter, r *http.Request, path string) {
	host := requestHost(r.Host)
	if g.isTrusted(r.RemoteAddr) {
		orig := r.Header.Get("X-Forwarded-Uri")
		if orig == "" {
			orig = r.Header.Get("X-Original-Url")
		}
		if u, err := url.Parse(orig); err == nil && orig != "" {
			if u.Host != "" {
				host = requestHost(u.Host)
			}
			if u.Path != "" {
				path = u.EscapedPath()
			}
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = requestHost(h)
		}
	}
	_, key, ok := cleanPath(path)
	if !ok {
		g.plain(w, nil, http.StatusBadRequest, outcomeBadRequest, "malformed original path")
		return
	}
	rt := g.routes.match(host, key)
	policy := &authn.Policy{Audiences: g.allAudiences()}
	var headers []identityHeader
	name := "forward_auth"
	if rt != nil {
		if rt.auth == config.AuthPublic {
			g.metrics.requests.WithLabelValues(rt.name, outcomePublic).Inc()
			w.WriteHeader(http.StatusOK)
			return
		}
		policy, headers, name = &rt.policy, rt.idHeaders, rt.name
	}
	id, err := g.authn.Authenticate(r, policy)
	if id == nil && err == nil && g.login != nil {
		id, err = g.sessionIdentity(w, r, policy)
	}
	if id == nil && err == nil && (rt == nil || rt.auth == config.AuthRequired) {
		err = authn.Missing()
	}
	var ae *authn.Error
	switch {
	case errors.As(err, &ae):
		g.metrics.authFailures.WithLabelValues(name, ae.Reason).Inc()
		g.metrics.requests.WithLabelValues(name, outcomeUnauth).Inc()
		authn.WriteError(w, g.realm, ae)
		return
	case err != nil:
		g.plain(w, nil, http.StatusServiceUnavailable, outcomeUnavailable, "authentication temporarily unavailable")
		return
	}
	if id != nil {
		if len(headers) == 0 {
			headers = defaultForwardAuthHeaders
		}
		setIdentity(w.Header(), headers, id)
	}
	g.metrics.requests.WithLabelValues(name, outcomeAllowed).Inc()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// defaultForwardAuthHeaders are answered when the matched route names none.
var defaultForwardAuthHeaders = []identityHeader{
	{name: "X-Auth-Request-User", claim: "sub"},
	{name: "X-Auth-Request-Email", claim: "email"},
	{name: "X-Auth-Request-Preferred-Username", claim: "preferred_username"},
	{name: "X-Auth-Request-Groups", claim: "groups"},
}
