package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"

	"filippo.io/nistec"
)

// PublicKey is a P-256 public key with a precomputed table of its
// multiples, for fast signature verification. It is immutable, and safe for
// concurrent use.
type PublicKey struct {
	coords coords
	table  *table
}

// coords is an affine point as X‖Y, each 32 bytes big-endian: the cache
// key, and the uncompressed encoding without its leading 0x04.
type coords [64]byte

var (
	errNotP256    = errors.New("p256: not a P-256 public key")
	errBadCoords  = errors.New("p256: public key coordinates out of range")
	errNotOnCurve = errors.New("p256: public key is not a point on the curve")
)

// NewPublicKey validates pub and precomputes its table. It fails unless
// pub's curve is P-256 (its Params are elliptic.P256's, the test
// crypto/ecdsa makes) and pub is a point of that curve, which excludes the
// point at infinity. The precomputation takes about 0.7 ms and 218 KiB;
// [For] caches its result.
func NewPublicKey(pub *ecdsa.PublicKey) (*PublicKey, error) {
	c, err := coordsOf(pub)
	if err != nil {
		return nil, err
	}
	return newPublicKey(&c, defaultWindow)
}

// coordsOf returns pub's coordinates, or an error if pub is not a P-256
// key with coordinates in [0, 2²⁵⁶). Whether the point is on the curve is
// checked by pointOf.
func coordsOf(pub *ecdsa.PublicKey) (c coords, err error) {
	if pub == nil || pub.Curve == nil || pub.Curve.Params() != elliptic.P256().Params() {
		return c, errNotP256
	}
	// Reading the coordinates is the one use of the deprecated fields that
	// stays sound: it builds no key, and it keeps a cache hit free of the
	// allocations and the on-curve check of pub.Bytes (0.4 µs, 3 allocs).
	//lint:ignore SA1019 read-only, validated by pointOf before any use
	x, y := pub.X, pub.Y
	if x == nil || y == nil || x.Sign() < 0 || y.Sign() < 0 || x.BitLen() > 256 || y.BitLen() > 256 {
		return c, errBadCoords
	}
	x.FillBytes(c[:32])
	y.FillBytes(c[32:])
	return c, nil
}

// pointOf decodes c. nistec rejects coordinates not below the field
// modulus and points not on the curve; the point at infinity has no affine
// coordinates, so it cannot get through either.
func pointOf(c *coords) (*nistec.P256Point, error) {
	var enc [65]byte
	enc[0] = 4 // uncompressed
	copy(enc[1:], c[:])
	q, err := nistec.NewP256Point().SetBytes(enc[:])
	if err != nil {
		return nil, errNotOnCurve
	}
	return q, nil
}

// newPublicKey validates c and builds its table with w-bit windows.
func newPublicKey(c *coords, w uint) (*PublicKey, error) {
	if w < minWindow || w > maxWindow {
		return nil, errors.New("p256: unsupported table window")
	}
	q, err := pointOf(c)
	if err != nil {
		return nil, err
	}
	return &PublicKey{coords: *c, table: newTable(q, w)}, nil
}

// Verify reports whether r‖s is a valid ES256 signature of hash by k, and
// accepts exactly the signatures crypto/ecdsa.Verify accepts. r and s are
// the two halves of a JWS signature, 32 bytes each, big-endian; any other
// length is refused. hash is the SHA-256 digest of the signing input; like
// crypto/ecdsa, Verify uses the leftmost 256 bits of a longer hash and
// zero-extends a shorter one. Verify never panics.
//
// It follows SEC 1 v2 §4.1.4: r and s must be in [1, n-1]; e is the hash as
// an integer; w = s⁻¹, u₁ = e·w and u₂ = r·w modulo n; R = u₁·G + u₂·Q must
// not be the point at infinity; and the signature is valid if and only if
// x(R) mod n equals r.
func (k *PublicKey) Verify(hash, r, s []byte) bool {
	if k == nil || k.table == nil || len(r) != 32 || len(s) != 32 {
		return false
	}
	var rs, ss scalar
	rs.setBytes((*[32]byte)(r))
	ss.setBytes((*[32]byte)(s))
	if !rs.inRange() || !ss.inRange() {
		return false
	}

	var e, w, u1, u2 scalar
	hashToScalar(&e, hash)
	invert(&w, &ss)
	mulMod(&u1, &e, &w)
	mulMod(&u2, &rs, &w)

	var u1b [32]byte
	u1.bytes(&u1b)
	R, err := nistec.NewP256Point().ScalarBaseMult(u1b[:])
	if err != nil {
		return false
	}
	R.Add(R, k.table.mul(nistec.NewP256Point(), &u2))
	return xModNEquals(R, &rs)
}

// xModNEquals reports whether R is not the point at infinity and
// x(R) mod n = r.
func xModNEquals(R *nistec.P256Point, r *scalar) bool {
	x, err := R.BytesX() // fails only for the point at infinity
	if err != nil || len(x) != 32 {
		return false
	}
	var v scalar
	v.setBytes((*[32]byte)(x))
	v.reduce()
	return v == *r
}
