// Package rsaverify verifies RSASSA-PKCS1-v1_5 signatures (RS256, RS384,
// RS512) with the modulus's Montgomery constants computed once per key.
//
// crypto/rsa recomputes them on every verification: about a third of the
// time of an RSA-2048 check goes to rebuilding R² mod N for a key that a
// gateway uses for months. The arithmetic here is crypto/rsa's own,
// published as filippo.io/bigmod, and the checks are crypto/rsa's: the
// signature must be exactly as long as the modulus and less than it, and
// the recovered encoding is compared as a whole with the one expected
// (RFC 8017 §8.2.2), never parsed, so padding and DigestInfo tricks have
// nothing to work with. Only ordinary keys get a PublicKey here: a
// positive, odd modulus of at least 1024 bits and an odd exponent from 3
// to 2³¹-1. For any other key (which crypto/rsa refuses, or accepts only
// through a GODEBUG setting or as a negative modulus' absolute value)
// callers fall back to crypto/rsa, and it decides.
//
// The arithmetic is not the FIPS 140-3 module's: with fips140 on, callers
// must use crypto/rsa.
//
// Verification uses only public data, so it need not be constant time.
package rsaverify

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"errors"

	"filippo.io/bigmod"
)

// PublicKey is an RSA public key ready for verification. It is immutable
// and safe for concurrent use.
type PublicKey struct {
	n    *bigmod.Modulus
	e    uint
	size int // the modulus's length in bytes, which a signature must have
}

var errKey = errors.New("rsaverify: not an RSA public key crypto/rsa accepts")

// NewPublicKey precomputes pub's modulus. It fails for keys crypto/rsa
// refuses to verify with.
func NewPublicKey(pub *rsa.PublicKey) (*PublicKey, error) {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.N.Bit(0) == 0 || pub.N.BitLen() < 1024 ||
		pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return nil, errKey
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, errKey
	}
	return &PublicKey{n: n, e: uint(pub.E), size: n.Size()}, nil
}

// digestInfo holds the DER prefixes of the DigestInfo of each hash
// (RFC 8017 §9.2, note 1).
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// VerifyPKCS1v15 reports whether sig is a valid RSASSA-PKCS1-v1_5
// signature by k of hashed, the digest of the message by h. For SHA-256,
// SHA-384 and SHA-512 it accepts exactly the signatures rsa.VerifyPKCS1v15
// accepts; any other hash is refused. It never panics.
func (k *PublicKey) VerifyPKCS1v15(h crypto.Hash, hashed, sig []byte) bool {
	prefix, ok := digestInfo[h]
	if k == nil || k.n == nil || !ok || len(hashed) != h.Size() || len(sig) != k.size {
		return false
	}
	tLen := len(prefix) + len(hashed)
	if k.size < tLen+11 {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sig, k.n)
	if err != nil {
		return false // s ≥ n
	}
	em := bigmod.NewNat().ExpShortVarTime(s, k.e, k.n).Bytes(k.n)
	// EM = 0x00 ‖ 0x01 ‖ PS (0xff, at least 8 bytes) ‖ 0x00 ‖ DigestInfo ‖ hash
	psEnd := k.size - tLen - 1
	if em[0] != 0 || em[1] != 1 || em[psEnd] != 0 {
		return false
	}
	for _, b := range em[2:psEnd] {
		if b != 0xff {
			return false
		}
	}
	return bytes.Equal(em[psEnd+1:k.size-len(hashed)], prefix) && bytes.Equal(em[k.size-len(hashed):], hashed)
}

// Supports reports whether VerifyPKCS1v15 handles h.
func Supports(h crypto.Hash) bool {
	_, ok := digestInfo[h]
	return ok
}
