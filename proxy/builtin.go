package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
)

// builtin is the built-in issuer mounted on the main listener.
type builtin struct {
	iss    *issuer.Issuer
	keys   *jwks.KeyRing
	store  issuer.Store
	base   string // path prefix; "" mounts only the endpoint paths at the root
	cancel context.CancelFunc
}

// stop ends the issuer's background work (key rotation).
func (b *builtin) stop() { b.cancel() }

// rootEndpoints are the issuer's paths when its URL has no path.
var rootEndpoints = map[string]bool{
	"/.well-known/openid-configuration": true, "/.well-known/oauth-authorization-server": true,
	"/jwks": true, "/authorize": true, "/token": true, "/userinfo": true,
	"/revoke": true, "/introspect": true, "/logout": true,
}

// owns reports whether a cleaned path belongs to the issuer; it is matched
// before any route, so a catch-all route never hides the issuer.
func (b *builtin) owns(path string) bool {
	if b.base == "" {
		return rootEndpoints[path]
	}
	return path == b.base || strings.HasPrefix(path, b.base+"/")
}

// postLogoutURIs are the post-logout addresses of built-in client c: those
// configured, plus the gateway's own when the gateway signs in through c
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

// NewIssuer builds the built-in issuer of cfg (nil when there is none): its
// signing keys (loaded from, or generated into, issuer.signing.key_dir) and
// its store. Nothing rotates the keys until the caller runs the ring's Run.
func NewIssuer(cfg Config) (*issuer.Issuer, *jwks.KeyRing, issuer.Store, error) {
	return newIssuer(cfg, nil)
}

// newIssuer is [NewIssuer] with a hook told the reason of every failed
// login.
func newIssuer(cfg Config, loginFailed func(reason string)) (*issuer.Issuer, *jwks.KeyRing, issuer.Store, error) {
	bi := cfg.Config.Issuer
	if bi == nil {
		return nil, nil, nil, nil
	}
	now := cfg.Now
	keys, err := jwks.OpenKeyRing(jwks.KeyRingConfig{
		Algorithm:   bi.Signing.Algorithm,
		KeyDir:      bi.Signing.KeyDir,
		RotateEvery: bi.Signing.RotateEvery.D(),
		RetainFor:   max(bi.AccessTokenTTL.D(), bi.IDTokenTTL.D()),
		KeyFiles:    bi.Signing.KeyFiles,
		Now:         now,
		Logger:      cfg.Logger,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("proxy: issuer keys: %w", err)
	}
	var store issuer.Store
	switch {
	case bi.Store == "" || bi.Store == config.StoreMemory:
		store = issuer.NewMemoryStore(issuer.MemoryConfig{Now: now})
	default:
		// Redis (redis:// or rediss://): codes, refresh families,
		// revocations and sessions shared by every replica.
		rs, err := issuer.NewRedisStore(issuer.RedisConfig{URL: bi.Store, Now: now, Logger: cfg.Logger})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("proxy: issuer.store %s: %w", config.RedactStore(bi.Store), err)
		}
		store = rs
	}
	var trusted []netip.Prefix
	for _, p := range cfg.Config.Server.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			return nil, nil, nil, err
		}
		trusted = append(trusted, pfx)
	}
	ic := issuer.Config{
		ClientAddr: func(r *http.Request) string { return clientAddr(trusted, r) },
		URL:        bi.URL, Keys: keys, Store: store, ScopeDescriptions: bi.Scopes,
		AccessTTL: bi.AccessTokenTTL.D(), IDTokenTTL: bi.IDTokenTTL.D(), RefreshTTL: bi.RefreshTokenTTL.D(),
		SessionTTL: bi.SessionTTL.D(), ConsentTTL: bi.ConsentTTL.D(),
		LoginAttempts: bi.LoginRateLimit.Attempts, LoginWindow: bi.LoginRateLimit.Window.D(),
		AddressAttempts: bi.LoginRateLimit.AddressAttempts, AddressMaxDelay: bi.LoginRateLimit.MaxDelay.D(),
		DeviceTTL: bi.LoginRateLimit.DeviceTTL.D(), Sleep: cfg.Sleep,
		Now: now, Logger: cfg.Logger, LoginFailed: loginFailed,
	}
	if ic.ConsentTTL == 0 {
		ic.ConsentTTL = -1 // consent_ttl: 0s asks every time
	}
	for _, c := range bi.Clients {
		ic.Clients = append(ic.Clients, issuer.Client{
			ID: c.ID, Name: c.Name, Secret: c.Secret, SecretHash: c.SecretHash, Public: c.Public,
			FirstParty: c.FirstParty, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: postLogoutURIs(cfg.Config, c),
			GrantTypes: c.GrantTypes, Scopes: c.Scopes, Audiences: c.Audiences,
		})
	}
	for _, u := range bi.Users {
		ic.Users = append(ic.Users, issuer.User{Username: u.Username, Subject: u.Subject, PasswordHash: u.PasswordHash, Claims: u.Claims})
	}
	iss, err := issuer.New(ic)
	if err != nil {
		return nil, nil, nil, err
	}
	return iss, keys, store, nil
}

// buildBuiltin mounts the built-in issuer, if configured, reusing the
// previous configuration's when the issuer section is unchanged: same keys,
// same store, nothing issued is forgotten.
func (g *gateway) buildBuiltin(ctx context.Context, cfg Config, prev *gateway) error {
	if prev != nil && prev.builtin != nil && reflect.DeepEqual(prev.cfg.Issuer, cfg.Config.Issuer) {
		g.builtin = prev.builtin
		return nil
	}
	iss, keys, store, err := newIssuer(cfg, g.metrics.loginFailed)
	if err != nil || iss == nil {
		return err
	}
	// Rotation runs on the gateway's ctx: the issuer outlives this
	// configuration when a reload keeps it.
	bctx, cancel := context.WithCancel(ctx)
	go keys.Run(bctx)
	g.builtin = &builtin{iss: iss, keys: keys, store: store, base: iss.PathPrefix(), cancel: cancel}
	return nil
}

// serveIssuer hands a request to the built-in issuer.
func (g *gateway) serveIssuer(w http.ResponseWriter, r *http.Request) {
	note(w, "issuer", outcomeIssuer, "")
	g.builtin.iss.ServeHTTP(w, r)
}

// Issuer returns the built-in issuer, or nil when there is none.
func (gw *Gateway) Issuer() *issuer.Issuer {
	if b := gw.cur.Load().builtin; b != nil {
		return b.iss
	}
	return nil
}
