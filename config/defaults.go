package config

import (
	"strings"
	"time"
)

// Defaults, as documented on the fields of [Config].
const (
	defaultListen            = "127.0.0.1:8080"
	defaultReadHeaderTimeout = 10 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 32768
	defaultShutdownGrace     = 20 * time.Second
	defaultAdminListen       = "127.0.0.1:9090"
	defaultLogLevel          = "info"
	defaultLogFormat         = "text"
	defaultLeeway            = 30 * time.Second
	defaultJWKSMinAge        = time.Minute
	defaultJWKSMaxAge        = time.Hour
	defaultJWKSRefetch       = 10 * time.Second
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
	if !set("server.max_header_bytes") {
		s.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	orString(&c.Admin.Listen, defaultAdminListen)
	orString(&c.Log.Level, defaultLogLevel)
	orString(&c.Log.Format, defaultLogFormat)

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
	}

	for i := range c.Routes {
		r := &c.Routes[i]
		p := indexPath("routes", i)
		r.Host = strings.ToLower(r.Host)
		orString(&r.PathPrefix, "/")
		orString(&r.Auth, AuthRequired)
		orString(&r.OnUnauthenticated, "auto")
		orString(&r.ForwardToken, ForwardTokenNone)
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
