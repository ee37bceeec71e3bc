package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"math/big"
	"testing"
	"unsafe"

	"filippo.io/nistec"
)

// Curve constants as big.Ints, for building test cases.
var (
	bigN = elliptic.P256().Params().N
	bigP = elliptic.P256().Params().P
	bigB = elliptic.P256().Params().B
)

// testKey is a P-256 key for tests: d is nil when the private key is
// unknown.
type testKey struct {
	name string
	d    *big.Int
	pub  *ecdsa.PublicKey
}

// keyFromD returns the key with private scalar d.
func keyFromD(tb testing.TB, name string, d *big.Int) testKey {
	tb.Helper()
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
	if err != nil {
		tb.Fatalf("key %s: %v", name, err)
	}
	return testKey{name: name, d: d, pub: &priv.PublicKey}
}

// hexInt parses a hexadecimal constant.
func hexInt(s string) *big.Int {
	x, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("bad hex constant " + s)
	}
	return x
}

// bigXKey returns the public key whose x-coordinate is the smallest value
// of at least n that is on the curve. Its private key is unknown, but a
// signature with e = 0 and s = r has R = Q, so x(R) ≥ n and r = x(Q) - n.
func bigXKey(tb testing.TB) testKey {
	tb.Helper()
	for x := new(big.Int).Set(bigN); x.Cmp(bigP) < 0; x.Add(x, big.NewInt(1)) {
		// y² = x³ - 3x + b
		y2 := new(big.Int).Exp(x, big.NewInt(3), bigP)
		y2.Sub(y2, new(big.Int).Mul(x, big.NewInt(3)))
		y2.Add(y2, bigB)
		y2.Mod(y2, bigP)
		y := new(big.Int).ModSqrt(y2, bigP)
		if y == nil {
			continue
		}
		enc := append([]byte{4}, x.FillBytes(make([]byte, 32))...)
		enc = append(enc, y.FillBytes(make([]byte, 32))...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), enc)
		if err != nil {
			tb.Fatalf("x = n + %v: %v", new(big.Int).Sub(x, bigN), err)
		}
		return testKey{name: "x≥n", pub: pub}
	}
	tb.Fatal("no point with x ≥ n")
	return testKey{}
}

// testKeys returns the fixed keys of the tests: extreme private scalars,
// two arbitrary ones, and a key whose x-coordinate is at least n.
func testKeys(tb testing.TB) []testKey {
	tb.Helper()
	return []testKey{
		keyFromD(tb, "d=1", big.NewInt(1)),
		keyFromD(tb, "d=2", big.NewInt(2)),
		keyFromD(tb, "d=n-1", new(big.Int).Sub(bigN, big.NewInt(1))),
		keyFromD(tb, "d=a", hexInt("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")),
		keyFromD(tb, "d=b", hexInt("519b423d715f8b581f4fa8ee59f4771a5b44c8130b4e3eacca54a56dda72b464")),
		bigXKey(tb),
	}
}

// mustKey returns NewPublicKey(pub), failing the test on error.
func mustKey(tb testing.TB, pub *ecdsa.PublicKey) *PublicKey {
	tb.Helper()
	k, err := NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// reference is the verdict Verify must match: crypto/ecdsa.Verify, for the
// 32-byte r and s that a 64-byte ES256 signature splits into (RFC 7518
// §3.4; JWS libraries refuse any other signature length before verifying).
func reference(pub *ecdsa.PublicKey, hash, r, s []byte) bool {
	if len(r) != 32 || len(s) != 32 {
		return false
	}
	return ecdsa.Verify(pub, hash, new(big.Int).SetBytes(r), new(big.Int).SetBytes(s))
}

// hashInt is hash as crypto/ecdsa reads it, reduced modulo n.
func hashInt(hash []byte) *big.Int {
	if len(hash) > 32 {
		hash = hash[:32]
	}
	e := new(big.Int).SetBytes(hash)
	return e.Mod(e, bigN)
}

// bytes32 returns x mod 2²⁵⁶ as 32 big-endian bytes.
func bytes32(x *big.Int) []byte {
	y := new(big.Int).Mod(x, new(big.Int).Lsh(big.NewInt(1), 256))
	return y.FillBytes(make([]byte, 32))
}

// modN returns x mod n.
func modN(x *big.Int) *big.Int {
	return new(big.Int).Mod(x, bigN)
}

// invN returns x⁻¹ mod n.
func invN(x *big.Int) *big.Int {
	return new(big.Int).ModInverse(modN(x), bigN)
}

// xOfMultiple returns x(c·Q) for a public key Q (or G when pub is nil), and
// false if c·Q is the point at infinity.
func xOfMultiple(tb testing.TB, pub *ecdsa.PublicKey, c *big.Int) (*big.Int, bool) {
	tb.Helper()
	q := nistec.NewP256Point().SetGenerator()
	if pub != nil {
		enc, err := pub.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := q.SetBytes(enc); err != nil {
			tb.Fatal(err)
		}
	}
	p, err := nistec.NewP256Point().ScalarMult(q, modN(c).FillBytes(make([]byte, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	x, err := p.BytesX()
	if err != nil {
		return nil, false
	}
	return new(big.Int).SetBytes(x), true
}

// signWithNonce signs hash with private key d and nonce k, deterministically
// (crypto/ecdsa ignores the caller's randomness): r = x(k·G) mod n,
// s = k⁻¹·(e + r·d) mod n.
func signWithNonce(tb testing.TB, d, k *big.Int, hash []byte) (r, s []byte) {
	tb.Helper()
	x, ok := xOfMultiple(tb, nil, k)
	if !ok {
		tb.Fatal("nonce is a multiple of n")
	}
	ri := modN(x)
	si := new(big.Int).Mul(ri, d)
	si.Add(si, hashInt(hash))
	si.Mul(si, invN(k))
	return bytes32(ri), bytes32(modN(si))
}

// nonceFrom derives a nonzero nonce from seed.
func nonceFrom(seed ...[]byte) *big.Int {
	h := sha256.New()
	for _, b := range seed {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	k := modN(new(big.Int).SetBytes(h.Sum(nil)))
	if k.Sign() == 0 {
		k.SetInt64(1)
	}
	return k
}

// tableBytes returns the memory the key's table takes.
func (k *PublicKey) tableBytes() int {
	return len(k.table.points) * int(unsafe.Sizeof(nistec.P256Point{}))
}

// flip returns a copy of b with bit i (0 = least significant bit of the last
// byte) inverted.
func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[len(c)-1-i/8] ^= 1 << (i % 8)
	return c
}
