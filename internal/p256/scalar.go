package p256

import (
	"crypto/elliptic"
	"encoding/binary"
	"math/big"
	"math/bits"
)

// scalar is a 256-bit integer in four little-endian 64-bit limbs. The
// functions below keep scalars reduced modulo n, the order of P-256, unless
// they say otherwise. None of them is constant time: they only ever handle
// public values.
type scalar [4]uint64

// n is the order of the P-256 base point.
var n = scalar{0xf3b9cac2fc632551, 0xbce6faada7179e84, 0xffffffffffffffff, 0xffffffff00000000}

// nBig is n as a big.Int, for the modular inverse. It is shared: never
// modify it.
var nBig = elliptic.P256().Params().N

// n0 is -n⁻¹ mod 2⁶⁴, the Montgomery reduction constant.
const n0 = 0xccd1c8aaee00bc4f

// rr is 2⁵¹² mod n: montMul by rr turns a Montgomery product back into a
// plain one.
var rr = scalar{0x83244c95be79eea2, 0x4699799c49bd6fa6, 0x2845b2392b6bec59, 0x66e12d94f3d95620}

// setBytes sets x to the big-endian value of b, which may be n or more.
func (x *scalar) setBytes(b *[32]byte) {
	x[3] = binary.BigEndian.Uint64(b[0:8])
	x[2] = binary.BigEndian.Uint64(b[8:16])
	x[1] = binary.BigEndian.Uint64(b[16:24])
	x[0] = binary.BigEndian.Uint64(b[24:32])
}

// bytes writes x to b, big-endian.
func (x *scalar) bytes(b *[32]byte) {
	binary.BigEndian.PutUint64(b[0:8], x[3])
	binary.BigEndian.PutUint64(b[8:16], x[2])
	binary.BigEndian.PutUint64(b[16:24], x[1])
	binary.BigEndian.PutUint64(b[24:32], x[0])
}

// isZero reports whether x is zero.
func (x *scalar) isZero() bool {
	return x[0]|x[1]|x[2]|x[3] == 0
}

// subN returns x - n and whether that borrowed, that is whether x < n.
func (x *scalar) subN() (d scalar, borrow bool) {
	var b uint64
	d[0], b = bits.Sub64(x[0], n[0], 0)
	d[1], b = bits.Sub64(x[1], n[1], b)
	d[2], b = bits.Sub64(x[2], n[2], b)
	d[3], b = bits.Sub64(x[3], n[3], b)
	return d, b != 0
}

// inRange reports whether 1 ≤ x ≤ n-1, the range SEC 1 requires of r and s.
func (x *scalar) inRange() bool {
	_, less := x.subN()
	return less && !x.isZero()
}

// reduce sets x to x mod n. Any 256-bit x is below 2n, so one conditional
// subtraction is enough; this is how a digest, and the x-coordinate of R
// (an element of the base field, whose modulus p exceeds n), become scalars.
func (x *scalar) reduce() {
	if d, less := x.subN(); !less {
		*x = d
	}
}

// montMul sets z = x·y·2⁻²⁵⁶ mod n (Montgomery multiplication, CIOS), for
// x, y < n. z may alias x or y.
func montMul(z, x, y *scalar) {
	var t [5]uint64
	var top uint64
	for i := range 4 {
		// t += x·y[i]
		var c, cc uint64
		for j := range 4 {
			hi, lo := bits.Mul64(x[j], y[i])
			lo, cc = bits.Add64(lo, t[j], 0)
			hi += cc
			lo, cc = bits.Add64(lo, c, 0)
			hi += cc
			t[j], c = lo, hi
		}
		t[4], cc = bits.Add64(t[4], c, 0)
		top = cc

		// t = (t + m·n) / 2⁶⁴, with m chosen so the low limb cancels.
		m := t[0] * n0
		hi, lo := bits.Mul64(m, n[0])
		_, cc = bits.Add64(lo, t[0], 0)
		c = hi + cc
		for j := 1; j < 4; j++ {
			hi, lo := bits.Mul64(m, n[j])
			lo, cc = bits.Add64(lo, t[j], 0)
			hi += cc
			lo, cc = bits.Add64(lo, c, 0)
			hi += cc
			t[j-1], c = lo, hi
		}
		t[3], cc = bits.Add64(t[4], c, 0)
		t[4] = top + cc
	}
	// Now t < 2n: subtract n once if t ≥ n.
	r := scalar{t[0], t[1], t[2], t[3]}
	d, borrow := r.subN()
	if t[4] != 0 || !borrow {
		r = d
	}
	*z = r
}

// mulMod sets z = x·y mod n, for x, y < n. z may alias x or y.
func mulMod(z, x, y *scalar) {
	montMul(z, x, y)
	montMul(z, z, &rr)
}

// invert sets z = x⁻¹ mod n, for 1 ≤ x ≤ n-1. It uses math/big's
// variable-time extended GCD: about 1.5 µs, where a Fermat exponentiation
// (x^(n-2)) with montMul takes about 22 µs.
func invert(z, x *scalar) {
	var xb [32]byte
	x.bytes(&xb)
	var w big.Int
	w.SetBytes(xb[:])
	w.ModInverse(&w, nBig)
	w.FillBytes(xb[:])
	z.setBytes(&xb)
}

// hashToScalar sets e to the digest as an integer modulo n, as SEC 1 §4.1.4
// step 3 and FIPS 186-5 §6.4.2 step 3 (and crypto/ecdsa) do: a digest longer
// than n's 256 bits is truncated to its leftmost 256 bits, a shorter one is
// taken as is, and the result is reduced modulo n.
func hashToScalar(e *scalar, hash []byte) {
	if len(hash) > 32 {
		hash = hash[:32]
	}
	var b [32]byte
	copy(b[32-len(hash):], hash)
	e.setBytes(&b)
	e.reduce()
}
