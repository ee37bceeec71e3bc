package config

import (
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/rules"
)

// Defaults, as documented on the fields of [Config].
const (
	defaultListen            = "127.0.0.1:8080"
	defaultReadHeaderTimeout = 10 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 32768
	defaultMaxConnections    = 10000
	defaultShutdownGrace     = 20 * time.Second
	defaultAuthFailureDelay  = time.Second
	defaultTokenCacheEntries = 20000
	defaultTokenCacheBytes   = 16 << 20
	defaultTokenCacheMaxAge  = 5 * time.Minute
	defaultDPoPMaxAge        = 60 * time.Second
	defaultAdminListen       = "127.0.0.1:9090"
	defaultLogLevel          = "info"
	defaultLogFormat         = "text"
	defaultLeeway            = 30 * time.Second
	defaultJWKSMinAge        = time.Minute
	defaultJWKSMaxAge        = time.Hour
	defaultJWKSRefetch       = 10 * time.Second
	defaultJWKSFetchTimeout  = 5 * time.Second
	defaultStoreTimeout      = time.Second
	defaultRefreshRetryGrace = 10 * time.Second
	defaultRouteTimeout      = 30 * time.Second
)

// applyDefaults fills in every default documented on the fields, once, at
// load. set reports whether a key path was written in the file with a
// value: strings default when empty, while durations, numbers and lists
// default only when absent, so that an explicit "leeway: 0s" stays 0.
func (c *Config) applyDefaults(set func(key string) bool) {
	s := &c.Server
	orString(&s.Listen, defaultListen)
	orString(&s.PublicURL, "http://"+s.Listen)
	orDuration(set, "server.read_header_timeout", &s.ReadHeaderTimeout, defaultReadHeaderTimeout)
	orDuration(set, "server.write_timeout", &s.WriteTimeout, defaultWriteTimeout)
	orDuration(set, "server.idle_timeout", &s.IdleTimeout, defaultIdleTimeout)
	orDuration(set, "server.shutdown_grace", &s.ShutdownGrace, defaultShutdownGrace)
	orDuration(set, "server.auth_failure_delay", &s.AuthFailureDelay, defaultAuthFailureDelay)
	if !set("server.token_cache.entries") {
		s.TokenCache.Entries = defaultTokenCacheEntries
	}
	if !set("server.token_cache.bytes") {
		s.TokenCache.Bytes = defaultTokenCacheBytes
	}
	orDuration(set, "server.token_cache.max_age", &s.TokenCache.MaxAge, defaultTokenCacheMaxAge)
	orDuration(set, "server.dpop.max_age", &s.DPoP.MaxAge, defaultDPoPMaxAge)
	if !set("server.dpop.algorithms") {
		s.DPoP.Algorithms = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}
	}
	if !set("server.rules.max_list_size") {
		s.Rules.MaxListSize = rules.DefaultMaxListSize
	}
	if !set("server.rules.max_cost") {
		s.Rules.MaxCost = rules.DefaultMaxCost
	}
	if !set("server.max_header_bytes") {
		s.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if !set("server.max_connections") {
		s.MaxConnections = defaultMaxConnections
	}
	orString(&c.Admin.Listen, defaultAdminListen)
	orString(&c.Log.Level, defaultLogLevel)
	orString(&c.Log.Format, defaultLogFormat)
	c.Telemetry.Tracing.applyDefaults()

	for i := range c.Issuers {
		is := &c.Issuers[i]
		p := indexPath("issuers", i)
		if !set(p + ".algorithms") {
			// A shared secret is only useful with HS*; a default of
			// asymmetric algorithms would leave it unused.
			if is.HMACSecret != "" {
				is.Algorithms = []string{"HS256"}
			} else {
				is.Algorithms = []string{"ES256", "RS256"}
			}
		}
		orDuration(set, p+".leeway", &is.Leeway, defaultLeeway)
		orDuration(set, p+".jwks_min_age", &is.JWKSMinAge, defaultJWKSMinAge)
		orDuration(set, p+".jwks_max_age", &is.JWKSMaxAge, defaultJWKSMaxAge)
		orDuration(set, p+".jwks_refetch_interval", &is.JWKSRefetchInterval, defaultJWKSRefetch)
		orDuration(set, p+".jwks_fetch_timeout", &is.JWKSFetchTimeout, defaultJWKSFetchTimeout)
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		p := indexPath("routes", i)
		r.Host = strings.ToLower(r.Host)
		orString(&r.PathPrefix, "/")
		orString(&r.Auth, AuthRequired)
		orString(&r.OnUnauthenticated, "auto")
		orString(&r.ForwardToken, ForwardTokenNone)
		orString(&r.CORSPreflight, CORSPreflightCheck)
		for _, mode := range []string{ForwardTokenNone, ForwardTokenAuthorization} {
			if strings.EqualFold(r.ForwardToken, mode) {
				r.ForwardToken = mode
			}
		}
		if !set(p + ".token_from") {
			r.TokenFrom = []string{"header"}
		}
		orDuration(set, p+".timeout", &r.Timeout, defaultRouteTimeout)
	}
	if c.Issuer != nil {
		c.Issuer.applyDefaults(set)
	}
	if c.Login != nil {
		c.Login.applyDefaults(set, s.PublicURL, c.LoginAtBuiltinIssuer())
	}
}

// applyDefaults fills in the defaults documented on [BuiltinIssuer] and
// turns claims into values JSON can hold (maps with string keys).
func (b *BuiltinIssuer) applyDefaults(set func(key string) bool) {
	orString(&b.Signing.Algorithm, defaultSigningAlgorithm)
	orDuration(set, "issuer.access_token_ttl", &b.AccessTokenTTL, defaultAccessTokenTTL)
	orDuration(set, "issuer.id_token_ttl", &b.IDTokenTTL, b.AccessTokenTTL.D())
	orDuration(set, "issuer.refresh_token_ttl", &b.RefreshTokenTTL, defaultRefreshTokenTTL)
	orDuration(set, "issuer.session_ttl", &b.SessionTTL, defaultSessionTTL)
	orDuration(set, "issuer.consent_ttl", &b.ConsentTTL, defaultConsentTTL)
	orDuration(set, "issuer.store_timeout", &b.StoreTimeout, defaultStoreTimeout)
	orDuration(set, "issuer.refresh_retry_grace", &b.RefreshRetryGrace, defaultRefreshRetryGrace)
	orString(&b.Store, StoreMemory)
	if !set("issuer.login_rate_limit.attempts") {
		b.LoginRateLimit.Attempts = defaultLoginAttempts
	}
	orDuration(set, "issuer.login_rate_limit.window", &b.LoginRateLimit.Window, defaultLoginWindow)
	if !set("issuer.login_rate_limit.address_attempts") {
		b.LoginRateLimit.AddressAttempts = defaultLoginAddressAttempts
	}
	orDuration(set, "issuer.login_rate_limit.max_delay", &b.LoginRateLimit.MaxDelay, defaultLoginMaxDelay)
	orDuration(set, "issuer.login_rate_limit.device_ttl", &b.LoginRateLimit.DeviceTTL, defaultDeviceTTL)
	for name, desc := range builtinScopes {
		if _, ok := b.Scopes[name]; !ok {
			if b.Scopes == nil {
				b.Scopes = map[string]string{}
			}
			b.Scopes[name] = desc
		}
	}
	for i := range b.Clients {
		cl := &b.Clients[i]
		p := indexPath("issuer.clients", i)
		orString(&cl.Name, cl.ID)
		if !set(p + ".grant_types") {
			cl.GrantTypes = slices.Clone(defaultGrantTypes)
		}
		if !set(p + ".scopes") {
			cl.Scopes = slices.Clone(defaultClientScopes)
		}
		if !set(p+".audiences") && cl.ID != "" {
			cl.Audiences = []string{cl.ID}
		}
	}
	r := &b.Registration
	if !set("issuer.registration.grant_types") {
		r.GrantTypes = slices.Clone(defaultGrantTypes)
	}
	if !set("issuer.registration.scopes") {
		r.Scopes = slices.Clone(defaultClientScopes)
	}
	if !set("issuer.registration.max_clients") {
		r.MaxClients = defaultRegistrationMax
	}
	orDuration(set, "issuer.registration.unused_ttl", &r.UnusedTTL, defaultRegistrationUnused)
	for i := range b.Users {
		u := &b.Users[i]
		orString(&u.Subject, u.Username)
		for k, v := range u.Claims {
			if j, ok := jsonValue(v); ok {
				u.Claims[k] = j
			}
		}
	}
}

// orString sets *s to def when it is empty.
func orString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// orDuration sets *d to def when key was not set.
func orDuration(set func(string) bool, key string, d *Duration, def time.Duration) {
	if !set(key) {
		*d = Duration(def)
	}
}
