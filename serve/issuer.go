package serve

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/proxy"
	"go.opentelemetry.io/otel/trace"
)

// NewIssuer builds the built-in issuer of c (nil when there is none) as
// the gateway does: its signing keys (loaded from, or generated into,
// issuer.signing.key_dir) and its store. Nothing rotates the keys until the
// caller runs the ring's Run; the caller closes the store if it is an
// io.Closer. Only opts' clock, logger and sleep are read.
func NewIssuer(c *config.Config, opts Options) (*issuer.Issuer, *jwks.KeyRing, issuer.Store, error) {
	opts.defaults()
	return newIssuer(c, opts, issuerHooks{})
}

// issuerHooks connect the built-in issuer to the gateway that runs it.
type issuerHooks struct {
	// loginFailed is told the reason of every failed login, logoutSent
	// the result of every logout token sent.
	loginFailed, logoutSent func(string)
	// gateway, when set, receives the logout tokens meant for the
	// gateway's own public URL in-process, as the code exchange does.
	gateway http.Handler
	// tracer, when set, traces token requests and Redis commands.
	tracer trace.Tracer
	// dpop, when set, checks the DPoP proofs of token requests.
	dpop *dpop.Verifier
}

// newIssuer is [NewIssuer] with the gateway's hooks.
func newIssuer(c *config.Config, opts Options, hooks issuerHooks) (*issuer.Issuer, *jwks.KeyRing, issuer.Store, error) {
	bi := c.Issuer
	if bi == nil {
		return nil, nil, nil, nil
	}
	trusted, err := trustedProxies(c)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := jwks.OpenKeyRing(jwks.KeyRingConfig{
		Algorithm:   bi.Signing.Algorithm,
		KeyDir:      bi.Signing.KeyDir,
		RotateEvery: bi.Signing.RotateEvery.D(),
		RetainFor:   max(bi.AccessTokenTTL.D(), bi.IDTokenTTL.D()),
		KeyFiles:    bi.Signing.KeyFiles,
		Now:         opts.Now,
		Logger:      opts.Logger,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("serve: issuer keys: %w", err)
	}
	var store issuer.Store
	switch {
	case bi.Store == "" || bi.Store == config.StoreMemory:
		store = issuer.NewMemoryStore(issuer.MemoryConfig{Now: opts.Now})
	default:
		// Redis (redis:// or rediss://): codes, refresh families,
		// revocations and sessions shared by every replica.
		rs, err := issuer.NewRedisStore(issuer.RedisConfig{URL: bi.Store, CallTimeout: bi.StoreTimeout.D(), Now: opts.Now, Logger: opts.Logger, Tracer: hooks.tracer})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("serve: issuer.store %s: %w", config.RedactStore(bi.Store), err)
		}
		store = rs
	}
	ic := issuer.Config{
		ClientAddr: func(r *http.Request) string { return proxy.ClientAddr(trusted, r) },
		URL:        bi.URL, Keys: keys, Store: store, ScopeDescriptions: bi.Scopes,
		AccessTTL: bi.AccessTokenTTL.D(), IDTokenTTL: bi.IDTokenTTL.D(), RefreshTTL: bi.RefreshTokenTTL.D(),
		RefreshRetryGrace: bi.RefreshRetryGrace.D(),
		SessionTTL:        bi.SessionTTL.D(), ConsentTTL: bi.ConsentTTL.D(),
		LoginAttempts: bi.LoginRateLimit.Attempts, LoginWindow: bi.LoginRateLimit.Window.D(),
		AddressAttempts: bi.LoginRateLimit.AddressAttempts, AddressMaxDelay: bi.LoginRateLimit.MaxDelay.D(),
		DeviceTTL: bi.LoginRateLimit.DeviceTTL.D(), Sleep: opts.Sleep,
		Now: opts.Now, Logger: opts.Logger, LoginFailed: hooks.loginFailed, LogoutSent: hooks.logoutSent,
		HTTPClient: logoutClient(c, opts, hooks.gateway), Tracer: hooks.tracer, DPoP: hooks.dpop,
	}
	if ic.ConsentTTL == 0 {
		ic.ConsentTTL = -1 // consent_ttl: 0s asks every time
	}
	ic.Resources = c.ProtectedResources()
	if r := bi.Registration; r.Enabled {
		ic.Registration = &issuer.Registration{
			RedirectURIs: r.RedirectURIs, GrantTypes: r.GrantTypes, Scopes: r.Scopes,
			MaxClients: r.MaxClients, UnusedTTL: r.UnusedTTL.D(), InitialAccessToken: r.InitialAccessToken,
		}
	}
	for _, cl := range bi.Clients {
		ic.Clients = append(ic.Clients, issuer.Client{
			ID: cl.ID, Name: cl.Name, Secret: cl.Secret, SecretHash: cl.SecretHash, Public: cl.Public,
			FirstParty: cl.FirstParty, RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: postLogoutURIs(c, cl),
			GrantTypes: cl.GrantTypes, Scopes: cl.Scopes, Audiences: cl.Audiences,
			BackchannelLogoutURI: backchannelURI(c, cl), BackchannelLogoutSessionRequired: cl.BackchannelLogoutSessionRequired,
			DPoPBoundAccessTokens: cl.DPoPBoundAccessTokens,
		})
	}
	for _, u := range bi.Users {
		ic.Users = append(ic.Users, issuer.User{Username: u.Username, Subject: u.Subject, PasswordHash: u.PasswordHash, Claims: u.Claims})
	}
	iss, err := issuer.New(ic)
	if err != nil {
		closeStore(store)
		return nil, nil, nil, err
	}
	return iss, keys, store, nil
}

// postLogoutURIs are the post-logout addresses of built-in client cl: those
// configured, plus the gateway's own when the gateway signs in through cl
// as its first-party client, so that signing out of the gateway ends the
// issuer's session and comes back without registering anything.
func postLogoutURIs(c *config.Config, cl config.IssuerClient) []string {
	uris := cl.PostLogoutRedirectURIs
	if c.LoginAtBuiltinIssuer() && c.Login.ClientID == cl.ID && cl.FirstParty {
		if own := c.Login.PostLogoutRedirectURL; !slices.Contains(uris, own) {
			uris = append(slices.Clone(uris), own)
		}
	}
	return uris
}

// backchannelURI is built-in client cl's back-channel logout URI: the one
// configured, else the gateway's own endpoint when the gateway signs in
// through cl with back-channel logout on.
func backchannelURI(c *config.Config, cl config.IssuerClient) string {
	if cl.BackchannelLogoutURI != "" {
		return cl.BackchannelLogoutURI
	}
	if c.LoginAtBuiltinIssuer() && c.Login.ClientID == cl.ID {
		return c.BackchannelLogoutURL()
	}
	return ""
}

// logoutClient is the client the issuer sends logout tokens with: those
// for the gateway's own public URL are served in-process by gateway (the
// public URL may not be reachable from inside, behind a load balancer),
// the others go out through opts.HTTPClient's transport. Redirects are not
// followed (§2.5: the token goes to the registered URI only).
func logoutClient(c *config.Config, opts Options, gateway http.Handler) *http.Client {
	next := http.DefaultTransport
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		next = opts.HTTPClient.Transport
	}
	var rt http.RoundTripper = next
	if pub, err := url.Parse(c.Server.PublicURL); err == nil && gateway != nil {
		rt = ownTransport{scheme: pub.Scheme, host: pub.Host, own: handlerTransport{gateway}, next: next}
	}
	return &http.Client{Transport: rt, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// ownTransport sends requests for scheme://host to own, the rest to next.
type ownTransport struct {
	scheme, host string
	own, next    http.RoundTripper
}

func (t ownTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.EqualFold(r.URL.Scheme, t.scheme) && strings.EqualFold(r.URL.Host, t.host) {
		return t.own.RoundTrip(r)
	}
	return t.next.RoundTrip(r)
}
