package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/internal/rsaverify"
	"github.com/portcullis-dev/portcullis/jwks"
)

// errKeysUnavailable marks a technical failure: the issuer's keys could not
// be loaded, so no verdict on the token is possible.
var errKeysUnavailable = errors.New("authn: issuer keys unavailable")

// IsUnavailable reports whether err means the token could not be judged
// because keys were unavailable (answer 503, not 401).
func IsUnavailable(err error) bool { return errors.Is(err, errKeysUnavailable) }

// verification carries what choosing the key learns: the issuer and the
// version of its keys.
type verification struct {
	a       *Authenticator
	ctx     context.Context
	issuer  *Issuer
	version uint64 // of the issuer's keys, taken before they were read
}

// Verify checks the token's signature and its registered claims (iss, exp,
// nbf, iat, typ, crit), independent of any route. It returns an *[Error]
// for a bad token, or an error satisfying [IsUnavailable] when no verdict
// was possible.
func (a *Authenticator) Verify(ctx context.Context, token string) (*Identity, error) {
	if a.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		return a.verifyTraced(ctx, token)
	}
	return a.verifyToken(ctx, token, nil)
}

// verifyTraced is Verify in a span of its own, for a request whose span
// records (one the sampler left out gets no child spans).
func (a *Authenticator) verifyTraced(ctx context.Context, token string) (*Identity, error) {
	ctx, span := a.tracer.Start(ctx, "portcullis.authenticate", trace.WithSpanKind(trace.SpanKindInternal))
	defer span.End()
	var hit bool
	id, err := a.verifyToken(ctx, token, &hit)
	span.SetAttributes(attribute.Bool("portcullis.token_cache.hit", hit))
	var ae *Error
	switch {
	case err == nil:
		span.SetAttributes(attribute.String("portcullis.issuer", id.Issuer))
	case errors.As(err, &ae):
		span.SetAttributes(attribute.String("portcullis.auth.reason", ae.Reason))
		span.SetStatus(codes.Error, ae.Reason)
	default:
		span.SetStatus(codes.Error, "unavailable")
	}
	return id, err
}

// verifyToken is Verify; a cache hit sets *hit, when hit is not nil.
func (a *Authenticator) verifyToken(ctx context.Context, token string, hit *bool) (*Identity, error) {
	if len(token) > a.maxLen {
		return nil, invalidToken(ReasonMalformed, "token too long")
	}
	switch strings.Count(token, ".") {
	case 2:
	case 4:
		return nil, invalidToken(ReasonEncrypted, "encrypted tokens are not accepted")
	default:
		return nil, invalidToken(ReasonMalformed, "token is not a compact JWS")
	}
	var key [32]byte
	if a.cache != nil {
		key = tokenKey(token)
		if id, iss := a.cache.get(&key, a.now()); id != nil {
			if hit != nil {
				*hit = true
			}
			return id, a.checkRevoked(ctx, iss, id)
		}
	}
	return a.verify(ctx, token, &key)
}

// verify checks a token the cache does not hold, and offers it to the
// cache under key. It is a function of its own so that its decoding buffer
// is not on the stack of a cache hit: an HTTP/2 stream's handler runs on a
// new goroutine, whose stack would otherwise grow, by a copy, on every hit.
//
//go:noinline
func (a *Authenticator) verify(ctx context.Context, token string, key *[32]byte) (*Identity, error) {
	var buf [1024]byte
	t, err := parseJWS(token, buf[:])
	if err != nil {
		return nil, err
	}
	if !a.allowAlg[t.alg] {
		return nil, invalidToken(ReasonAlgorithm, "algorithm not allowed")
	}
	v := verification{a: a, ctx: ctx}
	kid, err := v.issuerOf(t)
	if err != nil {
		return nil, err
	}
	// The checks that need no key come before the key lookup, which may
	// refetch the issuer's key set: an expired token with an unknown kid
	// costs no fetch. Refusing on unverified claims refuses nothing a
	// signature could make acceptable.
	id, err := a.verifyClaims(token, v.issuer, t.claims)
	if err != nil {
		return nil, err
	}
	keys, secret, err := v.key(t, kid)
	if err != nil {
		return nil, err
	}
	sig, err := t.signature(nil) // its own buffer: it goes to an interface method
	if err != nil {
		return nil, err
	}
	if !verifySignature(t, sig, keys, secret) {
		return nil, invalidToken(ReasonSignature, "signature invalid")
	}
	if err := a.checkRevoked(ctx, v.issuer, id); err != nil {
		return nil, err
	}
	if a.cache != nil && a.cache.door.admit(key) {
		cp := *id
		a.cache.put(key, &cp, v.issuer, v.version, a.now())
	}
	return id, nil
}

// checkRevoked asks the issuer's revocation list, if it has one, about the
// token's jti; it runs on every request, cached or not.
func (a *Authenticator) checkRevoked(ctx context.Context, iss *Issuer, id *Identity) error {
	if iss.Revoked == nil {
		return nil
	}
	if id.ID == "" {
		return invalidToken(ReasonRevoked, "jti missing")
	}
	revoked, err := iss.Revoked(ctx, id.ID)
	if err != nil {
		return fmt.Errorf("%w: revocation list: %w", errKeysUnavailable, err)
	}
	if revoked {
		return invalidToken(ReasonRevoked, "token revoked")
	}
	return nil
}

// issuerOf finds the issuer a decoded token names, strictly from
// configuration, and checks what it allows without any key: no unknown
// crit, an algorithm it allows, its typ. It returns the token's kid.
func (v *verification) issuerOf(t *jws) (string, error) {
	if _, ok := t.header["crit"]; ok {
		// RFC 7515 §4.1.11: extensions listed in crit must be understood;
		// portcullis understands none.
		return "", invalidToken(ReasonCrit, "unsupported critical header")
	}
	issName, ok := t.claims["iss"].(string)
	if !ok {
		return "", invalidToken(ReasonIssuer, "iss missing")
	}
	iss := v.a.issuers[issName]
	if iss == nil {
		return "", invalidToken(ReasonIssuer, "issuer not trusted")
	}
	v.issuer = iss
	alg := t.alg
	if !contains(iss.Algorithms, alg) {
		return "", invalidToken(ReasonAlgorithm, "algorithm not allowed")
	}
	if iss.Typ != "" && !typMatches(t.header["typ"], iss.Typ) {
		return "", invalidToken(ReasonType, "typ not accepted")
	}
	kid := ""
	if raw, ok := t.header["kid"]; ok {
		if kid, ok = raw.(string); !ok {
			return "", invalidToken(ReasonMalformed, "kid is not a string")
		}
	}
	return kid, nil
}

// key chooses the keys for a token of v.issuer (see issuerOf): the keys of
// that issuer's set that fit the algorithm, or, for HMAC, its secret (and
// no keys).
func (v *verification) key(t *jws, kid string) ([]jwks.Key, []byte, error) {
	iss, alg := v.issuer, t.alg
	v.version = keyVersion(iss)
	if supportedAlgs[alg] == "HMAC" {
		// Only the issuer's configured secret, never a JWKS key: this is
		// what stops HS256 signed with a public key (RFC 8725 §2.1).
		return nil, iss.HMACSecret, nil
	}
	keys, err := iss.Keys.Keys(v.ctx, kid)
	switch {
	case errors.Is(err, jwks.ErrNotLoaded), err != nil && v.ctx.Err() != nil:
		// No verdict: keys never loaded, or the caller gave up waiting.
		return nil, nil, errKeysUnavailable
	case err != nil:
		return nil, nil, invalidToken(ReasonUnknownKey, "unknown kid")
	}
	fit := make([]jwks.Key, 0, len(keys))
	for _, k := range keys {
		if (k.Algorithm == "" || k.Algorithm == alg) && keyFits(alg, k.Public) {
			fit = append(fit, k)
		}
	}
	if len(fit) == 0 {
		return nil, nil, invalidToken(ReasonUnknownKey, "no key for kid and alg")
	}
	return fit, nil, nil
}

// verifySignature checks the signature over the signed part with the HMAC
// secret, for an HMAC alg, or else with any of keys (several when a token
// without kid has an issuer with several keys that fit), using golang-jwt's
// signing methods, except for ES256 and RS256/384/512, which use the
// verifiers the key precomputed (same answers, faster).
func verifySignature(t *jws, sig []byte, keys []jwks.Key, secret []byte) bool {
	m := jwt.GetSigningMethod(t.alg)
	if m == nil {
		return false
	}
	if supportedAlgs[t.alg] == "HMAC" {
		return m.Verify(t.signed, sig, secret) == nil
	}
	for _, k := range keys {
		if verifyWith(t, m, sig, k) {
			return true
		}
	}
	return false
}

// fastCrypto is whether the faster signature checks of internal/p256 and
// internal/rsaverify may be used. With FIPS 140-3 mode on (GODEBUG
// fips140=on or only), every check stays inside the Go Cryptographic
// Module, which also enforces that mode's stricter key rules.
var fastCrypto = !fips140.Enabled()

// verifyWith checks the signature with one key.
func verifyWith(t *jws, m jwt.SigningMethod, sig []byte, k jwks.Key) bool {
	if ok, done := verifyFast(t.alg, m, t.signed, sig, k); done {
		return ok
	}
	return m.Verify(t.signed, sig, k.Public) == nil
}

// verifyFast checks an ES256 or RS256/384/512 signature with the verifier
// the key precomputed (internal/p256, internal/rsaverify). done is false
// when there is none to use (another alg, FIPS mode, a key without one),
// and golang-jwt decides.
func verifyFast(alg string, m jwt.SigningMethod, signed string, sig []byte, k jwks.Key) (ok, done bool) {
	if !fastCrypto {
		return false, false
	}
	data := unsafe.Slice(unsafe.StringData(signed), len(signed))
	switch k.Public.(type) {
	case *ecdsa.PublicKey:
		if alg != "ES256" {
			return false, false
		}
		if len(sig) != 64 {
			return false, true // RFC 7518 §3.4: R and S, 32 bytes each
		}
		if pk, has := k.P256(); has {
			h := sha256.Sum256(data)
			return pk.Verify(h[:], sig[:32], sig[32:]), true
		}
	case *rsa.PublicKey:
		rm, isRS := m.(*jwt.SigningMethodRSA)
		if !isRS || !rsaverify.Supports(rm.Hash) || !rm.Hash.Available() {
			return false, false
		}
		if pk, has := k.RSA(); has {
			d := rm.Hash.New()
			d.Write(data)
			var buf [64]byte
			return pk.VerifyPKCS1v15(rm.Hash, d.Sum(buf[:0]), sig), true
		}
	}
	return false, false
}

// keyFits reports whether a public key is of the type (and curve) alg needs.
func keyFits(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return supportedAlgs[alg] == "RSA"
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// typMatches compares a JOSE typ header with the wanted media type.
func typMatches(h any, want string) bool {
	s, ok := h.(string)
	if !ok {
		return false
	}
	trim := func(s string) string {
		if len(s) > 12 && strings.EqualFold(s[:12], "application/") {
			return s[12:]
		}
		return s
	}
	return strings.EqualFold(trim(s), trim(want))
}

// verifyClaims checks the registered claims of a token whose signature is
// good and builds the Identity.
func (a *Authenticator) verifyClaims(token string, iss *Issuer, m map[string]any) (*Identity, error) {
	now := a.now()
	id := &Identity{Issuer: iss.Issuer, Claims: m, Token: token}
	id.Binding, id.BindingValue = binding(m)
	exp, ok, err := numericDate(m, "exp")
	switch {
	case err != nil:
		return nil, invalidToken(ReasonMalformed, err.Error())
	case !ok:
		return nil, invalidToken(ReasonExpired, "exp missing")
	case now.After(exp.Add(iss.Leeway)):
		return nil, invalidToken(ReasonExpired, "token expired")
	}
	id.Expiry = exp
	nbf, ok, err := numericDate(m, "nbf")
	switch {
	case err != nil:
		return nil, invalidToken(ReasonMalformed, err.Error())
	case ok && now.Add(iss.Leeway).Before(nbf):
		return nil, invalidToken(ReasonNotYetValid, "token not valid yet")
	}
	id.NotBefore = nbf
	iat, ok, err := numericDate(m, "iat")
	switch {
	case err != nil:
		return nil, invalidToken(ReasonMalformed, err.Error())
	case ok && now.Add(iss.Leeway).Before(iat):
		return nil, invalidToken(ReasonIssuedInFuture, "iat in the future")
	}
	id.IssuedAt = iat
	if id.Subject, err = stringClaim(m, "sub"); err != nil {
		return nil, invalidToken(ReasonMalformed, err.Error())
	}
	if id.ID, err = stringClaim(m, "jti"); err != nil {
		return nil, invalidToken(ReasonMalformed, err.Error())
	}
	if id.Audience, err = audience(m); err != nil {
		return nil, invalidToken(ReasonMalformed, err.Error())
	}
	if id.Scopes, err = scopes(m); err != nil {
		return nil, invalidToken(ReasonMalformed, err.Error())
	}
	return id, nil
}
