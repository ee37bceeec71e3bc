package config

import (
	"slices"
	"strings"
	"time"
)

// Login configures the browser login: the login: section. With it, browsers
// without a session are sent through the OpenID Connect authorization-code
// flow with PKCE and come back with an encrypted session cookie.
// [Config.Login] is nil when the section is absent; then every route answers
// 401 without a valid token and on_unauthenticated: login is an error.
type Login struct {
	// Issuer is the OpenID provider's issuer identifier; discovery is
	// fetched from Issuer + "/.well-known/openid-configuration" (a trailing
	// slash of Issuer left out). Required: an absolute http(s) URL without
	// query or fragment; plain http on a host that is not loopback needs
	// server.insecure_allow_http. When it is the built-in issuer's URL, that
	// issuer must have a client ClientID whose redirect_uris hold
	// RedirectURL.
	Issuer string `yaml:"issuer"`
	// ClientID is the gateway's client_id at the provider. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the gateway's client secret; keep it in the
	// environment. Default "": a public client, authenticated by PKCE only.
	ClientSecret string `yaml:"client_secret"`
	// Scopes are the scopes asked for; they must hold openid. Default
	// [openid, profile, email, offline_access].
	Scopes []string `yaml:"scopes"`
	// Prefix is the path prefix of the gateway's own endpoints (Prefix +
	// "/start", "/callback", "/sign_out", "/userinfo", "/auth"). Default
	// "/oauth2". It starts with "/", has no trailing slash, is a clean path,
	// and is neither a route's path_prefix nor the built-in issuer's path.
	Prefix string `yaml:"prefix"`
	// RedirectURL is the redirect_uri sent to the provider, an absolute
	// http(s) URL. Default server.public_url + Prefix + "/callback".
	RedirectURL string `yaml:"redirect_url"`
	// PostLogoutRedirectURL is where the provider sends the browser after
	// sign-out, an absolute http(s) URL. Default, with the built-in issuer
	// as provider, server.public_url + Prefix + "/signed_out", the
	// gateway's "You are signed out" page (registered at the built-in
	// issuer's first-party client without further configuration); with
	// another provider server.public_url + "/", which is what providers
	// were told to register before the page existed.
	PostLogoutRedirectURL string `yaml:"post_logout_redirect_url"`
	// Cookie configures the encrypted session cookie.
	Cookie LoginCookie `yaml:"cookie"`
	// AllowedRedirectHosts are the hosts, besides the host of
	// server.public_url, that a post-login redirect may go to: an exact
	// host name, or ".example.com" for every subdomain of example.com (not
	// example.com itself). Lower-cased at load. Default none.
	AllowedRedirectHosts []string `yaml:"allowed_redirect_hosts"`
	// RefreshBefore is how long before the access token expires it is
	// refreshed. Default 1m.
	RefreshBefore Duration `yaml:"refresh_before"`
	// ProviderTimeout bounds each call to the provider: discovery, the
	// code exchange with the id_token's check (its keys fetched if need
	// be), a refresh. A login the provider does not answer in time fails
	// with a page. Default 10s.
	ProviderTimeout Duration `yaml:"provider_timeout"`
	// SessionStore is where sessions live: [SessionStoreCookie] (in the
	// encrypted cookie itself), [SessionStoreMemory] (in the gateway's
	// memory: one replica), [SessionStoreRedis] (the built-in issuer's
	// Redis), or a Redis URL. With memory or Redis the cookie holds only an
	// encrypted session id, for providers whose tokens make cookies too big
	// and for forward-auth behind nginx, which passes one Set-Cookie from an
	// auth answer. Default cookie.
	SessionStore string `yaml:"session_store"`
	// SessionCache bounds the cache of decoded session cookies.
	SessionCache SessionCache `yaml:"session_cache"`
	// BackchannelLogout serves Prefix + "/backchannel_logout", the
	// back-channel logout URI to register at the provider (OpenID Connect
	// Back-Channel Logout 1.0): a logout token from the provider ends the
	// sessions it names, on their next request. Default false.
	BackchannelLogout bool `yaml:"backchannel_logout"`
	// BackchannelLogoutRequireTyp refuses logout tokens without the typ
	// header logout+jwt; without it, tokens typed JWT or untyped are
	// accepted too. Default false.
	BackchannelLogoutRequireTyp bool `yaml:"backchannel_logout_require_typ"`
	// LogoutStore is where back-channel logouts of sessions kept in the
	// cookie, and the ids of the logout tokens seen, are kept:
	// [SessionStoreMemory] (one replica), [SessionStoreRedis] (the built-in
	// issuer's Redis) or a Redis URL, which every replica must share.
	// Sessions kept in memory or Redis are deleted instead. Default, with
	// BackchannelLogout, the session_store's Redis when it is one, else
	// memory.
	LogoutStore string `yaml:"logout_store"`
}

// SessionCache bounds the cache of decoded session cookies: a cookie the
// gateway has decrypted and checked is remembered, by the SHA-256 of its
// sealed value, so the next request with it skips the decryption. Expiry,
// max_age and refresh are still decided on every request. Only cookie
// sessions are cached: a session kept in Redis is read from Redis each
// time, so a sign-out on any replica takes effect at once.
type SessionCache struct {
	// Entries is how many sessions it holds at most. Default 10000; 0
	// turns the cache off.
	Entries int `yaml:"entries"`
	// Bytes bounds the memory the cached sessions hold, approximately.
	// Default 16777216 (16 MiB).
	Bytes int `yaml:"bytes"`
}

// LoginCookie configures the session cookie of the browser login.
type LoginCookie struct {
	// Name is the cookie's name, made of RFC 9110 token characters. Default
	// "_portcullis". It must not start with "__Host-" or "__Secure-": the
	// gateway adds the prefix itself, "__Host-" when Secure and Domain is
	// empty, "__Secure-" when Secure and Domain is set, none otherwise.
	Name string `yaml:"name"`
	// Secret holds the keys the cookie is encrypted with, each at least 32
	// bytes; keep them in the environment. The first encrypts, all decrypt,
	// so a new key is rotated in by putting it first and the old one is
	// dropped once the sessions it encrypted have expired. Required.
	Secret StringList `yaml:"secret"`
	// Secure marks the cookie Secure (sent over https only). Default true;
	// false with a server.public_url on a host that is not loopback needs
	// server.insecure_allow_http.
	Secure bool `yaml:"secure"`
	// MaxAge is the lifetime of a session, from 1m to 720h. Default 12h.
	MaxAge Duration `yaml:"max_age"`
	// Domain, when set, is the cookie's Domain attribute: a host name that
	// the host of RedirectURL is, or is a subdomain of. Lower-cased at load.
	// Default "": a host-only cookie.
	Domain string `yaml:"domain"`
}

// Session stores of the browser login.
const (
	// SessionStoreCookie keeps the whole session in the encrypted cookie.
	SessionStoreCookie = "cookie"
	// SessionStoreMemory keeps sessions in the gateway's memory, the cookie
	// holding only their id. They are lost on restart and not shared
	// between replicas; they survive a configuration reload.
	SessionStoreMemory = "memory"
	// SessionStoreRedis keeps sessions in the built-in issuer's Redis, the
	// cookie holding only their id.
	SessionStoreRedis = "redis"
)

// Defaults of the browser login, as documented on [Login].
const (
	defaultLoginPrefix     = "/oauth2"
	defaultCookieName      = "_portcullis"
	defaultCookieMaxAge    = 12 * time.Hour
	defaultRefreshBefore   = time.Minute
	defaultProviderTimeout = 10 * time.Second

	defaultSessionCacheEntries = 10000
	defaultSessionCacheBytes   = 16 << 20
)

// LoginAtBuiltinIssuer reports whether the login section signs browsers in
// at this configuration's own built-in issuer.
func (c *Config) LoginAtBuiltinIssuer() bool {
	return c.Login != nil && c.Issuer != nil &&
		strings.TrimSuffix(c.Login.Issuer, "/") == strings.TrimSuffix(c.Issuer.URL, "/")
}

// BackchannelLogoutURL is the gateway's back-channel logout URI, to
// register at the provider: server.public_url + login.prefix +
// "/backchannel_logout"; "" unless login.backchannel_logout is on.
func (c *Config) BackchannelLogoutURL() string {
	if c.Login == nil || !c.Login.BackchannelLogout {
		return ""
	}
	return strings.TrimSuffix(c.Server.PublicURL, "/") + c.Login.Prefix + "/backchannel_logout"
}

// defaultLoginScopes are the scopes the gateway asks for by default.
var defaultLoginScopes = []string{"openid", "profile", "email", "offline_access"}

// applyDefaults fills in the defaults documented on [Login] and
// [LoginCookie]; publicURL is server.public_url with its defaults applied.
func (l *Login) applyDefaults(set func(key string) bool, publicURL string, builtinIssuer bool) {
	if !set("login.scopes") {
		l.Scopes = slices.Clone(defaultLoginScopes)
	}
	orString(&l.Prefix, defaultLoginPrefix)
	base := strings.TrimSuffix(publicURL, "/")
	orString(&l.RedirectURL, base+l.Prefix+"/callback")
	if builtinIssuer {
		orString(&l.PostLogoutRedirectURL, base+l.Prefix+"/signed_out")
	}
	orString(&l.PostLogoutRedirectURL, base+"/")
	orString(&l.SessionStore, SessionStoreCookie)
	if l.BackchannelLogout {
		if l.SessionStore != SessionStoreCookie && l.SessionStore != SessionStoreMemory {
			orString(&l.LogoutStore, l.SessionStore)
		}
		orString(&l.LogoutStore, SessionStoreMemory)
	}
	orDuration(set, "login.refresh_before", &l.RefreshBefore, defaultRefreshBefore)
	orDuration(set, "login.provider_timeout", &l.ProviderTimeout, defaultProviderTimeout)
	if !set("login.session_cache.entries") {
		l.SessionCache.Entries = defaultSessionCacheEntries
	}
	if !set("login.session_cache.bytes") {
		l.SessionCache.Bytes = defaultSessionCacheBytes
	}
	for i, h := range l.AllowedRedirectHosts {
		l.AllowedRedirectHosts[i] = strings.ToLower(h)
	}
	c := &l.Cookie
	orString(&c.Name, defaultCookieName)
	if !set("login.cookie.secure") {
		c.Secure = true
	}
	orDuration(set, "login.cookie.max_age", &c.MaxAge, defaultCookieMaxAge)
	c.Domain = strings.ToLower(c.Domain)
}
