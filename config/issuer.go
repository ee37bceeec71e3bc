package config

import (
	"math"
	"net/url"
	"reflect"
	"time"
)

// BuiltinIssuer configures the built-in OpenID provider: the issuer: section.
// [Config.Issuer] is nil when the section is absent; then portcullis only
// verifies tokens from the issuers it lists.
//
// To have the gateway accept the built-in issuer's tokens, list URL under
// issuers as well; its jwks_uri may stay empty, the keys are taken in-process.
type BuiltinIssuer struct {
	// URL is the issuer identifier, the exact "iss" of the tokens it signs,
	// and the base of its endpoints. Required: an absolute http(s) URL
	// without query, fragment or trailing slash; plain http on a host that
	// is not loopback needs server.insecure_allow_http.
	URL string `yaml:"url"`
	// Signing chooses the signing algorithm and where keys are kept.
	Signing IssuerSigning `yaml:"signing"`
	// AccessTokenTTL is the lifetime of access tokens, from 1m to 24h.
	// Default 15m.
	AccessTokenTTL Duration `yaml:"access_token_ttl"`
	// IDTokenTTL is the lifetime of ID tokens, from 1m to 24h. Default
	// AccessTokenTTL.
	IDTokenTTL Duration `yaml:"id_token_ttl"`
	// RefreshTokenTTL is the lifetime of a refresh-token family, at least
	// AccessTokenTTL. Default 720h.
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
	// SessionTTL is the lifetime of the issuer's own browser login session,
	// at least 1m. Default 12h.
	SessionTTL Duration `yaml:"session_ttl"`
	// ConsentTTL is how long a user's consent to a client's scopes is
	// remembered. Default 720h; an explicit 0 asks every time.
	ConsentTTL Duration `yaml:"consent_ttl"`
	// Store is where codes, refresh tokens, sessions and consents live:
	// [StoreMemory] (one process only, lost on restart), or a Redis URL
	// redis://[:password@]host[:port][/db] or rediss://… for TLS. Default
	// memory. The URL may hold a password: log it with [RedactStore].
	Store string `yaml:"store"`
	// StoreTimeout bounds each call to a Redis store, retries included,
	// from 10ms to 30s. Default 1s. A call that runs out answers 503 for
	// what needs the store; nothing is half-written (every decision is one
	// atomic script).
	StoreTimeout Duration `yaml:"store_timeout"`
	// RefreshRetryGrace is how long after a refresh token was rotated the
	// same client may present it again and get the very pair it was
	// rotated to, as long as that pair is unused: a reply lost to a fault
	// does not strand the client. Any other reuse revokes the family. From
	// 0s (off) to 1m. Default 10s.
	RefreshRetryGrace Duration `yaml:"refresh_retry_grace"`
	// LoginRateLimit bounds failed logins.
	LoginRateLimit LoginRateLimit `yaml:"login_rate_limit"`
	// Clients are the relying parties allowed to get tokens. Default none.
	Clients []IssuerClient `yaml:"clients"`
	// Scopes maps a scope to its description on the consent page. After
	// defaults it holds the built-in descriptions of openid, profile, email
	// and offline_access too, unless the file sets its own. Every scope a
	// client may get is described here.
	Scopes map[string]string `yaml:"scopes"`
	// Users are the accounts that can log in. Default none.
	Users []IssuerUser `yaml:"users"`
	// Resources are resource identifiers (RFC 8707) the issuer issues
	// tokens for besides the gateway's routes, such as APIs elsewhere,
	// under the rules of routes[].resource. Default []. See
	// [Config.ProtectedResources].
	Resources []string `yaml:"resources"`
	// Registration configures dynamic client registration (RFC 7591).
	// Off by default.
	Registration IssuerRegistration `yaml:"registration"`
}

// IssuerRegistration configures dynamic client registration (RFC 7591) at
// the built-in issuer: clients that register themselves, as MCP clients
// and native apps do. Registered clients are public clients using PKCE.
// Its keys are checked even when Enabled is false.
type IssuerRegistration struct {
	// Enabled serves the registration endpoint. Default false.
	Enabled bool `yaml:"enabled"`
	// RedirectURIs are the patterns (see package internal/uripattern) a
	// registered redirect URI must match: absolute http(s) URLs without
	// fragment or user info whose host may start with "*." (one label) and
	// whose port may be "*"; plain http only on a loopback host unless
	// server.insecure_allow_http. Loopback URIs http://127.0.0.1:PORT/… and
	// http://[::1]:PORT/… (RFC 8252 §7.3) are always allowed besides these.
	// Default [].
	RedirectURIs []string `yaml:"redirect_uris"`
	// GrantTypes are the grants a registered client may get:
	// authorization_code, and refresh_token (only with
	// authorization_code). Default [authorization_code, refresh_token].
	GrantTypes []string `yaml:"grant_types"`
	// Scopes are the scopes a registered client may be granted, each built
	// in or described under issuer.scopes. Default [openid, profile, email,
	// offline_access].
	Scopes []string `yaml:"scopes"`
	// MaxClients bounds the registered clients, at least 1; past it
	// registration fails. Default 1000.
	MaxClients int `yaml:"max_clients"`
	// UnusedTTL is how long a registered client that has never been used
	// is kept before it is removed, at least 1m. Default 720h.
	UnusedTTL Duration `yaml:"unused_ttl"`
	// InitialAccessToken, when set, is the bearer token a client must send
	// to register (RFC 7591 §3), at least 16 bytes; keep it in the
	// environment. Default "": anyone who reaches the issuer may register.
	InitialAccessToken string `yaml:"initial_access_token"`
}

// IssuerSigning configures the built-in issuer's signing keys.
type IssuerSigning struct {
	// Algorithm is ES256, ES384, RS256, PS256 or EdDSA. Default ES256.
	Algorithm string `yaml:"algorithm"`
	// KeyDir is the directory signing keys are kept in. Default "": keys
	// live in memory only and are lost on restart, which logs out every
	// session and invalidates every token issued.
	KeyDir string `yaml:"key_dir"`
	// RotateEvery is how often a new signing key is made; the old one stays
	// published until the tokens it signed expire. Default 0: never. When
	// set, at least 1h.
	RotateEvery Duration `yaml:"rotate_every"`
	// KeyFiles are PEM private keys given from outside, such as a Secret
	// mounted into every replica, so all of them sign and publish the same
	// keys: the first signs, all are published, nothing is generated or
	// rotated. Default []. Excludes KeyDir and RotateEvery.
	KeyFiles []string `yaml:"key_files"`
}

// LoginRateLimit throttles failed sign-ins at the login page so that no
// one can turn it into a lockout of others (OWASP's device cookies). A
// browser that has signed in as a user holds a signed device cookie naming
// that user; its failures lock no one and a lock never refuses it.
type LoginRateLimit struct {
	// Attempts is how many failed sign-ins for one username, from browsers
	// without its device cookie, are allowed per Window, at least 1. Past
	// it such attempts fail like a wrong password, right or wrong, until
	// the window ends. Default 10.
	Attempts int `yaml:"attempts"`
	// Window is the period failures are counted over, at least 1s.
	// Default 15m.
	Window Duration `yaml:"window"`
	// AddressAttempts is how many failed sign-ins from one client address
	// are answered at once per Window; past it each answer to the address
	// waits, 250ms doubling per failure, up to MaxDelay. Addresses are
	// slowed, never refused. Default 10.
	AddressAttempts int `yaml:"address_attempts"`
	// MaxDelay bounds that wait, from 1s to 5m. Default 30s.
	MaxDelay Duration `yaml:"max_delay"`
	// DeviceTTL is how long a device cookie is good for, at least 1h. It
	// outlives sign-outs: it names a browser, not a session. Default
	// 2160h (90 days).
	DeviceTTL Duration `yaml:"device_ttl"`
}

// Grant types a client of the built-in issuer may use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// StoreMemory is the [BuiltinIssuer.Store] that keeps state in the process.
const StoreMemory = "memory"

// IssuerClient is a relying party of the built-in issuer.
type IssuerClient struct {
	// ID is the client_id: required, unique, made of letters, digits and
	// "_", ".", ":", "-".
	ID string `yaml:"id"`
	// Name is shown on the login and consent pages. Default ID.
	Name string `yaml:"name"`
	// Secret is a confidential client's secret, at least 16 bytes; keep it
	// in the environment. Default "". A confidential client has Secret or
	// SecretHash, never both; a public one has neither.
	Secret string `yaml:"secret"`
	// SecretHash is a bcrypt hash of the secret, instead of Secret.
	// Default "".
	SecretHash string `yaml:"secret_hash"`
	// Public marks a client that cannot keep a secret (a single-page or
	// native app): it has no secret, must use PKCE and cannot use
	// client_credentials. Default false.
	Public bool `yaml:"public"`
	// FirstParty skips the consent page, for the gateway's own client.
	// Default false.
	FirstParty bool `yaml:"first_party"`
	// RedirectURIs are the exact redirect_uri values accepted: absolute
	// http(s) URLs without fragment or wildcard, plain http only on a
	// loopback host unless server.insecure_allow_http. Required with the
	// authorization_code grant. Default none.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values
	// accepted, under the same rules. Default none.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes are the grants the client may use: authorization_code,
	// refresh_token (only with authorization_code) and client_credentials
	// (only for confidential clients). Default [authorization_code,
	// refresh_token].
	GrantTypes []string `yaml:"grant_types"`
	// Scopes are the scopes the client may be granted. Default [openid,
	// profile, email, offline_access].
	Scopes []string `yaml:"scopes"`
	// Audiences are the "aud" values of the access tokens the client gets.
	// Default [ID].
	Audiences []string `yaml:"audiences"`
	// BackchannelLogoutURI is where the issuer POSTs logout tokens when a
	// session the client took part in ends (OpenID Connect Back-Channel
	// Logout 1.0), under the rules of redirect_uris, without a query.
	// Default "": none, except for the gateway's own client when
	// login.backchannel_logout is on, which gets the gateway's endpoint.
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// BackchannelLogoutSessionRequired says the client needs the sid
	// claim in logout tokens (the issuer always sends it). Default false.
	BackchannelLogoutSessionRequired bool `yaml:"backchannel_logout_session_required"`
	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449) with every
	// token request of the client: its tokens are always bound to its key.
	// Default false.
	DPoPBoundAccessTokens bool `yaml:"dpop_bound_access_tokens"`
}

// IssuerUser is an account of the built-in issuer.
type IssuerUser struct {
	// Username is what the user types on the login page: required, unique.
	Username string `yaml:"username"`
	// PasswordHash is a bcrypt hash of the password ($2a$, $2b$ or $2y$),
	// as "portcullis hash-password" prints it. Required.
	PasswordHash string `yaml:"password_hash"`
	// Subject is the "sub" of the user's tokens, unique. Default Username.
	Subject string `yaml:"subject"`
	// Claims are added to the user's tokens and userinfo: any values JSON
	// can hold (strings, numbers, booleans, null, []any and map[string]any,
	// nested). They must not set the claims the issuer owns
	// ([ReservedClaims]). Default none.
	Claims map[string]any `yaml:"claims"`
}

// reservedClaims are the claims the built-in issuer sets itself.
var reservedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "azp",
	"at_hash", "auth_time", "sid", "scope", "client_id",
}

// ReservedClaims returns the claims the built-in issuer sets itself, which
// [IssuerUser.Claims] must not hold.
func ReservedClaims() []string { return append([]string(nil), reservedClaims...) }

// builtinScopes are the scopes the built-in issuer knows, with the
// descriptions it shows on the consent page.
var builtinScopes = map[string]string{
	"openid":         "Sign you in",
	"profile":        "See your name and profile",
	"email":          "See your email address",
	"offline_access": "Stay signed in when you are away",
}

// Defaults of the built-in issuer, as documented on [BuiltinIssuer].
const (
	defaultSigningAlgorithm     = "ES256"
	defaultAccessTokenTTL       = 15 * time.Minute
	defaultRefreshTokenTTL      = 720 * time.Hour
	defaultSessionTTL           = 12 * time.Hour
	defaultConsentTTL           = 720 * time.Hour
	defaultLoginAttempts        = 10
	defaultLoginWindow          = 15 * time.Minute
	defaultLoginAddressAttempts = 10
	defaultLoginMaxDelay        = 30 * time.Second
	defaultDeviceTTL            = 2160 * time.Hour
	defaultRegistrationMax      = 1000
	defaultRegistrationUnused   = 720 * time.Hour
)

var (
	defaultGrantTypes   = []string{GrantAuthorizationCode, GrantRefreshToken}
	defaultClientScopes = []string{"openid", "profile", "email", "offline_access"}
)

// jsonValue returns a copy of v with every map made a map[string]any, as
// JSON needs, and reports whether v holds only what JSON can: nil, strings,
// booleans, finite numbers, lists ([]any) and maps with string keys.
func jsonValue(v any) (any, bool) {
	switch x := v.(type) {
	case nil, string, bool:
		return v, true
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var ok bool
			if out[k], ok = jsonValue(e); !ok {
				return v, false
			}
		}
		return out, true
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			s, isString := k.(string)
			if !isString {
				return v, false
			}
			var ok bool
			if out[s], ok = jsonValue(e); !ok {
				return v, false
			}
		}
		return out, true
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var ok bool
			if out[i], ok = jsonValue(e); !ok {
				return v, false
			}
		}
		return out, true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v, true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		return v, !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return v, false
}

// RedactStore returns a [BuiltinIssuer.Store] value fit for logs: a Redis
// URL with its password replaced by "xxxxx".
func RedactStore(store string) string {
	u, err := url.Parse(store)
	switch {
	case err != nil:
		return "(a store URL that does not parse)"
	case u.User == nil:
		return store
	}
	return u.Redacted()
}
