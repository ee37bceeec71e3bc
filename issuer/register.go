package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/portcullis-dev/portcullis/internal/uripattern"
)

// Registration configures dynamic client registration (RFC 7591). Clients
// that register themselves are strangers: they get only what is listed
// here, their name is shown as unverified, and every authorization asks the
// user.
type Registration struct {
	// RedirectURIs are the patterns (see [uripattern.Pattern]) a
	// registered redirect URI must match. Loopback redirects on any port,
	// http://127.0.0.1:*/… and http://[::1]:*/… (RFC 8252 §7.3), are
	// always allowed.
	RedirectURIs []string
	// GrantTypes a registered client may ask for: authorization_code and
	// refresh_token. Default both.
	GrantTypes []string
	// Scopes a registered client may ask for. Default openid, profile,
	// email and offline_access.
	Scopes []string
	// MaxClients bounds the registered clients alive at once; past it
	// registration is refused. Default 1000.
	MaxClients int
	// UnusedTTL is how long a registered client that was never issued a
	// token is kept. Default 720h.
	UnusedTTL time.Duration
	// InitialAccessToken, when set, must be sent as a bearer token to
	// register (RFC 7591 §3); "" lets anyone register.
	InitialAccessToken string
	// AddressLimit bounds the registrations from one client address per
	// hour, so that no one address fills MaxClients. Default 20.
	AddressLimit int
}

// registration is Registration checked and parsed.
type registration struct {
	cfg      Registration
	patterns []uripattern.Pattern
}

func newRegistration(c Registration) (*registration, error) {
	r := &registration{cfg: c}
	for _, p := range c.RedirectURIs {
		pat, err := uripattern.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("issuer: registration redirect URI pattern %q: %w", p, err)
		}
		r.patterns = append(r.patterns, pat)
	}
	if len(r.cfg.GrantTypes) == 0 {
		r.cfg.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range r.cfg.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return nil, fmt.Errorf("issuer: registration grant type %q: only authorization_code and refresh_token", g)
		}
	}
	if len(r.cfg.Scopes) == 0 {
		r.cfg.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	if r.cfg.MaxClients <= 0 {
		r.cfg.MaxClients = 1000
	}
	if r.cfg.UnusedTTL <= 0 {
		r.cfg.UnusedTTL = 720 * time.Hour
	}
	if r.cfg.AddressLimit <= 0 {
		r.cfg.AddressLimit = 20
	}
	return r, nil
}

// redirectAllowed reports whether a client may register uri.
func (r *registration) redirectAllowed(uri string) bool {
	if uripattern.Loopback(uri) {
		return true
	}
	for _, p := range r.patterns {
		if p.Match(uri) {
			return true
		}
	}
	return false
}

// clientMetadata is the part of RFC 7591 §2 client metadata the issuer
// reads; every other member is ignored, as §3.2.1 allows.
type clientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	ClientURI               string   `json:"client_uri"`
	Scope                   string   `json:"scope"`
	JWKS                    any      `json:"jwks"`
	JWKSURI                 string   `json:"jwks_uri"`
	SoftwareStatement       string   `json:"software_statement"`
}

// registrationResponse is RFC 7591 §3.2.1's answer.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
}

const (
	maxRedirectURIs   = 10
	maxRedirectURILen = 2000
	maxClientNameLen  = 100
)

func errClientMetadata(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_client_metadata", desc: desc}
}

// register is the client registration endpoint (RFC 7591 §3).
func (i *Issuer) register(w http.ResponseWriter, r *http.Request) {
	res, oe := i.registerClient(r)
	if oe != nil {
		if oe.status >= 500 {
			i.log.Error("client registration", "err", oe.desc, "cause", oe.cause)
		}
		if oe.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+oe.desc+`"`)
		}
		writeOAuthError(w, oe)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func (i *Issuer) registerClient(r *http.Request) (*registrationResponse, *oauthError) {
	reg := i.reg
	if tok := reg.cfg.InitialAccessToken; tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want, have := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
			return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_token",
				desc: "registration needs the initial access token"}
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, errInvalidRequest("the body must be application/json")
	}
	var md clientMetadata
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	switch {
	case err != nil:
		return nil, errInvalidRequest("the body could not be read")
	case len(body) > 64<<10:
		return nil, errClientMetadata("the client metadata is too large")
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, errClientMetadata("the client metadata is not a JSON object of the RFC 7591 members")
	}
	c, oe := i.checkMetadata(&md)
	if oe != nil {
		return nil, oe
	}
	ctx := r.Context()
	n, err := i.cfg.Store.Hit(ctx, "register:ip:"+i.cfg.ClientAddr(r), time.Hour)
	if err != nil {
		return nil, storeFailure(err)
	}
	if n > reg.cfg.AddressLimit {
		return nil, &oauthError{status: http.StatusTooManyRequests, code: "access_denied",
			desc: "too many registrations from this address; try again later"}
	}
	now := i.now()
	c.ID = randomID()
	c.IssuedAt = now.Truncate(time.Second)
	secret := ""
	if md.TokenEndpointAuthMethod != "none" {
		secret = randomToken()
		c.SecretHash = hashToken(secret)
	}
	switch err := i.cfg.Store.RegisterClient(ctx, c, reg.cfg.MaxClients, reg.cfg.UnusedTTL); {
	case errors.Is(err, ErrClientLimit):
		i.log.Warn("client registration refused: the limit of registered clients is reached", "max_clients", reg.cfg.MaxClients)
		return nil, &oauthError{status: http.StatusForbidden, code: "access_denied",
			desc: "this server takes no more client registrations"}
	case err != nil:
		return nil, storeFailure(err)
	}
	i.log.Info("client registered", "client", c.ID, "client_name", c.Name, "redirect_uris", c.RedirectURIs,
		"remote", i.cfg.ClientAddr(r))
	res := &registrationResponse{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.IssuedAt.Unix(),
		ClientName: c.Name, ClientURI: c.ClientURI, RedirectURIs: c.RedirectURIs,
		GrantTypes: c.GrantTypes, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: md.TokenEndpointAuthMethod, Scope: strings.Join(c.Scopes, " "),
	}
	if secret != "" {
		never := int64(0)
		res.ClientSecretExpiresAt = &never
	}
	return res, nil
}

// checkMetadata validates client metadata against the registration
// policy and returns the client to store (without ID or secret). It sets
// md.TokenEndpointAuthMethod to the method registered.
func (i *Issuer) checkMetadata(md *clientMetadata) (RegisteredClient, *oauthError) {
	reg := i.reg
	var c RegisteredClient
	switch md.TokenEndpointAuthMethod {
	case "":
		// A public client with PKCE unless it asks for a secret: what
		// native apps and MCP clients can hold (RFC 8252 §8.4).
		md.TokenEndpointAuthMethod = "none"
	case "none", "client_secret_basic", "client_secret_post":
	default:
		return c, errClientMetadata("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	if md.JWKS != nil || md.JWKSURI != "" {
		return c, errClientMetadata("client keys (jwks, jwks_uri) are not supported")
	}
	if md.SoftwareStatement != "" {
		return c, &oauthError{status: http.StatusBadRequest, code: "invalid_software_statement", desc: "software statements are not supported"}
	}
	c.GrantTypes = md.GrantTypes
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code"} // RFC 7591 §2
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(reg.cfg.GrantTypes, g) {
			return c, errClientMetadata("grant type " + g + " is not allowed for registered clients")
		}
	}
	if !slices.Contains(c.GrantTypes, "authorization_code") {
		return c, errClientMetadata("grant_types must include authorization_code")
	}
	for _, rt := range md.ResponseTypes {
		if rt != "code" {
			return c, errClientMetadata("only response type code is supported")
		}
	}
	switch n := len(md.RedirectURIs); {
	case n == 0:
		return c, &oauthError{status: 400, code: "invalid_redirect_uri", desc: "redirect_uris is required"}
	case n > maxRedirectURIs:
		return c, &oauthError{status: 400, code: "invalid_redirect_uri", desc: fmt.Sprintf("at most %d redirect URIs", maxRedirectURIs)}
	}
	for _, u := range md.RedirectURIs {
		if len(u) > maxRedirectURILen || !reg.redirectAllowed(u) {
			return c, &oauthError{status: 400, code: "invalid_redirect_uri",
				desc: "redirect URI " + truncate(u, 200) + " is not allowed here"}
		}
	}
	c.RedirectURIs = slices.Compact(slices.Clone(md.RedirectURIs))
	c.Scopes = reg.cfg.Scopes
	if md.Scope != "" {
		c.Scopes = nil
		for _, s := range strings.Fields(md.Scope) {
			if !slices.Contains(reg.cfg.Scopes, s) {
				return c, &oauthError{status: 400, code: "invalid_client_metadata", desc: "scope " + truncate(s, 100) + " is not allowed for registered clients"}
			}
			if !slices.Contains(c.Scopes, s) {
				c.Scopes = append(c.Scopes, s)
			}
		}
	}
	if strings.IndexFunc(md.ClientName, unicode.IsControl) >= 0 || len(md.ClientName) > maxClientNameLen {
		return c, errClientMetadata(fmt.Sprintf("client_name must be at most %d characters without control characters", maxClientNameLen))
	}
	c.Name = strings.TrimSpace(md.ClientName)
	if md.ClientURI != "" {
		u, err := url.Parse(md.ClientURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(md.ClientURI) > maxRedirectURILen {
			return c, errClientMetadata("client_uri must be an http(s) URL")
		}
		c.ClientURI = md.ClientURI
	}
	return c, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// randomID is a registered client's ID: 128 random bits, base64url (22
// characters).
func randomID() string { return randomToken()[:22] }

// registeredID reports whether id has the shape of a registered client's
// ID, so that other values never cost a store lookup.
func registeredID(id string) bool {
	if len(id) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// client returns the client named id: a configured one, or one that
// registered itself. It returns (nil, nil) for an unknown client and an
// error only when the store cannot say. (A client ID metadata document,
// an https URL as client_id, would be resolved here too, cached in the
// [ClientStore] under its URL.)
func (i *Issuer) client(ctx context.Context, id string) (*Client, error) {
	if c := i.clients[id]; c != nil {
		return c, nil
	}
	if i.reg == nil || !registeredID(id) {
		return nil, nil
	}
	rc, err := i.cfg.Store.GetClient(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if _, static := i.clients[rc.ID]; static {
		return nil, nil
	}
	name := rc.Name
	if name == "" {
		name = "An unnamed application"
	}
	return &Client{
		ID: rc.ID, Name: name, Public: rc.SecretHash == "", RedirectURIs: rc.RedirectURIs,
		GrantTypes: rc.GrantTypes, Scopes: rc.Scopes, Audiences: []string{rc.ID},
		registered: true, secretSHA: rc.SecretHash,
	}, nil
}

// redirectAllowed reports whether uri is one of c's redirect URIs; for a
// registered client, a loopback URI also matches on another port (RFC 8252
// §7.3: a native app picks its port when it runs).
func (c *Client) redirectAllowed(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if c.registered {
		for _, r := range c.RedirectURIs {
			if uripattern.SameLoopback(r, uri) {
				return true
			}
		}
	}
	return false
}

// ErrConfiguredClient: the client is in the configuration and cannot be
// deleted at run time.
var ErrConfiguredClient = errors.New("issuer: a configured client cannot be deleted")

// DeleteClient removes a registered client: from then on it can neither
// start an authorization nor redeem a code or refresh token. Access tokens
// it holds stay valid until they expire. An unknown client gives
// [ErrNotFound]; a configured one [ErrConfiguredClient].
func (i *Issuer) DeleteClient(ctx context.Context, id string) error {
	if _, ok := i.clients[id]; ok {
		return ErrConfiguredClient
	}
	if err := i.cfg.Store.DeleteClient(ctx, id); err != nil {
		return err
	}
	i.log.Info("registered client deleted", "client", id)
	return nil
}
