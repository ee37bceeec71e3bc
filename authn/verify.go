package authn

import (
	"context"
	"crypto"
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

	"github.com/portcullis-dev/portcullis/internal/p256"
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
			return id, a.checkRevoked(ctx, iss, id)
		}
	}
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
	k, err := v.key(t, kid)
	if err != nil {
		return nil, err
	}
	sig, err := t.signature(nil) // its own buffer: it goes to an interface method
	if err != nil {
		return nil, err
	}
	if !verifySignature(t, sig, k) {
		return nil, invalidToken(ReasonSignature, "signature invalid")
	}
	if err := a.checkRevoked(ctx, v.issuer, id); err != nil {
		return nil, err
	}
	if a.cache != nil && a.cache.door.admit(&key) {
		cp := *id
		a.cache.put(&key, &cp, v.issuer, v.version, a.now())
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

// key chooses the key for a token of v.issuer (see issuerOf): a key of
// that issuer's set that fits the algorithm, or its HMAC secret.
func (v *verification) key(t *jws, kid string) (any, error) {
	iss, alg := v.issuer, t.alg
	v.version = keyVersion(iss)
	if supportedAlgs[alg] == "HMAC" {
		// Only the issuer's configured secret, never a JWKS key: this is
		// what stops HS256 signed with a public key (RFC 8725 §2.1).
		return iss.HMACSecret, nil
	}
	keys, err := iss.Keys.Keys(v.ctx, kid)
	switch {
	case errors.Is(err, jwks.ErrNotLoaded), err != nil && v.ctx.Err() != nil:
		// No verdict: keys never loaded, or the caller gave up waiting.
		return nil, errKeysUnavailable
	case err != nil:
		return nil, invalidToken(ReasonUnknownKey, "unknown kid")
	}
	set := jwt.VerificationKeySet{}
	for _, k := range keys {
		if (k.Algorithm == "" || k.Algorithm == alg) && keyFits(alg, k.Public) {
			set.Keys = append(set.Keys, k.Public)
		}
	}
	if len(set.Keys) == 0 {
		return nil, invalidToken(ReasonUnknownKey, "no key for kid and alg")
	}
	if len(set.Keys) == 1 {
		return set.Keys[0], nil
	}
	return set, nil
}

// verifySignature checks the signature over the signed part with the key,
// or with any key of a set (a token without kid whose issuer has several
// keys that fit), using golang-jwt's signing methods, except for ES256 and
// RS256/384/512, which have faster paths with the same answers.
func verifySignature(t *jws, sig []byte, key any) bool {
	m := jwt.GetSigningMethod(t.alg)
	one := func(k any) bool {
		switch pub := k.(type) {
		case *ecdsa.PublicKey:
			if t.alg == "ES256" {
				if ok, done := verifyES256(t.signed, sig, pub); done {
					return ok
				}
			}
		case *rsa.PublicKey:
			if rm, isRS := m.(*jwt.SigningMethodRSA); isRS {
				if ok, done := verifyRS(t.signed, sig, rm.Hash, pub); done {
					return ok
				}
			}
		}
		return m.Verify(t.signed, sig, k) == nil
	}
	if set, ok := key.(jwt.VerificationKeySet); ok {
		for _, k := range set.Keys {
			if one(k) {
				return true
			}
		}
		return false
	}
	return one(key)
}

// fastCrypto is whether the faster signature checks of internal/p256 and
// internal/rsaverify may be used. With FIPS 140-3 mode on (GODEBUG
// fips140=on or only), every check stays inside the Go Cryptographic
// Module, which also enforces that mode's stricter key rules.
var fastCrypto = !fips140.Enabled()

// verifyES256 checks an ES256 signature with a table precomputed for the
// key (internal/p256: the same answers as crypto/ecdsa, in about 40% of its
// time). done is false when the key cannot have a table, and golang-jwt
// decides.
func verifyES256(signed string, sig []byte, pub *ecdsa.PublicKey) (ok, done bool) {
	if !fastCrypto {
		return false, false
	}
	if len(sig) != 64 {
		return false, true // RFC 7518 §3.4: R and S, 32 bytes each
	}
	k, err := p256.For(pub)
	if err != nil {
		return false, false
	}
	h := sha256.Sum256(unsafe.Slice(unsafe.StringData(signed), len(signed)))
	return k.Verify(h[:], sig[:32], sig[32:]), true
}

// verifyRS checks an RS256, RS384 or RS512 signature with the key's
// modulus precomputed (internal/rsaverify: the same answers as
// crypto/rsa, in about two thirds of its time). done is false when the
// key cannot be precomputed, and golang-jwt decides.
func verifyRS(signed string, sig []byte, h crypto.Hash, pub *rsa.PublicKey) (ok, done bool) {
	if !fastCrypto || !rsaverify.Supports(h) || !h.Available() {
		return false, false
	}
	k, err := rsaverify.For(pub)
	if err != nil {
		return false, false
	}
	d := h.New()
	d.Write(unsafe.Slice(unsafe.StringData(signed), len(signed)))
	var buf [64]byte
	return k.VerifyPKCS1v15(h, d.Sum(buf[:0]), sig), true
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
