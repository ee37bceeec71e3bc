// Package authn turns a request into a verified [Identity]: it finds the
// token (Authorization: Bearer, or a configured cookie or query parameter),
// verifies its signature with golang-jwt and keys from package jwks, checks
// iss, aud, exp, nbf, iat, typ, scopes and required claims, and maps every
// failure to an RFC 6750 error.
//
// It follows RFC 8725 (JWT BCP): the algorithm must be on the issuer's
// allow-list and match the key's type, keys come only from configuration
// (jku, jwk, x5u and x5c headers are never used), an unknown crit header is
// refused, and claims are decoded case-sensitively with duplicates refused.
package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/jwks"
	"go.opentelemetry.io/otel/trace"
)

// KeySource yields an issuer's verification keys by "kid" (all keys for an
// empty kid). *jwks.Remote implements it. Errors wrapping
// [jwks.ErrKeyNotFound] mean the kid is unknown; [jwks.ErrNotLoaded] means no
// keys could be loaded yet.
type KeySource interface {
	Keys(ctx context.Context, kid string) ([]jwks.Key, error)
}

// Issuer is one trusted token issuer.
type Issuer struct {
	// Issuer is the exact "iss" value.
	Issuer string
	// Audiences are accepted "aud" values for policies that name none.
	Audiences []string
	// Algorithms is the JWS algorithm allow-list. Required.
	Algorithms []string
	// Leeway is the clock skew allowed for exp, nbf and iat.
	Leeway time.Duration
	// Typ, when set, is the required JOSE "typ" header, compared
	// case-insensitively with an optional "application/" prefix (RFC 7515
	// §4.1.9), e.g. "at+jwt" for RFC 9068 access tokens.
	Typ string
	// HMACSecret, when set, verifies HS256/384/512 tokens of this issuer;
	// it is the only key ever used for HMAC.
	HMACSecret []byte
	// Keys provides the issuer's public keys; nil for an HMAC-only issuer.
	Keys KeySource
	// Revoked, when set, is asked about every token's "jti" (the built-in
	// issuer's revocation list). A revoked token is invalid; an error is a
	// technical failure (503), never a pass.
	Revoked func(ctx context.Context, jti string) (bool, error)
}

// Config configures an [Authenticator].
type Config struct {
	// Issuers are the trusted issuers; at least one.
	Issuers []Issuer
	// MaxTokenBytes bounds the token length; 0 means 16 KiB.
	MaxTokenBytes int
	// CacheEntries and CacheBytes bound the cache of verified tokens; 0
	// means 20 000 entries and 16 MiB, a negative CacheEntries turns the
	// cache off. CacheMaxAge bounds how long a token stays cached (0: 5m);
	// it never outlives the token's exp or a change of its issuer's keys,
	// and revocation is checked on every use.
	CacheEntries int
	CacheBytes   int
	CacheMaxAge  time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tracer, when set, gives each verification a span (issuer, cache hit,
	// the reason of a refusal; never the token). Nil traces nothing.
	Tracer trace.Tracer
	// DPoP, when set, accepts DPoP-bound tokens (cnf.jkt) as
	// "Authorization: DPoP" with a proof; nil refuses them.
	DPoP *DPoP
	// ClientCert, when set, returns the SHA-256 of the DER of the
	// request's client certificate (from its TLS connection, or from a
	// trusted proxy's header), base64url, or "" when it has none; tokens
	// bound to a certificate (cnf["x5t#S256"], RFC 8705 §3) pass only with
	// that certificate. Nil refuses them.
	ClientCert func(*http.Request) string
}

// Policy is what one route requires of a token. The zero value accepts any
// valid token of a trusted issuer for the issuer's audiences.
type Policy struct {
	// Audiences, when non-empty, replace the issuer's audiences: "aud" must
	// contain one of them.
	Audiences []string
	// Resource, when set, is accepted as an audience besides Audiences (or
	// the issuer's): the route's resource identifier, the "aud" of tokens
	// asked for it with a resource indicator (RFC 8707).
	Resource string
	// Scopes must all be granted.
	Scopes []string
	// Claims maps a claim name (or dotted path) to accepted values.
	Claims map[string][]string
	// Sources are where to look for a token; nil means the header only.
	Sources []Source
	// RequireBinding refuses tokens that are not sender-constrained:
	// BindingDPoP (DPoP-bound, RFC 9449), BindingX5T (bound to the client
	// certificate, RFC 8705) or BindingAny (either); "" takes bearer
	// tokens too.
	RequireBinding string
}

// Authenticator verifies tokens. It is safe for concurrent use.
type Authenticator struct {
	issuers  map[string]*Issuer
	maxLen   int
	now      func() time.Time
	allowAlg map[string]bool
	cache    *tokenCache  // nil when off
	tracer   trace.Tracer // nil: not traced
	dpop     *DPoP        // nil: DPoP-bound tokens cannot be presented
	cert     func(*http.Request) string
}

// supportedAlgs maps every algorithm portcullis verifies to its key family.
var supportedAlgs = map[string]string{
	"RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
	"PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
	"ES256": "EC", "ES384": "EC", "ES512": "EC",
	"EdDSA": "OKP",
	"HS256": "HMAC", "HS384": "HMAC", "HS512": "HMAC",
}

// New checks cfg and returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("authn: no issuers")
	}
	a := &Authenticator{
		issuers:  make(map[string]*Issuer, len(cfg.Issuers)),
		maxLen:   cfg.MaxTokenBytes,
		now:      cfg.Now,
		allowAlg: map[string]bool{},
		tracer:   cfg.Tracer,
		dpop:     cfg.DPoP,
		cert:     cfg.ClientCert,
	}
	if a.maxLen <= 0 {
		a.maxLen = 16 << 10
	}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.CacheEntries >= 0 {
		entries, bytes, age := cfg.CacheEntries, cfg.CacheBytes, cfg.CacheMaxAge
		if entries == 0 {
			entries = 20000
		}
		if bytes <= 0 {
			bytes = 16 << 20
		}
		if age <= 0 {
			age = 5 * time.Minute
		}
		a.cache = newTokenCache(entries, bytes, age)
	}
	for i := range cfg.Issuers {
		iss := cfg.Issuers[i]
		if iss.Issuer == "" {
			return nil, errors.New("authn: issuer without a name")
		}
		if _, dup := a.issuers[iss.Issuer]; dup {
			return nil, fmt.Errorf("authn: issuer %s configured twice", iss.Issuer)
		}
		if len(iss.Algorithms) == 0 {
			return nil, fmt.Errorf("authn: issuer %s: no algorithms", iss.Issuer)
		}
		for _, alg := range iss.Algorithms {
			fam, ok := supportedAlgs[alg]
			if !ok {
				return nil, fmt.Errorf("authn: issuer %s: unsupported algorithm %q", iss.Issuer, alg)
			}
			if fam == "HMAC" && len(iss.HMACSecret) < 32 {
				return nil, fmt.Errorf("authn: issuer %s: %s needs an hmac secret of at least 32 bytes", iss.Issuer, alg)
			}
			if fam != "HMAC" && iss.Keys == nil {
				return nil, fmt.Errorf("authn: issuer %s: %s needs a key set", iss.Issuer, alg)
			}
			a.allowAlg[alg] = true
		}
		a.issuers[iss.Issuer] = &iss
	}
	return a, nil
}

// Authenticate finds the request's token among p.Sources, verifies it and
// checks it against p. It returns (nil, nil) when the request carries no
// token: whether that is acceptable is the caller's decision (auth:
// optional). A token that fails any check is an *[Error]; any other error is
// a technical failure (the issuer's keys could not be loaded) and the
// request should be answered 503.
func (a *Authenticator) Authenticate(r *http.Request, p *Policy) (*Identity, error) {
	tok, src, scheme, err := extract(r, p.Sources, a.maxLen)
	if err != nil || tok == "" {
		return nil, err
	}
	id, err := a.Verify(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	if err := a.checkSender(r, id, scheme, p); err != nil {
		if ae, ok := err.(*Error); ok && ae.Scheme == SchemeDPoP && a.dpop != nil {
			ae.DPoPAlgs = a.dpop.Verifier.Algorithms()
		}
		return nil, err
	}
	id.Source = src
	if err := a.Authorize(id, p); err != nil {
		return nil, err
	}
	return id, nil
}

// Authorize checks a verified identity against a route's policy: audience
// (401 invalid_token), scopes and claims (403 insufficient_scope).
func (a *Authenticator) Authorize(id *Identity, p *Policy) error {
	auds := p.Audiences
	if len(auds) == 0 {
		if iss := a.issuers[id.Issuer]; iss != nil {
			auds = iss.Audiences
		}
	}
	if !anyIn(id.Audience, auds) && (p.Resource == "" || !slices.Contains(id.Audience, p.Resource)) {
		return invalidToken(ReasonAudience, "aud does not match")
	}
	var missing []string
	for _, s := range p.Scopes {
		if !id.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return &Error{
			Status: http.StatusForbidden, Code: CodeInsufficientScope, Reason: ReasonScope,
			Description: "missing scope", Scope: strings.Join(p.Scopes, " "),
		}
	}
	for name, want := range p.Claims {
		if !id.claimMatches(name, want) {
			return &Error{
				Status: http.StatusForbidden, Code: CodeInsufficientScope, Reason: ReasonClaim,
				Description: "claim " + name + " does not match",
			}
		}
	}
	return nil
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		if h != "" && contains(want, h) {
			return true
		}
	}
	return false
}

// Missing returns the error for a required route reached without a token:
// 401 with a bare Bearer challenge (RFC 6750 §3.1).
func Missing() *Error { return errMissing }
