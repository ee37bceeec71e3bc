// Package issuer is portcullis' built-in OpenID provider: discovery, the
// authorization endpoint with its login and consent pages, the token
// endpoint (authorization code with PKCE, refresh-token rotation, client
// credentials), userinfo, revocation (RFC 7009), introspection (RFC 7662),
// RP-initiated logout, and back-channel logout (OpenID Connect Back-Channel
// Logout 1.0) to the clients of a session that ends. Users and clients come
// from configuration; state lives in a [Store].
//
// It follows RFC 9700 (OAuth 2.0 Security BCP): exact redirect URI
// matching, PKCE S256 (plain refused), single-use codes whose replay revokes
// what they issued, refresh-token rotation with reuse detection, and the
// RFC 9207 "iss" authorization response parameter.
package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/jwks"
	"go.opentelemetry.io/otel/trace"
)

// Client is a registered OAuth client.
type Client struct {
	ID   string
	Name string // shown on the login and consent pages; defaults to ID
	// Secret is a plain client secret; SecretHash a bcrypt hash. A
	// confidential client has exactly one; a public client neither.
	Secret     string
	SecretHash string
	Public     bool
	// FirstParty clients get no consent page.
	FirstParty             bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// GrantTypes: authorization_code, refresh_token, client_credentials.
	GrantTypes []string
	// Scopes the client may be granted.
	Scopes []string
	// Audiences are the "aud" of the client's access tokens; default [ID].
	Audiences []string
	// BackchannelLogoutURI, when set, is where the issuer POSTs a logout
	// token (OpenID Connect Back-Channel Logout 1.0) when a session the
	// client took part in ends: on sign-out at the issuer, on
	// [Issuer.EndUserSessions], and when reuse of one of the client's
	// refresh tokens revokes its family. An absolute http or https URL
	// without a fragment; empty means the client is not told.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired says the client needs the "sid"
	// claim in its logout tokens. The issuer sends sid whenever it knows
	// the session, and with this set sends no logout token without one.
	BackchannelLogoutSessionRequired bool
	// DPoPBoundAccessTokens requires a DPoP proof with every token request
	// of the client (RFC 9449 §5.2): it only ever gets bound tokens.
	DPoPBoundAccessTokens bool

	// registered marks a client from dynamic registration: it always sees
	// the consent page, never remembered, and its loopback redirect URIs
	// match on any port (RFC 8252 §7.3).
	registered bool
	// secretSHA is a registered confidential client's secret hash (see
	// [RegisteredClient.SecretHash]).
	secretSHA string
}

// User is a person who can sign in.
type User struct {
	Username     string
	Subject      string // "sub"; defaults to Username
	PasswordHash string // bcrypt
	Claims       map[string]any
}

// Signer signs tokens and publishes the verification keys. *jwks.KeyRing
// implements it.
type Signer interface {
	Active() jwks.SigningKey
	Keys(ctx context.Context, kid string) ([]jwks.Key, error)
	JWKSHandler() http.Handler
}

// Config configures an [Issuer].
type Config struct {
	// URL is the issuer identifier, byte-identical in discovery, tokens and
	// authorization responses. Endpoints live under its path.
	URL string
	// Keys signs tokens. Required.
	Keys Signer
	// Store keeps codes, refresh tokens, revocations and sessions. Required.
	Store   Store
	Clients []Client
	Users   []User
	// ScopeDescriptions describe non-standard scopes on the consent page.
	ScopeDescriptions map[string]string
	// Token and session lifetimes; zero values take the defaults
	// 15m, AccessTTL, 720h, 12h, 720h, 60s. A negative ConsentTTL never
	// remembers consent: every authorization asks.
	AccessTTL, IDTokenTTL, RefreshTTL, SessionTTL, ConsentTTL, CodeTTL time.Duration
	// RefreshRetryGrace is how long after a rotation the rotated refresh
	// token, presented again by its client while the new pair is unused,
	// gets that same pair (a reply lost to a fault does not strand the
	// client). Zero turns it off: every reuse revokes the family.
	RefreshRetryGrace time.Duration
	// Sign-in throttling, which no one can turn into a lockout of others
	// (OWASP's device cookies). A browser that has signed in as a user
	// holds a signed device cookie naming that user (for DeviceTTL, kept
	// across sign-outs). Failed sign-ins for a user from browsers without
	// one are counted per LoginWindow; past LoginAttempts such attempts
	// fail like a wrong password, right or wrong, while the user's known
	// browsers are never refused. Failed sign-ins from one client address
	// are counted too; past AddressAttempts each answer to that address
	// waits, from 250ms doubling per failure up to AddressMaxDelay, but is
	// never refused. Defaults 10 per 15m, 10, 30s and 90 days.
	LoginAttempts   int
	LoginWindow     time.Duration
	AddressAttempts int
	AddressMaxDelay time.Duration
	DeviceTTL       time.Duration
	// Sleep waits for the address delay and between the attempts of a
	// back-channel logout delivery; nil means a timer that ctx cancels. A
	// replacement should return early when ctx is done.
	Sleep func(ctx context.Context, d time.Duration)
	// ClientAddr returns the address login attempts are counted under; nil
	// means the connection's address. Behind a load balancer, pass one that
	// believes X-Forwarded-For from trusted proxies only.
	ClientAddr func(*http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Tracer, when set, gives token requests a span of their own. Nil
	// traces nothing.
	Tracer trace.Tracer
	// LoginFailed, when set, is told the reason of every failed sign-in:
	// LoginFailureBadPassword, LoginFailureUnknownUser or
	// LoginFailureThrottled.
	LoginFailed func(reason string)
	// HTTPClient delivers back-channel logout tokens to clients; nil means
	// a client with a 5s timeout that follows no redirects. Every attempt
	// is cut at 5s whatever the client's own timeout.
	HTTPClient *http.Client
	// LogoutSent, when set, is told the result of every back-channel
	// logout token once it is settled: LogoutSentOK, LogoutSentRejected or
	// LogoutSentFailed. It is called from the delivering goroutine and
	// must be safe for concurrent use.
	LogoutSent func(result string)
	// Resources are the resource indicators (RFC 8707) the issuer issues
	// access tokens for: a request naming any other gets invalid_target.
	// An access token asked for resources has them, and only them, as its
	// "aud". Each is an absolute URI without fragment, compared byte for
	// byte.
	Resources []string
	// DPoP, when set, binds access tokens to the key of the DPoP proof a
	// token request carries (RFC 9449): cnf.jkt, token_type DPoP, and a
	// public client's refresh tokens to that key too. Nil refuses token
	// requests with a DPoP header.
	DPoP *dpop.Verifier
	// Registration, when set, opens dynamic client registration (RFC 7591)
	// at the issuer's /register endpoint; nil serves none.
	Registration *Registration
}

// Reasons a sign-in on the login page fails, as Config.LoginFailed is told.
const (
	LoginFailureBadPassword = "bad_password" // a known user, the wrong password
	LoginFailureUnknownUser = "unknown_user"
	LoginFailureThrottled   = "throttled" // too many failures for the user or the address
)

// Issuer is the OpenID provider, an http.Handler for every path under the
// issuer URL's path. Build it with [New]; it is safe for concurrent use.
type Issuer struct {
	cfg       Config
	url       string
	base      string // path prefix, "" for a host-root issuer
	secure    bool   // https: Secure cookies, __Host- names
	clients   map[string]*Client
	users     map[string]*User // by username
	bySubject map[string]*User
	discovery []byte
	mux       *http.ServeMux
	now       func() time.Time
	log       *slog.Logger
	dummyHash []byte
	logouts   *logoutSender
	resources atomic.Pointer[map[string]bool] // see SetResources
	reg       *registration                   // nil: registration is off
}

// New checks cfg and builds the Issuer. Release it with [Issuer.Close].
func New(cfg Config) (*Issuer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("issuer: url %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.Keys == nil || cfg.Store == nil {
		return nil, errors.New("issuer: keys and store are required")
	}
	setDefaults(&cfg)
	i := &Issuer{
		cfg:       cfg,
		url:       strings.TrimSuffix(cfg.URL, "/"),
		base:      strings.TrimSuffix(u.EscapedPath(), "/"),
		secure:    u.Scheme == "https",
		clients:   map[string]*Client{},
		users:     map[string]*User{},
		bySubject: map[string]*User{},
		now:       cfg.Now,
		log:       cfg.Logger,
	}
	for k := range cfg.Clients {
		c := cfg.Clients[k]
		if c.Name == "" {
			c.Name = c.ID
		}
		if len(c.Audiences) == 0 {
			c.Audiences = []string{c.ID}
		}
		if _, dup := i.clients[c.ID]; dup {
			return nil, fmt.Errorf("issuer: client %q configured twice", c.ID)
		}
		if err := checkBackchannelURI(c.BackchannelLogoutURI); err != nil {
			return nil, fmt.Errorf("issuer: client %q: %w", c.ID, err)
		}
		i.clients[c.ID] = &c
	}
	for k := range cfg.Users {
		usr := cfg.Users[k]
		if usr.Subject == "" {
			usr.Subject = usr.Username
		}
		i.users[usr.Username] = &usr
		i.bySubject[usr.Subject] = &usr
	}
	if i.dummyHash, err = dummyBcrypt(cfg.Users); err != nil {
		return nil, err
	}
	i.SetResources(cfg.Resources)
	if cfg.Registration != nil {
		if i.reg, err = newRegistration(*cfg.Registration); err != nil {
			return nil, err
		}
	}
	if i.discovery, err = i.buildDiscovery(); err != nil {
		return nil, err
	}
	i.mux = i.routes()
	i.logouts = newLogoutSender(cfg)
	return i, nil
}

func setDefaults(c *Config) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTTL, 15*time.Minute)
	def(&c.IDTokenTTL, c.AccessTTL)
	def(&c.RefreshTTL, 720*time.Hour)
	def(&c.SessionTTL, 12*time.Hour)
	if c.ConsentTTL == 0 {
		c.ConsentTTL = 720 * time.Hour
	}
	def(&c.CodeTTL, 60*time.Second)
	def(&c.LoginWindow, 15*time.Minute)
	if c.LoginAttempts <= 0 {
		c.LoginAttempts = 10
	}
	if c.AddressAttempts <= 0 {
		c.AddressAttempts = 10
	}
	def(&c.AddressMaxDelay, 30*time.Second)
	def(&c.DeviceTTL, 90*24*time.Hour)
	if c.Sleep == nil {
		c.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ClientAddr == nil {
		c.ClientAddr = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
}

// PathPrefix is the path under which the issuer serves, "" for the root.
func (i *Issuer) PathPrefix() string { return i.base }

// SetResources replaces Config.Resources, the resource indicators the
// issuer issues tokens for, while it runs: a configuration reload that
// changes the gateway's routes keeps the issuer, its keys and its state.
// Requests already past the check are not affected.
func (i *Issuer) SetResources(resources []string) {
	m := make(map[string]bool, len(resources))
	for _, r := range resources {
		m[r] = true
	}
	i.resources.Store(&m)
}

// RootPaths are the paths the issuer serves outside its PathPrefix: for an
// issuer with a path, its metadata at the path-inserted well-known URIs
// (RFC 8414 §3.1); none for a host-root issuer.
func (i *Issuer) RootPaths() []string {
	if i.base == "" {
		return nil
	}
	return []string{"/.well-known/oauth-authorization-server" + i.base, "/.well-known/openid-configuration" + i.base}
}

// URL is the issuer identifier.
func (i *Issuer) URL() string { return i.url }

// ServeHTTP serves the issuer's endpoints.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) { i.mux.ServeHTTP(w, r) }

func (i *Issuer) routes() *http.ServeMux {
	mux := http.NewServeMux()
	p := i.base
	mux.HandleFunc("GET "+p+"/.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET "+p+"/.well-known/oauth-authorization-server", i.serveDiscovery)
	if p != "" {
		// RFC 8414 §3.1: for an issuer with a path, the metadata is at the
		// well-known URI with the path inserted after it. Some clients look
		// for OpenID's document the same way.
		mux.HandleFunc("GET /.well-known/oauth-authorization-server"+p, i.serveDiscovery)
		mux.HandleFunc("GET /.well-known/openid-configuration"+p, i.serveDiscovery)
	}
	if i.reg != nil {
		mux.HandleFunc(p+"/register", postOnly(i.register))
	}
	mux.Handle("GET "+p+"/jwks", i.cfg.Keys.JWKSHandler())
	mux.HandleFunc(p+"/authorize", i.authorize)
	mux.HandleFunc(p+"/token", postOnly(i.token))
	mux.HandleFunc(p+"/userinfo", i.userinfo)
	mux.HandleFunc(p+"/revoke", postOnly(i.revoke))
	mux.HandleFunc(p+"/introspect", postOnly(i.introspect))
	mux.HandleFunc(p+"/logout", i.logout)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		i.errorPage(w, http.StatusNotFound, "Not found", "There is nothing here.")
	})
	return mux
}

// postOnly answers 405 with an OAuth error to anything but POST.
func postOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeOAuthError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST"})
			return
		}
		h(w, r)
	}
}

// buildDiscovery makes the OpenID Provider Metadata once (OIDC Discovery
// §3, RFC 8414). It is built from configuration, never from a request's
// Host header.
func (i *Issuer) buildDiscovery() ([]byte, error) {
	scopes := []string{"openid", "profile", "email", "offline_access"}
	grants := map[string]bool{}
	for _, c := range i.clients {
		for _, s := range c.Scopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		for _, g := range c.GrantTypes {
			grants[g] = true
		}
	}
	if i.reg != nil {
		for _, s := range i.reg.cfg.Scopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
		for _, g := range i.reg.cfg.GrantTypes {
			grants[g] = true
		}
	}
	grantList := []string{}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
		if grants[g] {
			grantList = append(grantList, g)
		}
	}
	claims := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid"}
	for _, u := range i.users {
		for k := range u.Claims {
			if !slices.Contains(claims, k) {
				claims = append(claims, k)
			}
		}
	}
	slices.Sort(claims)
	alg := i.cfg.Keys.Active().Algorithm
	doc := map[string]any{
		"issuer":                                         i.url,
		"authorization_endpoint":                         i.url + "/authorize",
		"token_endpoint":                                 i.url + "/token",
		"userinfo_endpoint":                              i.url + "/userinfo",
		"jwks_uri":                                       i.url + "/jwks",
		"revocation_endpoint":                            i.url + "/revoke",
		"introspection_endpoint":                         i.url + "/introspect",
		"end_session_endpoint":                           i.url + "/logout",
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          grantList,
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{alg},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               scopes,
		"claims_supported":                               claims,
		"prompt_values_supported":                        []string{"none", "login", "consent"},
		"authorization_response_iss_parameter_supported": true,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	}
	if i.reg != nil {
		doc["registration_endpoint"] = i.url + "/register"
	}
	if i.cfg.DPoP != nil {
		doc["dpop_signing_alg_values_supported"] = i.cfg.DPoP.Algorithms()
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(i.discovery)
}

// hashToken is the storage key of a code or refresh token: SHA-256,
// base64url. The raw value is never stored.
func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var _ http.Handler = (*Issuer)(nil)

// displayName is the client's name as the pages show it.
func (c *Client) displayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// home is where "Sign in again" takes a browser signed out of c: the
// origin of its first redirect URI, the application, which sends the
// browser to sign in; "" for a nil or a machine client.
func (c *Client) home() string {
	if c == nil || len(c.RedirectURIs) == 0 {
		return ""
	}
	u, err := url.Parse(c.RedirectURIs[0])
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/"
}
