// Package oidcclient is the browser side of the gateway: it sends users
// without a session through the OpenID Connect authorization code flow with
// PKCE, state and nonce, verifies what comes back, and keeps the result in
// an encrypted session cookie that it refreshes before the access token
// expires. It works with any provider that publishes discovery (Keycloak,
// Google, Dex, Entra ID) and with portcullis' own issuer.
package oidcclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/pages"

	"github.com/portcullis-dev/portcullis/jwks"
)

// KeySource yields the provider's id_token verification keys.
// *jwks.Remote and *jwks.KeyRing implement it.
type KeySource interface {
	Keys(ctx context.Context, kid string) ([]jwks.Key, error)
}

// Endpoints are the provider's endpoints; when given, discovery is skipped.
type Endpoints struct {
	Authorization string
	Token         string
	EndSession    string // optional
}

// Config configures a [Client].
type Config struct {
	// Issuer is the provider's issuer identifier (exact "iss").
	Issuer       string
	ClientID     string
	ClientSecret string // empty: a public client, PKCE only
	Scopes       []string
	// RedirectURL is the absolute URL of the callback endpoint.
	RedirectURL string
	// PostLogoutRedirectURL is where the provider returns the browser after
	// sign-out.
	PostLogoutRedirectURL string
	// Prefix is the path of the gateway endpoints ("/oauth2").
	Prefix string
	// PublicURL is the gateway's public base URL; post-login redirects may
	// go to its host and to AllowedRedirectHosts.
	PublicURL            *url.URL
	AllowedRedirectHosts []string
	// Cookies seals the session and login-state cookies.
	Cookies    *CookieCodec
	CookieName string
	// SessionMaxAge bounds a session; RefreshBefore is how long before the
	// access token expires it is refreshed.
	SessionMaxAge, RefreshBefore time.Duration
	// ProviderTimeout bounds each call to the provider: discovery, the
	// code exchange with the id_token's check, a refresh. Default 10s.
	ProviderTimeout time.Duration
	// Keys verifies id_tokens. Required.
	Keys KeySource
	// Endpoints, when set, skip discovery.
	Endpoints *Endpoints
	// HTTPClient talks to the provider (discovery, token endpoint); nil
	// means a client with a 10s timeout.
	HTTPClient *http.Client
	// AccessTokenUsable reports whether an access token from the provider
	// can be verified as a bearer token for the gateway's routes. When it
	// cannot (opaque, or meant for another audience), the session's
	// identity comes from the id_token. Nil means never.
	AccessTokenUsable func(ctx context.Context, token string) bool
	// Sessions, when set, keeps sessions on the server: the cookie then
	// carries only a random session id, sealed, and signing out makes that
	// id worthless even to someone who copied the cookie. Nil keeps the
	// whole session in the cookie.
	Sessions SessionStore
	// SessionCacheEntries and SessionCacheBytes bound the cache of decoded
	// session cookies, which spares a browser repeating its cookie the
	// decryption and decoding; 0 means 10 000 entries and 16 MiB, a
	// negative SessionCacheEntries turns the cache off. A cached session
	// never outlives its cookie, and refresh and expiry are still decided
	// on every request. Sessions kept in Sessions are never cached.
	SessionCacheEntries int
	SessionCacheBytes   int
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// ClientAddr returns the client's address for the log; nil means the
	// connection's. Behind a load balancer, pass one that believes
	// X-Forwarded-For from trusted proxies only.
	ClientAddr func(*http.Request) string
	// AppName is what the pages call the application ("You declined
	// access for AppName"); "" means the public URL's host.
	AppName string
	// LoginFailed, when set, is told the reason of every failed sign-in:
	// LoginFailureState, LoginFailureNonce or LoginFailureProvider.
	LoginFailed func(reason string)
	// BackchannelLogout serves Prefix + "/backchannel_logout", where the
	// provider sends logout tokens (OpenID Connect Back-Channel Logout
	// 1.0): sessions it names are refused from then on, and deleted when
	// they live in Sessions.
	BackchannelLogout bool
	// LogoutTokenTypRequired refuses logout tokens without the typ header
	// logout+jwt; without it the header is checked only when present.
	LogoutTokenTypRequired bool
	// Logouts keeps the back-channel logouts of sessions kept in the
	// cookie, and the ids of logout tokens seen; nil means a
	// [MemoryLogouts] of the Client's own (one replica).
	Logouts LogoutStore
	// Tracer, when set, gives session refreshes a span, a child of the
	// request that started them. Nil traces nothing.
	Tracer trace.Tracer
	// LogoutReceived, when set, is told the result of every back-channel
	// logout request: LogoutOK, LogoutInvalid, LogoutReplayed or
	// LogoutError.
	LogoutReceived func(result string)
}

// Reasons a sign-in fails at the callback, as Config.LoginFailed is told.
const (
	// LoginFailureState: the callback's state matches no sign-in started
	// in this browser (expired, already used, or forged).
	LoginFailureState = "state_mismatch"
	// LoginFailureNonce: the id_token's nonce is not the sign-in's.
	LoginFailureNonce = "nonce_mismatch"
	// LoginFailureProvider: the provider answered with an error, its
	// token endpoint failed, or its answer did not verify.
	LoginFailureProvider = "provider_error"
)

// SessionStore keeps sessions by id. LoadSession returns ErrNoSession for
// an id it does not have; any other error means the store could not be
// asked, and the request is answered 503 rather than sent to log in.
type SessionStore interface {
	// SaveSession keeps a new session's data under id for ttl, filed under
	// the provider's sid and subject it belongs to, for DeleteSessionsOf.
	SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration, owner SessionOwner) error
	// UpdateSession replaces the data of a session the store still has
	// (after a refresh) and returns ErrNoSession for one it has not: a
	// session ended meanwhile stays ended.
	UpdateSession(ctx context.Context, id string, data []byte, ttl time.Duration) error
	LoadSession(ctx context.Context, id string) ([]byte, error)
	DeleteSession(ctx context.Context, id string) error
	// DeleteSessionsOf deletes the sessions a back-channel logout ended:
	// the one filed under sid, or, when sid is "", every session of
	// subject; a logout naming both also ends subject's sessions filed
	// without a sid. It returns how many it deleted.
	DeleteSessionsOf(ctx context.Context, sid, subject string) (int, error)
}

// SessionOwner is whom a stored session belongs to: the sid of the
// provider's session (from the id_token, "" if it had none) and the
// subject.
type SessionOwner struct {
	SID, Subject string
}

// ErrNoSession is returned by a [SessionStore] for an unknown or expired id.
var ErrNoSession = errors.New("oidcclient: no such session")

// Client runs the browser login. It is an http.Handler for the endpoints
// under Prefix (start, callback, sign_out) and is safe for concurrent use.
type Client struct {
	cfg  Config
	ctx  context.Context // the Client's own lifetime: refreshes run on it
	now  func() time.Time
	log  *slog.Logger
	http *http.Client

	mu        sync.Mutex
	endpoints *Endpoints
	algs      []string
	lastTry   time.Time

	refreshes refreshGroup
	cache     *sessionCache // nil: off, or sessions live in the store
	logouts   LogoutStore   // nil: no back-channel logout
}

// New checks cfg and returns a Client. Discovery happens lazily, on the
// first login, and is retried on later ones if it fails; ctx bounds the
// Client's background work (refreshes).
func New(ctx context.Context, cfg Config) (*Client, error) {
	switch {
	case cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "":
		return nil, errors.New("oidcclient: issuer, client id and redirect URL are required")
	case cfg.Cookies == nil || cfg.Keys == nil || cfg.PublicURL == nil:
		return nil, errors.New("oidcclient: cookies, keys and public URL are required")
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "_portcullis"
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = 12 * time.Hour
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = time.Minute
	}
	if cfg.ProviderTimeout <= 0 {
		cfg.ProviderTimeout = 10 * time.Second
	}
	c := &Client{cfg: cfg, ctx: ctx, now: cfg.Now, log: cfg.Logger, http: cfg.HTTPClient}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: cfg.ProviderTimeout}
	}
	if cfg.Endpoints != nil {
		c.endpoints = cfg.Endpoints
	}
	c.refreshes.init(c.now)
	if cfg.BackchannelLogout {
		c.logouts = cfg.Logouts
		if c.logouts == nil {
			c.logouts = &MemoryLogouts{Now: c.now}
		}
	}
	if cfg.Sessions == nil && cfg.SessionCacheEntries >= 0 {
		entries, bytes := cfg.SessionCacheEntries, cfg.SessionCacheBytes
		if entries == 0 {
			entries = sessionCacheEntries
		}
		if bytes <= 0 {
			bytes = sessionCacheBytes
		}
		c.cache = newSessionCache(entries, bytes)
	}
	return c, nil
}

// discovered returns the provider's endpoints, fetching discovery if needed
// (at most every 10 seconds after a failure).
func (c *Client) discovered(ctx context.Context) (*Endpoints, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endpoints != nil {
		return c.endpoints, nil
	}
	if !c.lastTry.IsZero() && c.now().Sub(c.lastTry) < 10*time.Second {
		return nil, errors.New("oidcclient: provider discovery failed recently")
	}
	c.lastTry = c.now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ProviderTimeout)
	defer cancel()
	u := strings.TrimSuffix(c.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("oidcclient: discovery: %w", err)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidcclient: discovery: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidcclient: discovery: %s answered %d", u, res.StatusCode)
	}
	var doc struct {
		Issuer        string   `json:"issuer"`
		Authorization string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		EndSession    string   `json:"end_session_endpoint"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("oidcclient: discovery: %w", err)
	}
	if doc.Issuer != c.cfg.Issuer {
		return nil, fmt.Errorf("oidcclient: discovery: issuer %q does not match %q", doc.Issuer, c.cfg.Issuer)
	}
	if doc.Authorization == "" || doc.Token == "" {
		return nil, errors.New("oidcclient: discovery: no authorization or token endpoint")
	}
	c.endpoints = &Endpoints{Authorization: doc.Authorization, Token: doc.Token, EndSession: doc.EndSession}
	c.algs = doc.Algs
	return c.endpoints, nil
}

// oauth2Config is the x/oauth2 view of the client.
func (c *Client) oauth2Config(ep *Endpoints) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if c.cfg.ClientSecret == "" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, RedirectURL: c.cfg.RedirectURL, Scopes: c.cfg.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: ep.Authorization, TokenURL: ep.Token, AuthStyle: style},
	}
}

// LoginURL is where to send a browser that asked for r without a session.
func (c *Client) LoginURL(r *http.Request) string {
	return c.cfg.Prefix + "/start?rd=" + url.QueryEscape(r.URL.RequestURI())
}

// LoginURLFor is the absolute URL, on the public URL, that starts a login
// returning to rd, such as the original URL a fronting proxy asked about.
// Whether rd may be returned to is decided when the login starts.
func (c *Client) LoginURLFor(rd string) string {
	u := *c.cfg.PublicURL
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/")+c.cfg.Prefix+"/start", ""
	u.RawQuery = "rd=" + url.QueryEscape(rd)
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// ServeHTTP serves start, callback, sign_out, signed_out and, when
// configured, backchannel_logout under the prefix.
func (c *Client) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, c.cfg.Prefix) {
	case "/start":
		c.start(w, r)
	case "/callback":
		c.callback(w, r)
	case "/sign_out":
		c.signOut(w, r)
	case "/signed_out":
		c.signedOut(w, r)
	case "/backchannel_logout":
		if c.logouts == nil {
			c.page(w, http.StatusNotFound, pages.Message{Title: "Not found", Text: "There is no page at this address.", Links: c.home()})
			return
		}
		c.backchannelLogout(w, r)
	default:
		c.page(w, http.StatusNotFound, pages.Message{Title: "Not found", Text: "There is no page at this address.", Links: c.home()})
	}
}

var _ http.Handler = (*Client)(nil)
