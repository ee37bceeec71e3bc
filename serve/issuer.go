package serve

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/proxy"
)

// NewIssuer builds the built-in issuer of c (nil when there is none) as
// the gateway does: its signing keys (loaded from, or generated into,
// issuer.signing.key_dir) and its store. Nothing rotates the keys until the
// caller runs the ring's Run; the caller closes the store if it is an
// io.Closer. Only opts' clock, logger and sleep are read.
func NewIssuer(c *config.Config, opts Options) (*issuer.Issuer, *jwks.KeyRing, issuer.Store, error) {
	opts.defaults()
	return newIssuer(c, opts, nil)
}

// newIssuer is [NewIssuer] with a hook told the reason of every failed
// login.
func newIssuer(c *config.Config, opts Options, loginFailed func(reason string)) (*issuer.Issuer, *jwks.KeyRing, issuer.Store, error) {
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
		rs, err := issuer.NewRedisStore(issuer.RedisConfig{URL: bi.Store, Now: opts.Now, Logger: opts.Logger})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("serve: issuer.store %s: %w", config.RedactStore(bi.Store), err)
		}
		store = rs
	}
	ic := issuer.Config{
		ClientAddr: func(r *http.Request) string { return proxy.ClientAddr(trusted, r) },
		URL:        bi.URL, Keys: keys, Store: store, ScopeDescriptions: bi.Scopes,
		AccessTTL: bi.AccessTokenTTL.D(), IDTokenTTL: bi.IDTokenTTL.D(), RefreshTTL: bi.RefreshTokenTTL.D(),
		SessionTTL: bi.SessionTTL.D(), ConsentTTL: bi.ConsentTTL.D(),
		LoginAttempts: bi.LoginRateLimit.Attempts, LoginWindow: bi.LoginRateLimit.Window.D(),
		AddressAttempts: bi.LoginRateLimit.AddressAttempts, AddressMaxDelay: bi.LoginRateLimit.MaxDelay.D(),
		DeviceTTL: bi.LoginRateLimit.DeviceTTL.D(), Sleep: opts.Sleep,
		Now: opts.Now, Logger: opts.Logger, LoginFailed: loginFailed,
	}
	if ic.ConsentTTL == 0 {
		ic.ConsentTTL = -1 // consent_ttl: 0s asks every time
	}
	for _, cl := range bi.Clients {
		ic.Clients = append(ic.Clients, issuer.Client{
			ID: cl.ID, Name: cl.Name, Secret: cl.Secret, SecretHash: cl.SecretHash, Public: cl.Public,
			FirstParty: cl.FirstParty, RedirectURIs: cl.RedirectURIs, PostLogoutRedirectURIs: postLogoutURIs(c, cl),
			GrantTypes: cl.GrantTypes, Scopes: cl.Scopes, Audiences: cl.Audiences,
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
