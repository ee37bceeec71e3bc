// Package config holds portcullis' configuration schema: the YAML types, their
// defaults, ${ENV} expansion and validation. Every error it reports names the
// file, the line and the key, and says what would be valid.
//
// The types here are plain data. Packages that act on them (jwks, authn, proxy)
// convert them into their own Config structs; nothing parsed is ever written
// back into a [Config].
package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file.
type Config struct {
	Server  Server   `yaml:"server"`
	Admin   Admin    `yaml:"admin"`
	Log     Log      `yaml:"log"`
	Issuers []Issuer `yaml:"issuers"`
	// Login, when set, sends browsers without a session through the
	// OpenID Connect login. Nil when the login: key is absent; a login: key
	// with no value is an error.
	Login  *Login  `yaml:"login,omitempty"`
	Routes []Route `yaml:"routes"`
	// Issuer, when set, runs the built-in OpenID provider. Nil when the
	// issuer: key is absent; an issuer: key with no value is an error.
	Issuer *BuiltinIssuer `yaml:"issuer,omitempty"`
	// Telemetry configures traces.
	Telemetry Telemetry `yaml:"telemetry"`

	// file is the name the configuration was loaded from, lines maps a key
	// path such as "routes[0].upstream" to its line in that file.
	file  string
	lines map[string]int
}

// Server configures the main (proxy) listener.
type Server struct {
	// Listen is the host:port of the proxy listener. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// PublicURL is the externally visible base URL of the gateway.
	// Default "http://" + Listen. Plain http on a non-loopback host needs
	// InsecureAllowHTTP.
	PublicURL string `yaml:"public_url"`
	// InsecureAllowHTTP permits a non-loopback PublicURL over plain http.
	InsecureAllowHTTP bool `yaml:"insecure_allow_http"`
	// TrustedProxies lists the CIDRs (or single IPs) whose X-Forwarded-*
	// headers are believed. Empty: nobody's are.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS, when both files are set, serves HTTPS on Listen.
	TLS TLS `yaml:"tls"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 0
	// (none; bound bodies per route with max_body_bytes).
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default 60s; lifted for
	// WebSocket upgrades and event streams.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout bounds keep-alive idleness. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers; larger requests
	// get 431. Default 32768.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections bounds the client connections open at once on the
	// proxy listener; one past it is closed as soon as it is accepted.
	// An idle connection costs about 14 KiB. Default 10000; 0 turns the
	// limit off.
	MaxConnections int `yaml:"max_connections"`
	// H2C accepts HTTP/2 with prior knowledge (cleartext, as ingress
	// controllers and load balancers speak it to a sidecar, and as gRPC
	// clients without TLS do) on the plain listener, besides HTTP/1.1.
	// Default false. A TLS listener negotiates HTTP/2 by ALPN without it.
	H2C bool `yaml:"h2c"`
	// ShutdownDelay is how long the listener keeps accepting and serving
	// after SIGTERM, with /readyz answering 503 from the first moment, so
	// that load balancers and Kubernetes endpoints stop sending before the
	// listener closes. Default 0 (stop accepting at once); 5s in the
	// Kubernetes examples.
	ShutdownDelay Duration `yaml:"shutdown_delay"`
	// ShutdownGrace is how long in-flight requests may run once the
	// listener has stopped accepting; upgraded connections (WebSockets)
	// still open then are closed. Default 20s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// AuthFailureDelay is the longest a connection that keeps failing
	// authentication waits for each further answer: after 8 failures in a
	// row without a success, each 401 is delayed, doubling from 25ms up to
	// this bound, so a flood of bad tokens cannot crowd out valid traffic.
	// Connections from TrustedProxies are never delayed. Default 1s; 0
	// turns the delay off.
	AuthFailureDelay Duration `yaml:"auth_failure_delay"`
	// TokenCache bounds the cache of verified tokens.
	TokenCache TokenCache `yaml:"token_cache"`
	// Rules bounds what the routes' rules may cost.
	Rules RuleLimits `yaml:"rules"`
	// DPoP configures how DPoP proofs (RFC 9449) are checked, beside
	// DPoP-bound tokens at the routes and at the built-in issuer's token
	// endpoint.
	DPoP DPoP `yaml:"dpop"`
}

// DPoP configures the checking of DPoP proofs. A token whose claims carry
// cnf.jkt is accepted only as "Authorization: DPoP" with a proof signed by
// that key; a proof is accepted once.
type DPoP struct {
	// Algorithms are the accepted proof algorithms: ES256, ES384, ES512,
	// RS256, RS384, RS512, PS256, PS384, PS512, EdDSA, Ed25519 (RFC 9864's
	// name for EdDSA over Ed25519; EdDSA accepts it too). Default [ES256,
	// ES384, RS256, PS256, EdDSA].
	Algorithms []string `yaml:"algorithms"`
	// MaxAge is how old a proof's iat may be, from 1s to 10m, plus the
	// issuer's leeway. Default 60s. Each proof is remembered that long (in
	// memory at most 100 000 at once; past that, proofs are refused with
	// 503 until the oldest age out).
	MaxAge Duration `yaml:"max_age"`
	// Nonce requires server nonces (RFC 9449 §8): a proof without the
	// current DPoP-Nonce gets use_dpop_nonce. Default false.
	Nonce bool `yaml:"nonce"`
	// ReplayStore is where proofs seen are remembered: memory (this
	// process), or a Redis URL redis://… or rediss://… that replicas
	// share, so a proof used at one is refused at all. Read at start only.
	// Default memory. The URL may hold a password.
	ReplayStore string `yaml:"replay_store"`
}

// RuleLimits bound the routes' rules, which are refused at load when their
// estimated cost is over MaxCost.
type RuleLimits struct {
	// MaxListSize is the number of elements a list from a claim (or the
	// request's headers) is assumed to hold at most when a rule's cost is
	// estimated. Default 100.
	MaxListSize int `yaml:"max_list_size"`
	// MaxCost bounds a rule's estimated cost, in CEL's cost units, and the
	// actual cost of a rule with a comprehension (all, exists, map,
	// filter) at each request. Default 100000.
	MaxCost int `yaml:"max_cost"`
}

// TokenCache bounds the cache of verified tokens: a token verified twice is
// remembered, by its SHA-256, until it expires, its key leaves the key set,
// or MaxAge passes. Revocation and each route's checks still run on every
// request.
type TokenCache struct {
	// Entries is how many tokens it holds at most. Default 20000; 0 turns
	// the cache off.
	Entries int `yaml:"entries"`
	// Bytes bounds the memory the cached identities hold, approximately.
	// Default 16777216 (16 MiB).
	Bytes int `yaml:"bytes"`
	// MaxAge is the longest a token stays cached. Default 5m.
	MaxAge Duration `yaml:"max_age"`
}

// TLS names a PEM certificate and key.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of the CAs client certificates are
	// checked against; set, the listener asks clients for certificates,
	// and tokens bound to one (RFC 8705 §3) pass with it. Needs cert_file
	// and key_file. Default "": no client certificates.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is optional (a client may send no certificate) or require
	// (the handshake fails without one). Default optional.
	ClientAuth string `yaml:"client_auth"`
	// ClientCertHeader, behind a proxy that ends TLS, is the header that
	// proxy puts the client's certificate in; believed only from
	// server.trusted_proxies.
	ClientCertHeader ClientCertHeader `yaml:"client_cert_header"`
}

// ClientCertHeader names the header a TLS-terminating proxy passes the
// client certificate in.
type ClientCertHeader struct {
	// Name is the header, such as X-Forwarded-Client-Cert. Default "":
	// none is read.
	Name string `yaml:"name"`
	// Format is xfcc (Envoy's Hash=…;Cert="…", the last element) or pem
	// (URL-escaped PEM, as nginx's $ssl_client_escaped_cert). Default
	// xfcc.
	Format string `yaml:"format"`
}

// Admin configures the admin listener (/metrics, /healthz, /readyz).
type Admin struct {
	// Listen is the host:port of the admin listener. Default "127.0.0.1:9090".
	// Empty string after defaults is impossible; "off" disables it.
	Listen string `yaml:"listen"`
	// Token is the bearer secret of POST /admin/sessions/revoke (and of
	// portcullis revoke), at least 16 characters; keep it in the
	// environment. Default "": that endpoint is off.
	Token string `yaml:"token"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Issuer is a token issuer trusted for validation.
type Issuer struct {
	// Issuer is the exact "iss" value; discovery is fetched from
	// Issuer + "/.well-known/openid-configuration" unless JWKSURI is set.
	Issuer string `yaml:"issuer"`
	// JWKSURI, when set, skips discovery.
	JWKSURI string `yaml:"jwks_uri"`
	// Audiences are accepted "aud" values for routes that name none.
	Audiences []string `yaml:"audiences"`
	// Algorithms is the allow-list of JWS algorithms. Default [ES256, RS256].
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the clock skew allowed for exp, nbf and iat. Default 30s.
	Leeway Duration `yaml:"leeway"`
	// Typ, when set, is the required JOSE "typ" header (e.g. "at+jwt",
	// RFC 9068), compared case-insensitively, "application/" optional.
	Typ string `yaml:"typ"`
	// HMACSecret enables HS256/384/512 for this issuer only, verified with
	// this secret only. At least 32 bytes. Without JWKSURI, an issuer with a
	// secret fetches no keys at all.
	HMACSecret string `yaml:"hmac_secret"`
	// JWKSMinAge and JWKSMaxAge bound how long a fetched key set is used
	// before a background refresh, whatever its Cache-Control says.
	// Defaults 1m and 1h.
	JWKSMinAge Duration `yaml:"jwks_min_age"`
	JWKSMaxAge Duration `yaml:"jwks_max_age"`
	// JWKSRefetchInterval is the minimum time between refetches caused by
	// an unknown "kid". Default 10s.
	JWKSRefetchInterval Duration `yaml:"jwks_refetch_interval"`
	// JWKSFetchTimeout bounds each discovery and key set request, from
	// dialing to the end of the body, from 100ms to 1m. Default 5s. Until a
	// key set first loads, requests wait for the first fetch at most this
	// long; after a failed one they answer 503 at once.
	JWKSFetchTimeout Duration `yaml:"jwks_fetch_timeout"`
}

// Auth modes of a route.
const (
	AuthRequired = "required"
	AuthOptional = "optional"
	AuthPublic   = "public"
)

// Forward-token modes of a route besides a header name.
const (
	ForwardTokenNone          = "none"
	ForwardTokenAuthorization = "authorization"
)

// Route sends matching requests to one upstream under one policy.
type Route struct {
	// Name identifies the route in logs and metrics; unique.
	Name string `yaml:"name"`
	// Host, when set, is the host (without port) the route serves, or a
	// wildcard "*.example.com" for one label under example.com. The host
	// is chosen first: a request for a host that routes name is served only
	// by those routes (an exact host before a wildcard); other hosts by the
	// routes without a host.
	Host string `yaml:"host"`
	// PathPrefix is matched on whole segments of the cleaned path; among
	// the routes for the request's host the longest match wins. Default "/".
	PathPrefix string `yaml:"path_prefix"`
	// Upstream is the http(s) URL requests are sent to.
	Upstream string `yaml:"upstream"`
	// PreserveHost sends the client's Host header upstream instead of the
	// upstream URL's host.
	PreserveHost bool `yaml:"preserve_host"`
	// Auth is required, optional or public. Default required.
	Auth string `yaml:"auth"`
	// OnUnauthenticated is what a request without a valid token gets: auto
	// (browser navigations are sent to the login, others get 401), login
	// (always sent to the login) or deny (always 401). Default auto. login
	// needs a login: section; without one, auto denies too.
	OnUnauthenticated string `yaml:"on_unauthenticated"`
	// Audiences, when set, replace the issuers' audiences for this route.
	Audiences []string `yaml:"audiences"`
	// Resource is the route's OAuth protected-resource identifier (RFC
	// 9728, RFC 8707): an absolute http(s) URL without query, fragment or
	// user info, plain http only on a loopback host unless
	// server.insecure_allow_http. Only on routes with auth required or
	// optional; no two routes have the same one. Default "": for a route
	// without host, server.public_url (without trailing slash) + path_prefix
	// (without trailing slash); for an exact host, public_url's scheme +
	// "://" + host (+ public_url's port) + path_prefix; for a wildcard host,
	// none. See [Config.RouteResource].
	Resource string `yaml:"resource"`
	// ResourceName is the human-readable name of the resource in its
	// protected-resource metadata (RFC 9728 resource_name). Default "".
	ResourceName string `yaml:"resource_name"`
	// ResourceDocumentation is the absolute http(s) URL of a page about the
	// resource for developers (RFC 9728 resource_documentation).
	// Default "".
	ResourceDocumentation string `yaml:"resource_documentation"`
	// RequireScopes must all be granted by the token ("scope" or "scp").
	RequireScopes []string `yaml:"require_scopes"`
	// RequireClaims maps a claim to the values it must have: a string claim
	// must equal one of them, an array claim must contain one of them.
	RequireClaims map[string]StringList `yaml:"require_claims"`
	// ForwardHeaders maps an upstream header name to the claim it carries.
	// A claim name is looked up as is, then as a dotted path
	// ("realm_access.roles"). Arrays are joined with commas; missing claims
	// send no header.
	ForwardHeaders map[string]string `yaml:"forward_headers"`
	// ForwardToken is none, authorization, or a header name to send the
	// verified token in. Default none.
	ForwardToken string `yaml:"forward_token"`
	// TokenFrom lists where tokens are looked for: header, "cookie:NAME",
	// "query:NAME". Default [header].
	TokenFrom []string `yaml:"token_from"`
	// Timeout bounds waiting for the upstream's response headers.
	// Default 30s.
	Timeout Duration `yaml:"timeout"`
	// UpstreamCAFile, for an https upstream, is a PEM bundle of the CAs its
	// certificate is checked against. Default "": the system roots.
	UpstreamCAFile string `yaml:"upstream_ca_file"`
	// MaxBodyBytes bounds request bodies (413 past it). 0 means no limit.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Methods, when set, are the only methods the route serves; any other
	// gets 405 with Allow, before authentication. HEAD is not implied by
	// GET.
	Methods []string `yaml:"methods,omitempty"`
	// CORSPreflight is check (a CORS preflight is a request like any
	// other) or pass (an OPTIONS request with Origin and
	// Access-Control-Request-Method goes to the upstream without a token,
	// whatever methods and rules say, as browsers send preflights without
	// credentials). Default check.
	CORSPreflight string `yaml:"cors_preflight"`
	// RequireSenderConstraint refuses tokens that are not
	// sender-constrained on the route: dpop (DPoP-bound, RFC 9449), mtls
	// (bound to the client certificate, RFC 8705) or any (either); a plain
	// bearer token gets 401. Default "": bearer tokens and bound tokens
	// (with their proof or certificate) alike.
	RequireSenderConstraint string `yaml:"require_sender_constraint"`
	// Rules are CEL expressions evaluated in order after authentication
	// and require_scopes/require_claims; the first that is true decides,
	// and when none is, the request is denied (403).
	Rules []RouteRule `yaml:"rules,omitempty"`
}

// CORS preflight modes of a route.
const (
	CORSPreflightCheck = "check"
	CORSPreflightPass  = "pass"
)

// RouteRule is one rule of a route: exactly one of Allow and Deny holds
// a CEL expression over claims, scopes, request and now.
type RouteRule struct {
	// Name names the rule in metrics, logs and denials; default its index.
	Name  string `yaml:"name"`
	Allow string `yaml:"allow"`
	Deny  string `yaml:"deny"`
}

// Duration is a time.Duration written in Go syntax ("30s", "12h").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 30s or 12h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 30s, 5m or 12h", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// StringList is a YAML scalar or sequence of scalars.
type StringList []string

// UnmarshalYAML accepts "a" as well as [a, b].
func (s *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(StringList, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("want a string or a list of strings")
			}
			out = append(out, c.Value)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("want a string or a list of strings")
}
