package jwks

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Signing algorithms a [KeyRing] and [GenerateKey] support (RFC 7518 §3.1,
// RFC 8037 §3.1).
const (
	algES256 = "ES256" // ECDSA on P-256 with SHA-256, the default
	algES384 = "ES384" // ECDSA on P-384 with SHA-384
	algRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	algPS256 = "PS256" // RSASSA-PSS with SHA-256
	algEdDSA = "EdDSA" // Ed25519
)

// newRSABits is the modulus size of RSA keys made by [GenerateKey]. Keys of
// at least 2048 bits (see [checkPublic]) are still accepted when loaded.
const newRSABits = 3072

// pemPrivateKey is the PEM block type of a PKCS#8 private key (RFC 7468 §10).
const pemPrivateKey = "PRIVATE KEY"

// GenerateKey makes a new private key for the signing algorithm alg: a P-256
// or P-384 ECDSA key for ES256 and ES384, a 3072-bit RSA key for RS256 and
// PS256, an Ed25519 key for EdDSA. An empty alg means ES256. The randomness
// comes from crypto/rand. RSA generation takes up to a few seconds.
func GenerateKey(alg string) (crypto.Signer, error) {
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case "", algES256:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case algES384:
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case algRS256, algPS256:
		s, err = rsa.GenerateKey(rand.Reader, newRSABits)
	case algEdDSA:
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, unsupportedAlg(alg)
	}
	if err != nil {
		return nil, fmt.Errorf("jwks: generate %s key: %w", alg, err)
	}
	return s, nil
}

// unsupportedAlg is the error for a signing algorithm a [KeyRing] cannot
// use. The name is quoted and clipped, as it may come from a config file.
func unsupportedAlg(alg string) error {
	return fmt.Errorf("jwks: unsupported signing algorithm %.16q (want ES256, ES384, RS256, PS256 or EdDSA)", alg)
}

// MarshalPrivateKey encodes s as a PKCS#8 PEM block ("PRIVATE KEY"). s must
// be an *ecdsa.PrivateKey on P-256, P-384 or P-521, an *rsa.PrivateKey of at
// least 2048 bits or an ed25519.PrivateKey. The result is unencrypted key
// material: write it with mode 0600.
func MarshalPrivateKey(s crypto.Signer) ([]byte, error) {
	switch s.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("jwks: marshal private key: unsupported key type %T", s)
	}
	if err := checkPublic(s.Public()); err != nil {
		return nil, fmt.Errorf("jwks: marshal private key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		return nil, fmt.Errorf("jwks: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParsePrivateKey decodes one PKCS#8 PEM block ("PRIVATE KEY") holding an
// ECDSA (P-256, P-384, P-521), RSA (at least 2048 bits) or Ed25519 private
// key. Anything but whitespace after the block is an error, so a file with
// two keys is not silently half-used. Encrypted PKCS#8 is not supported.
// Errors never quote the input.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	s, err := parsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("jwks: parse private key: %w", err)
	}
	return s, nil
}

// parsePrivateKey is [ParsePrivateKey] with errors left unprefixed, so that
// callers add their own context.
func parsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != pemPrivateKey {
		return nil, fmt.Errorf("PEM block is %.32q, want %q "+
			"(PKCS#8; convert with openssl pkcs8 -topk8 -nocrypt)", block.Type, pemPrivateKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	raw, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// The x509 errors describe the structure, never the key bytes.
		return nil, err
	}
	var s crypto.Signer
	switch k := raw.(type) {
	case *ecdsa.PrivateKey:
		s = k
	case *rsa.PrivateKey:
		s = k
	case ed25519.PrivateKey:
		s = k
	default:
		return nil, fmt.Errorf("unsupported key type %T", raw)
	}
	if err := checkPublic(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// keyAlgorithm returns the signing algorithm for s: preferred when it fits
// the key's type (and curve), otherwise the one its type implies. P-521
// keys are not used for signing.
func keyAlgorithm(s crypto.Signer, preferred string) (string, error) {
	if algFits(s, preferred) {
		return preferred, nil
	}
	for _, alg := range [...]string{algES256, algES384, algRS256, algEdDSA} {
		if algFits(s, alg) {
			return alg, nil
		}
	}
	return "", fmt.Errorf("no supported signing algorithm for a %s", describeKey(s))
}

// algFits reports whether s can sign with alg.
func algFits(s crypto.Signer, alg string) bool {
	switch k := s.(type) {
	case *ecdsa.PrivateKey:
		return (alg == algES256 && k.Curve == elliptic.P256()) ||
			(alg == algES384 && k.Curve == elliptic.P384())
	case *rsa.PrivateKey:
		return alg == algRS256 || alg == algPS256
	case ed25519.PrivateKey:
		return alg == algEdDSA
	}
	return false
}

// describeKey names a key's type for error messages, without key material.
func describeKey(s crypto.Signer) string {
	switch k := s.(type) {
	case *ecdsa.PrivateKey:
		return "ecdsa " + k.Curve.Params().Name + " key"
	case *rsa.PrivateKey:
		return fmt.Sprintf("%d-bit rsa key", k.N.BitLen())
	}
	return fmt.Sprintf("%T", s)
}

// thumbprintID returns the key ID of pub: its RFC 7638 JWK thumbprint with
// SHA-256, base64url without padding. It depends on the public key only, so
// it is the same on every start and on every replica holding the key.
func thumbprintID(pub crypto.PublicKey) (string, error) {
	jk, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum, err := jk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
