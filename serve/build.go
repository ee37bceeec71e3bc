package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/internal/redislog"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/oidcclient"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/rules"
)

// build turns c into a generation and the gateway's Spec, taking over from
// prev (nil at start) what c leaves unchanged. It always returns the
// generation, partly built on error, so the caller can close it.
func (s *Server) build(c *config.Config, prev *generation) (*generation, proxy.Spec, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	g := &generation{cfg: c, cancel: cancel}
	spec := proxy.Spec{
		PublicURL:        c.Server.PublicURL,
		AuthFailureDelay: c.Server.AuthFailureDelay.D(),
		Audiences:        allAudiences(c),
		AdminToken:       c.Admin.Token,
	}
	var err error
	if spec.TrustedProxies, err = trustedProxies(c); err != nil {
		return g, spec, err
	}
	if err := s.buildBuiltin(g, prev); err != nil {
		return g, spec, err
	}
	if b := g.builtin; b != nil {
		spec.Issuer = &proxy.Issuer{Issuer: b.iss, Keys: b.keys, Store: b.store}
	}
	issuers := s.buildIssuers(g)
	if len(issuers) > 0 {
		ac := authnConfig(c, issuers, s.opts.Now)
		ac.Tracer = s.tracer()
		if ac.DPoP, err = s.dpopConfig(c, spec.TrustedProxies); err != nil {
			return g, spec, err
		}
		if t := c.Server.TLS; t.ClientCAFile != "" || t.ClientCertHeader.Name != "" {
			format := t.ClientCertHeader.Format
			if format == "" {
				format = proxy.CertHeaderXFCC
			}
			ac.ClientCert = proxy.ClientCertThumbprint(spec.TrustedProxies, t.ClientCertHeader.Name, format)
		}
		if spec.Authn, err = authn.New(ac); err != nil {
			return g, spec, err
		}
	}
	if c.Login != nil {
		if spec.Login, err = s.buildLogin(ctx, g, prev, spec); err != nil {
			return g, spec, err
		}
	}
	for i := range c.Routes {
		rt, err := routeSpec(c, i)
		if err != nil {
			return g, spec, err
		}
		spec.Routes = append(spec.Routes, rt)
	}
	spec.KeySets = g.remotes
	return g, spec, nil
}

// trustedProxies parses server.trusted_proxies.
func trustedProxies(c *config.Config) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range c.Server.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			return nil, err
		}
		out = append(out, pfx)
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("serve: trusted proxy " + s + ": not a CIDR")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("serve: trusted proxy " + s + ": not an IP address")
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// authnIssuer converts a configured issuer, without its key source.
func authnIssuer(ci config.Issuer) authn.Issuer {
	iss := authn.Issuer{
		Issuer:     ci.Issuer,
		Audiences:  ci.Audiences,
		Algorithms: ci.Algorithms,
		Leeway:     ci.Leeway.D(),
		Typ:        ci.Typ,
	}
	if ci.HMACSecret != "" {
		iss.HMACSecret = []byte(ci.HMACSecret)
	}
	return iss
}

// buildIssuers converts the configured issuers, with a background key set
// (shared across reloads) for each one that has keys to fetch.
func (s *Server) buildIssuers(g *generation) []authn.Issuer {
	out := make([]authn.Issuer, 0, len(g.cfg.Issuers))
	for _, ci := range g.cfg.Issuers {
		iss := authnIssuer(ci)
		if b := g.builtin; b != nil && ci.Issuer == b.iss.URL() && ci.JWKSURI == "" {
			// The built-in issuer: its keys and revocations in-process.
			iss.Keys = b.keys
			iss.Revoked = b.iss.Revoked
			out = append(out, iss)
			continue
		}
		if ci.HMACSecret == "" || ci.JWKSURI != "" {
			name := ci.Issuer
			remote := s.keySets.get(jwks.RemoteConfig{
				Issuer:          ci.Issuer,
				JWKSURI:         ci.JWKSURI,
				Client:          s.opts.HTTPClient,
				MinAge:          ci.JWKSMinAge.D(),
				MaxAge:          ci.JWKSMaxAge.D(),
				RefetchInterval: ci.JWKSRefetchInterval.D(),
				Timeout:         ci.JWKSFetchTimeout.D(),
				Now:             s.opts.Now,
				Logger:          s.log,
				OnFetch:         func(result string) { s.CountKeyFetch(name, result) },
				Tracer:          s.tracer(),
			})
			g.remotes = append(g.remotes, remote)
			iss.Keys = remote
		}
		out = append(out, iss)
	}
	return out
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

// dpopConfig is server.dpop as the authenticator checks proofs: for the
// URL the client saw, within max_age plus the largest issuer leeway, each
// proof once (the replay cache outlives reloads).
func (s *Server) dpopConfig(c *config.Config, trusted []netip.Prefix) (*authn.DPoP, error) {
	v, err := s.dpopVerifier(c)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, 0, len(c.Routes))
	for _, r := range c.Routes {
		hosts = append(hosts, r.Host)
	}
	return &authn.DPoP{Verifier: v, URL: proxy.DPoPURL(c.Server.PublicURL, trusted, hosts)}, nil
}

// dpopVerifier checks DPoP proofs as server.dpop says, with the replay
// cache and nonce key that outlive reloads.
func (s *Server) dpopVerifier(c *config.Config) (*dpop.Verifier, error) {
	d := c.Server.DPoP
	var leeway time.Duration
	for _, i := range c.Issuers {
		leeway = max(leeway, i.Leeway.D())
	}
	cfg := dpop.Config{Algorithms: d.Algorithms, MaxAge: d.MaxAge.D(), Leeway: leeway, Now: s.opts.Now, Replay: s.dpopReplay}
	if d.Nonce {
		cfg.Nonces = s.dpopNonces
	}
	v, err := dpop.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("serve: server.dpop: %w", err)
	}
	return v, nil
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

// routeSpec converts the configured route c.Routes[i].
func routeSpec(c *config.Config, i int) (proxy.Route, error) {
	cr, lim := &c.Routes[i], c.RuleLimits()
	u, err := url.Parse(cr.Upstream)
	if err != nil {
		return proxy.Route{}, fmt.Errorf("serve: route %s: upstream: %w", cr.Name, err)
	}
	rt := proxy.Route{
		Name:           cr.Name,
		Host:           cr.Host,
		PathPrefix:     cr.PathPrefix,
		Upstream:       u,
		Timeout:        cr.Timeout.D(),
		ForwardHeaders: cr.ForwardHeaders,
		PreserveHost:   cr.PreserveHost,
		MaxBodyBytes:   cr.MaxBodyBytes,
		Policy: authn.Policy{Audiences: cr.Audiences, Scopes: cr.RequireScopes,
			RequireBinding: map[string]string{"dpop": authn.BindingDPoP, "mtls": authn.BindingX5T, "any": authn.BindingAny}[cr.RequireSenderConstraint]},
	}
	if res := c.RouteResource(i); res != "" {
		// RFC 9728: the route publishes where its tokens come from, and
		// takes tokens asked for it by name (RFC 8707) as its audience.
		rt.Policy.Resource = res
		rt.Metadata = &proxy.ResourceMetadata{Resource: res, AuthorizationServers: issuerURLs(c),
			Name: cr.ResourceName, Documentation: cr.ResourceDocumentation}
	}
	switch cr.Auth {
	case config.AuthOptional:
		rt.Auth = proxy.AuthOptional
	case config.AuthPublic:
		rt.Auth = proxy.AuthPublic
	default:
		rt.Auth = proxy.AuthRequired
	}
	switch cr.OnUnauthenticated {
	case "login":
		rt.Unauthenticated = proxy.UnauthLogin
	case "deny":
		rt.Unauthenticated = proxy.UnauthDeny
	default:
		rt.Unauthenticated = proxy.UnauthAuto
	}
	switch ft := cr.ForwardToken; {
	case ft == "" || ft == config.ForwardTokenNone:
	case strings.EqualFold(ft, config.ForwardTokenAuthorization):
		rt.ForwardToken = proxy.ForwardToken{Mode: proxy.TokenBearer}
	default:
		rt.ForwardToken = proxy.ForwardToken{Mode: proxy.TokenHeader, Header: ft}
	}
	if len(cr.RequireClaims) > 0 {
		rt.Policy.Claims = make(map[string][]string, len(cr.RequireClaims))
		for k, v := range cr.RequireClaims {
			rt.Policy.Claims[k] = v
		}
	}
	for _, src := range cr.TokenFrom {
		ts, err := authn.ParseSource(src)
		if err != nil {
			return proxy.Route{}, fmt.Errorf("serve: route %s: %w", cr.Name, err)
		}
		rt.Policy.Sources = append(rt.Policy.Sources, ts)
	}
	if rt.UpstreamTLS, err = upstreamTLS(cr.UpstreamCAFile); err != nil {
		return proxy.Route{}, fmt.Errorf("serve: route %s: %w", cr.Name, err)
	}
	rt.Methods = cr.Methods
	rt.PassPreflight = cr.CORSPreflight == config.CORSPreflightPass
	if len(cr.Rules) > 0 {
		rs := make([]rules.Rule, len(cr.Rules))
		for i, rr := range cr.Rules {
			rs[i] = config.RuleOf(rr)
		}
		if rt.Rules, err = rules.Compile(rs, lim); err != nil {
			return proxy.Route{}, fmt.Errorf("serve: route %s: %w", cr.Name, err)
		}
	}
	return rt, nil
}

// buildLogin wires the login section: cookie codec, provider keys (the
// built-in issuer's key ring, a configured issuer's key set, or a key set of
// its own), and, for the built-in issuer, an in-process transport so the
// code exchange never leaves the process. Sessions in memory, and a Redis
// session store on the same URL, are taken over from prev, so a reload
// signs no one out.
func (s *Server) buildLogin(ctx context.Context, g *generation, prev *generation, spec proxy.Spec) (*proxy.Login, error) {
	c := g.cfg
	lc := c.Login
	if prev == nil {
		prev = &generation{}
	}
	switch store := lc.SessionStore; store {
	case "", config.SessionStoreCookie:
	case config.SessionStoreMemory:
		g.memory = prev.memory
		if g.memory == nil {
			g.memory = &oidcclient.MemoryStore{Now: s.opts.Now}
		}
	default:
		if store == config.SessionStoreRedis && c.Issuer != nil {
			store = c.Issuer.Store
		}
		if st := prev.sessions; st != nil && st.URL() == store {
			g.sessions = st // the same store: keep its connections
			break
		}
		var err error
		if g.sessions, err = oidcclient.NewRedisStore(store); err != nil {
			return nil, fmt.Errorf("serve: login.session_store: %w", err)
		}
		if t := s.tracer(); t != nil {
			g.sessions.Trace(t)
		}
		redislog.Install()
	}
	az := spec.Authn
	if az == nil {
		return nil, errors.New("serve: login needs the provider listed under issuers, so sessions can be verified")
	}
	secrets := make([][]byte, 0, len(lc.Cookie.Secret))
	for _, sec := range lc.Cookie.Secret {
		secrets = append(secrets, []byte(sec))
	}
	codec, err := oidcclient.NewCookieCodec(oidcclient.CookieConfig{
		Secrets: secrets, Secure: lc.Cookie.Secure, Domain: lc.Cookie.Domain, Now: s.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	pub, err := url.Parse(c.Server.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("serve: public_url: %w", err)
	}
	trusted, audiences := spec.TrustedProxies, spec.Audiences
	oc := oidcclient.Config{
		Issuer: lc.Issuer, ClientID: lc.ClientID, ClientSecret: lc.ClientSecret, Scopes: lc.Scopes,
		RedirectURL: lc.RedirectURL, PostLogoutRedirectURL: lc.PostLogoutRedirectURL, Prefix: lc.Prefix,
		PublicURL: pub, AllowedRedirectHosts: lc.AllowedRedirectHosts, Cookies: codec, CookieName: lc.Cookie.Name,
		SessionMaxAge: lc.Cookie.MaxAge.D(), RefreshBefore: lc.RefreshBefore.D(), HTTPClient: s.opts.HTTPClient,
		ProviderTimeout:     lc.ProviderTimeout.D(),
		SessionCacheEntries: sessionCacheEntries(lc.SessionCache), SessionCacheBytes: lc.SessionCache.Bytes,
		Now: s.opts.Now, Logger: s.log, LoginFailed: s.CountLoginFailure, Tracer: s.tracer(),
		ClientAddr: func(r *http.Request) string { return proxy.ClientAddr(trusted, r) },
		// An access token is usable when it verifies and is meant for
		// an audience portcullis serves; otherwise (opaque, or for another
		// API) the id_token speaks for the user.
		AccessTokenUsable: func(ctx context.Context, tok string) bool {
			id, err := az.Verify(ctx, tok)
			return err == nil && az.Authorize(id, &authn.Policy{Audiences: audiences}) == nil
		},
	}
	switch b := g.builtin; {
	case b != nil && c.LoginAtBuiltinIssuer():
		oc.Keys = b.keys
		u := b.iss.URL()
		oc.Endpoints = &oidcclient.Endpoints{Authorization: u + "/authorize", Token: u + "/token", EndSession: u + "/logout"}
		oc.HTTPClient = &http.Client{Transport: handlerTransport{b.iss}, Timeout: 15 * time.Second}
		for _, cl := range c.Issuer.Clients {
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
			r := s.keySets.get(jwks.RemoteConfig{Issuer: lc.Issuer, Client: s.opts.HTTPClient, Timeout: lc.ProviderTimeout.D(), Now: s.opts.Now, Logger: s.log, Tracer: s.tracer()})
			g.remotes = append(g.remotes, r)
			oc.Keys = r
		}
	}
	l := &proxy.Login{Cookies: codec, Prefix: lc.Prefix, CookieName: lc.Cookie.Name, ClientID: lc.ClientID}
	switch {
	case g.sessions != nil:
		oc.Sessions = g.sessions
		l.Sessions = g.sessions
	case g.memory != nil:
		oc.Sessions = g.memory
	}
	if lc.BackchannelLogout {
		if oc.Logouts, err = s.logoutStore(g, prev); err != nil {
			return nil, err
		}
		oc.BackchannelLogout, oc.LogoutTokenTypRequired = true, lc.BackchannelLogoutRequireTyp
		oc.LogoutReceived = func(result string) { s.CountBackchannelLogout("received", result) }
	}
	if l.Client, err = oidcclient.New(ctx, oc); err != nil {
		return nil, err
	}
	return l, nil
}

// logoutStore is where back-channel logouts are kept: the Redis of the
// session store when sessions live there, else login.logout_store (memory,
// kept across reloads, or Redis, whose connections are kept while its URL
// is).
func (s *Server) logoutStore(g, prev *generation) (oidcclient.LogoutStore, error) {
	if g.sessions != nil {
		return g.sessions, nil
	}
	c := g.cfg
	store := c.Login.LogoutStore
	if store == "" || store == config.SessionStoreMemory {
		g.logouts = prev.logouts
		if g.logouts == nil {
			g.logouts = &oidcclient.MemoryLogouts{Now: s.opts.Now}
		}
		return g.logouts, nil
	}
	if store == config.SessionStoreRedis && c.Issuer != nil {
		store = c.Issuer.Store
	}
	if st := prev.logoutsRedis; st != nil && st.URL() == store {
		g.logoutsRedis = st
		return st, nil
	}
	st, err := oidcclient.NewRedisStore(store)
	if err != nil {
		return nil, fmt.Errorf("serve: login.logout_store: %w", err)
	}
	if t := s.tracer(); t != nil {
		st.Trace(t)
	}
	redislog.Install()
	g.logoutsRedis = st
	return st, nil
}

// sessionCacheEntries is login.session_cache.entries as oidcclient takes
// it, where 0 means its default and a negative number turns the cache off.
func sessionCacheEntries(sc config.SessionCache) int {
	if sc.Entries == 0 {
		return -1
	}
	return sc.Entries
}

// issuerURLs are the configured issuers' identifiers, the authorization
// servers of every route's protected resource metadata.
func issuerURLs(c *config.Config) []string {
	out := make([]string, 0, len(c.Issuers))
	for _, i := range c.Issuers {
		out = append(out, i.Issuer)
	}
	return out
}

// sameIssuer reports whether a and b build the same built-in issuer (the
// resources it serves aside, which Reload hands over): the
// same issuer section, and the same login settings that its clients take
// from the gateway (post-logout and back-channel logout URIs).
func sameIssuer(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Issuer, b.Issuer) && a.BackchannelLogoutURL() == b.BackchannelLogoutURL() &&
		a.LoginAtBuiltinIssuer() == b.LoginAtBuiltinIssuer() &&
		(a.Login == nil) == (b.Login == nil) && (a.Login == nil || (a.Login.ClientID == b.Login.ClientID &&
		a.Login.PostLogoutRedirectURL == b.Login.PostLogoutRedirectURL))
}

// builtin is the built-in issuer and what it runs.
type builtin struct {
	iss    *issuer.Issuer
	keys   *jwks.KeyRing
	store  issuer.Store
	cancel context.CancelFunc // stops key rotation
}

// close stops the issuer's rotation and its logout deliveries, and closes
// its store.
func (b *builtin) close() {
	b.cancel()
	_ = b.iss.Close()
	closeStore(b.store)
}

// buildBuiltin starts the built-in issuer, if configured, or takes prev's
// when the issuer section is unchanged: same keys, same store, nothing
// issued is forgotten.
func (s *Server) buildBuiltin(g *generation, prev *generation) error {
	bi := g.cfg.Issuer
	if bi == nil {
		return nil
	}
	if prev != nil && prev.builtin != nil && sameIssuer(prev.cfg, g.cfg) {
		g.builtin = prev.builtin
		return nil
	}
	v, err := s.dpopVerifier(g.cfg)
	if err != nil {
		return err
	}
	iss, keys, store, err := newIssuer(g.cfg, s.opts, issuerHooks{
		dpop:        v,
		loginFailed: s.CountLoginFailure,
		logoutSent:  func(result string) { s.CountBackchannelLogout("sent", result) },
		gateway:     s.Gateway,
		tracer:      s.tracer(),
	})
	if err != nil {
		return err
	}
	// Rotation runs on the server's ctx: the issuer outlives this
	// configuration when a reload keeps it.
	ctx, cancel := context.WithCancel(s.ctx)
	go keys.Run(ctx)
	g.builtin = &builtin{iss: iss, keys: keys, store: store, cancel: cancel}
	return nil
}
