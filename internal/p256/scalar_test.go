package p256

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"
)

// toScalar converts 0 ≤ x < 2²⁵⁶.
func toScalar(x *big.Int) scalar {
	var b [32]byte
	x.FillBytes(b[:])
	var s scalar
	s.setBytes(&b)
	return s
}

// toBig converts s.
func toBig(s *scalar) *big.Int {
	var b [32]byte
	s.bytes(&b)
	return new(big.Int).SetBytes(b[:])
}

// scalarCases returns edge values below n and seeded random ones.
func scalarCases(random int) []*big.Int {
	one := big.NewInt(1)
	cs := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3),
		new(big.Int).Sub(bigN, one),
		new(big.Int).Sub(bigN, big.NewInt(2)),
		new(big.Int).Rsh(bigN, 1),
		new(big.Int).Lsh(one, 255),
		new(big.Int).Sub(new(big.Int).Lsh(one, 192), one),
		new(big.Int).Lsh(one, 64),
		new(big.Int).Sub(new(big.Int).Lsh(one, 64), one),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range random {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		cs = append(cs, modN(new(big.Int).SetBytes(b[:])))
	}
	return cs
}

func TestConstants(t *testing.T) {
	if got := toBig(&n); got.Cmp(bigN) != 0 {
		t.Errorf("n = %x, want %x", got, bigN)
	}
	r := new(big.Int).Lsh(big.NewInt(1), 256)
	if got, want := toBig(&rr), new(big.Int).Mod(new(big.Int).Mul(r, r), bigN); got.Cmp(want) != 0 {
		t.Errorf("rr = %x, want %x", got, want)
	}
	// n0·n ≡ -1 (mod 2⁶⁴)
	if n0*n[0] != ^uint64(0) {
		t.Errorf("n0·n[0] = %#x, want -1 mod 2⁶⁴", uint64(n0)*n[0])
	}
}

func TestScalarBytesRoundTrip(t *testing.T) {
	for _, x := range scalarCases(20) {
		s := toScalar(x)
		if got := toBig(&s); got.Cmp(x) != 0 {
			t.Errorf("round trip of %x = %x", x, got)
		}
	}
}

func TestMulMod(t *testing.T) {
	cs := scalarCases(40)
	for _, x := range cs {
		for _, y := range cs {
			sx, sy := toScalar(x), toScalar(y)
			var z scalar
			mulMod(&z, &sx, &sy)
			want := modN(new(big.Int).Mul(x, y))
			if got := toBig(&z); got.Cmp(want) != 0 {
				t.Fatalf("%x · %x = %x, want %x", x, y, got, want)
			}
			mulMod(&sx, &sx, &sy) // aliasing
			if sx != z {
				t.Fatalf("aliased mulMod differs for %x · %x", x, y)
			}
		}
	}
}

func TestInvert(t *testing.T) {
	for _, x := range scalarCases(200) {
		if x.Sign() == 0 {
			continue
		}
		s := toScalar(x)
		var z, one scalar
		invert(&z, &s)
		if got, want := toBig(&z), invN(x); got.Cmp(want) != 0 {
			t.Fatalf("1/%x = %x, want %x", x, got, want)
		}
		mulMod(&one, &z, &s)
		if one != (scalar{1}) {
			t.Fatalf("x · 1/x = %x for x = %x", toBig(&one), x)
		}
	}
}

// TestReduce covers the reduction of x(R) modulo n, including the values in
// [n, p) that x(R) can take but a signature's r cannot.
func TestReduce(t *testing.T) {
	one := big.NewInt(1)
	for _, x := range []*big.Int{
		big.NewInt(0), one,
		new(big.Int).Sub(bigN, one),
		bigN,
		new(big.Int).Add(bigN, one),
		new(big.Int).Sub(bigP, one),
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), one),
	} {
		s := toScalar(x)
		s.reduce()
		if got, want := toBig(&s), modN(x); got.Cmp(want) != 0 {
			t.Errorf("%x mod n = %x, want %x", x, got, want)
		}
	}
}

func TestInRange(t *testing.T) {
	one := big.NewInt(1)
	for _, tc := range []struct {
		x    *big.Int
		want bool
	}{
		{big.NewInt(0), false},
		{one, true},
		{new(big.Int).Sub(bigN, one), true},
		{bigN, false},
		{new(big.Int).Add(bigN, one), false},
		{new(big.Int).Sub(new(big.Int).Lsh(one, 256), one), false},
	} {
		s := toScalar(tc.x)
		if got := s.inRange(); got != tc.want {
			t.Errorf("inRange(%x) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

func TestHashToScalar(t *testing.T) {
	nb := bigN.FillBytes(make([]byte, 32))
	long := bytes.Repeat([]byte{0xff}, 64)
	for _, h := range [][]byte{
		nil, {}, {1}, {0xff, 0xee}, bytes.Repeat([]byte{0xab}, 31),
		bytes.Repeat([]byte{0xab}, 32), nb, append(nb, 7),
		bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xcd}, 48), long,
	} {
		var e scalar
		hashToScalar(&e, h)
		if got, want := toBig(&e), hashInt(h); got.Cmp(want) != 0 {
			t.Errorf("hash %x → %x, want %x", h, got, want)
		}
	}
}
