package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Limits applied by [Parse].
const (
	// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
	minRSABits = 2048
	// maxSetKeys bounds the number of entries in one key set, usable or not.
	maxSetKeys = 1000
)

// Key is one public verification key from a key set.
//
// Public is one of *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey and
// must be treated as read-only: it is shared by every caller that looks the
// key up.
type Key struct {
	ID        string           // "kid", may be empty
	Algorithm string           // JWK "alg", may be empty
	Public    crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	pre       *verifiers       // see [Key.P256]; nil for a Key made outside this package
}

// Set is an immutable parsed key set. A nil *Set is an empty set.
// It is safe for concurrent use.
type Set struct {
	keys    []Key
	skipped []skippedKey
}

// skippedKey records why an entry of a key set was not kept, for logging.
type skippedKey struct {
	ID     string // "kid" when it could be read
	Reason string
}

// Parse parses a JSON Web Key Set (an object with a "keys" array) and keeps
// the entries usable for signature verification.
//
// Entries are skipped, not reported as errors, when their "use" is set and is
// not "sig", their "key_ops" lack "verify", their "kty" is not RSA, EC or OKP
// (symmetric "oct" keys are never accepted), they carry private key members,
// an RSA modulus is below 2048 bits, an EC curve is not P-256, P-384 or P-521,
// an OKP curve is not Ed25519, or the entry is otherwise invalid. Input that
// is not JSON, is not an object with a "keys" array, or has more than 1000
// entries is an error. The "alg" of each key is kept as is; matching it
// against the token's algorithm and the key type is the verifier's job.
func Parse(data []byte) (*Set, error) {
	s, err := parseSet(data)
	if err != nil {
		return nil, fmt.Errorf("jwks: parse key set: %w", err)
	}
	return s, nil
}

// parseSet is [Parse] with errors left unprefixed, so that callers add their
// own context.
func parseSet(data []byte) (*Set, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	rawKeys, ok := doc["keys"]
	if !ok {
		return nil, errors.New(`no "keys" member`)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(rawKeys, &entries); err != nil || entries == nil {
		return nil, errors.New(`"keys" is not an array`)
	}
	if len(entries) > maxSetKeys {
		return nil, fmt.Errorf("%d keys, at most %d allowed", len(entries), maxSetKeys)
	}
	s := &Set{}
	for i, raw := range entries {
		key, err := parseKey(raw)
		if err != nil {
			s.skipped = append(s.skipped, skippedKey{ID: key.ID, Reason: fmt.Sprintf("key #%d: %v", i, err)})
			continue
		}
		s.keys = append(s.keys, key)
	}
	precompute(s.keys, nil)
	return s, nil
}

// inherit takes over the precomputed verifiers of old's keys that s
// holds unchanged. s must not be published yet.
func (s *Set) inherit(old *Set) {
	if s == nil || old == nil {
		return
	}
	precompute(s.keys, old.keys)
}

// parseKey turns one key set entry into a [Key]. On error the returned Key
// carries at most the entry's ID, for the skip record.
func parseKey(raw json.RawMessage) (Key, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return Key{}, errors.New("not a json object")
	}
	var id Key
	_ = json.Unmarshal(members["kid"], &id.ID)

	// Decide on the raw members first, before any key material is decoded.
	var kty string
	_ = json.Unmarshal(members["kty"], &kty)
	switch kty {
	case "RSA", "EC", "OKP":
	default:
		return id, fmt.Errorf("unsupported kty %.16q", kty)
	}
	// Members that carry private or secret key material (RFC 7518 §6.2.2,
	// §6.3.2, §6.4.1; RFC 8037 §2). An entry with any of them is skipped
	// whole: a verifier never needs them, and a set that publishes them is
	// misconfigured.
	for _, m := range [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := members[m]; ok {
			return id, fmt.Errorf("carries private member %q", m)
		}
	}

	jk, err := jwk.ParseKey(raw)
	if err != nil {
		return id, fmt.Errorf("invalid: %w", err)
	}
	if use, ok := jk.KeyUsage(); ok && use != string(jwk.ForSignature) {
		return id, fmt.Errorf("use %.16q is not sig", use)
	}
	if ops, ok := jk.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return id, errors.New(`key_ops lack "verify"`)
	}
	if ak, ok := jk.(jwk.AsymmetricKey); !ok || ak.IsPrivate() {
		return id, errors.New("not a public key")
	}
	var pub any
	if err := jwk.Export(jk, &pub); err != nil {
		return id, fmt.Errorf("export: %w", err)
	}
	if err := checkPublic(pub); err != nil {
		return id, err
	}
	key := Key{ID: id.ID, Public: pub}
	if alg, ok := jk.Algorithm(); ok {
		key.Algorithm = alg.String()
	}
	return key, nil
}

// checkPublic accepts only the public key types and sizes portcullis verifies
// with.
func checkPublic(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < minRSABits {
			return fmt.Errorf("rsa key below %d bits", minRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errors.New("unsupported ec curve")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return errors.New("invalid ed25519 key length")
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// Lookup returns the keys whose ID equals kid, or every key when kid is
// empty. Keys without an ID are only returned for an empty kid. The result is
// a fresh slice the caller may modify; it is nil when nothing matches or s is
// nil.
func (s *Set) Lookup(kid string) []Key {
	if s == nil {
		return nil
	}
	if kid == "" {
		return slices.Clone(s.keys)
	}
	var out []Key
	for _, k := range s.keys {
		if k.ID == kid {
			out = append(out, k)
		}
	}
	return out
}

// Len returns the number of usable keys in s; 0 for a nil set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// equalKeys reports whether two sets hold the same keys in the same order,
// so a refresh that changed nothing is not logged as a change.
func (s *Set) equalKeys(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	for i, k := range s.keys {
		ok := o.keys[i]
		if k.ID != ok.ID || k.Algorithm != ok.Algorithm || !samePublic(k.Public, ok.Public) {
			return false
		}
	}
	return true
}

// samePublic compares two public keys of the types [checkPublic] accepts,
// all of which have an Equal method.
func samePublic(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}
