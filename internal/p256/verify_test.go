package p256

//lint:file-ignore SA1019 the tests build invalid keys from coordinates on purpose

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// check verifies (hash, r, s) with k and with crypto/ecdsa and fails the
// test unless both agree and agree with want.
func check(t *testing.T, what string, k *PublicKey, pub *ecdsa.PublicKey, hash, r, s []byte, want bool) {
	t.Helper()
	ref := reference(pub, hash, r, s)
	got := k.Verify(hash, r, s)
	if got != ref || got != want {
		t.Errorf("%s: Verify = %v, crypto/ecdsa = %v, want %v (hash %x r %x s %x)", what, got, ref, want, hash, r, s)
	}
}

// agree fails the test unless k and crypto/ecdsa give the same verdict.
func agree(t *testing.T, what string, k *PublicKey, pub *ecdsa.PublicKey, hash, r, s []byte) {
	t.Helper()
	check(t, what, k, pub, hash, r, s, reference(pub, hash, r, s))
}

// splitASN1 converts an ASN.1 ECDSA signature to the JWS r‖s halves.
func splitASN1(t *testing.T, sig []byte) (r, s []byte) {
	t.Helper()
	var inner cryptobyte.String
	var ri, si big.Int
	in := cryptobyte.String(sig)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&ri) || !inner.ReadASN1Integer(&si) {
		t.Fatal("bad ASN.1 signature")
	}
	return ri.FillBytes(make([]byte, 32)), si.FillBytes(make([]byte, 32))
}

// mutations returns variants of a valid signature (r, s) over hash, each
// with the verdict crypto/ecdsa must also give.
func mutations(hash, r, s []byte) []struct {
	name    string
	hash    []byte
	r, s    []byte
	wantAll *bool // nil: whatever crypto/ecdsa says
} {
	yes, no := true, false
	one := big.NewInt(1)
	ri, si := new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)
	type m = struct {
		name    string
		hash    []byte
		r, s    []byte
		wantAll *bool
	}
	ms := []m{
		{"genuine", hash, r, s, &yes},
		{"high s (n-s)", hash, r, bytes32(new(big.Int).Sub(bigN, si)), &yes},
		{"wrong hash", flip(hash, 0), r, s, &no},
		{"swapped", hash, s, r, &no},
		{"r=0", hash, make([]byte, 32), s, &no},
		{"s=0", hash, r, make([]byte, 32), &no},
		{"r=n", hash, bytes32(bigN), s, &no},
		{"s=n", hash, r, bytes32(bigN), &no},
		{"r=n+r", hash, bytes32(new(big.Int).Add(bigN, ri)), s, nil},
		{"r=n+1", hash, bytes32(new(big.Int).Add(bigN, one)), s, &no},
		{"s=n+1", hash, r, bytes32(new(big.Int).Add(bigN, one)), &no},
		{"s=n+s", hash, r, bytes32(new(big.Int).Add(bigN, si)), nil},
		{"r=n-1", hash, bytes32(new(big.Int).Sub(bigN, one)), s, &no},
		{"s=n-1", hash, r, bytes32(new(big.Int).Sub(bigN, one)), &no},
		{"r=2²⁵⁶-1", hash, bytes.Repeat([]byte{0xff}, 32), s, &no},
		{"r truncated", hash, r[1:], s, &no},
		{"s truncated", hash, r, s[:31], &no},
		{"r extended", hash, append([]byte{0}, r...), s, &no},
		{"s extended", hash, r, append(append([]byte{}, s...), 0), &no},
		{"r empty", hash, nil, s, &no},
		{"hash truncated", hash[:len(hash)-1], r, s, &no},
		{"hash extended", append(append([]byte{}, hash...), 0xaa), r, s, nil},
		{"hash empty", nil, r, s, &no},
	}
	for _, bit := range []int{0, 1, 7, 8, 100, 128, 200, 255} {
		ms = append(ms,
			m{"r bit flipped", hash, flip(r, bit), s, &no},
			m{"s bit flipped", hash, r, flip(s, bit), &no},
			m{"hash bit flipped", flip(hash, bit), r, s, &no})
	}
	return ms
}

func TestKnownAnswers(t *testing.T) {
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := mustKey(t, &other.PublicKey)
	for i := range 4 {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k := mustKey(t, &priv.PublicKey)
		h := sha256.Sum256([]byte{byte(i), 'm', 's', 'g'})
		hash := h[:]

		asn, err := ecdsa.SignASN1(rand.Reader, priv, hash)
		if err != nil {
			t.Fatal(err)
		}
		r1, s1 := splitASN1(t, asn)
		ri, si, err := ecdsa.Sign(rand.Reader, priv, hash)
		if err != nil {
			t.Fatal(err)
		}
		r2, s2 := ri.FillBytes(make([]byte, 32)), si.FillBytes(make([]byte, 32))

		for _, sig := range [][2][]byte{{r1, s1}, {r2, s2}} {
			for _, m := range mutations(hash, sig[0], sig[1]) {
				if m.wantAll != nil {
					check(t, m.name, k, &priv.PublicKey, m.hash, m.r, m.s, *m.wantAll)
				} else {
					agree(t, m.name, k, &priv.PublicKey, m.hash, m.r, m.s)
				}
			}
			check(t, "another key", otherKey, &other.PublicKey, hash, sig[0], sig[1], false)
		}
	}
}

// TestHashLengths signs digests shorter and longer than 256 bits: like
// crypto/ecdsa, Verify must use the leftmost 256 bits of a longer one.
func TestHashLengths(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey(t, &priv.PublicKey)
	h512 := sha512.Sum512([]byte("long"))
	for _, hash := range [][]byte{h512[:], h512[:48], h512[:33], h512[:20], h512[:1], bytes.Repeat([]byte{0xff}, 32)} {
		asn, err := ecdsa.SignASN1(rand.Reader, priv, hash)
		if err != nil {
			t.Fatal(err)
		}
		r, s := splitASN1(t, asn)
		check(t, "signed", k, &priv.PublicKey, hash, r, s, true)
		if len(hash) > 32 {
			// Only the first 256 bits count.
			check(t, "tail changed", k, &priv.PublicKey, flip(hash, 0), r, s, true)
			check(t, "truncated to 32", k, &priv.PublicKey, hash[:32], r, s, true)
		}
		check(t, "head changed", k, &priv.PublicKey, flip(hash, len(hash)*8-1), r, s, false)
	}
}

// TestFixedKeys signs with the fixed test keys, including Q = G, Q = 2G and
// Q = -G, whose tables hold multiples of G itself.
func TestFixedKeys(t *testing.T) {
	for _, key := range testKeys(t) {
		if key.d == nil {
			continue
		}
		k := mustKey(t, key.pub)
		for i := range 3 {
			h := sha256.Sum256([]byte{byte(i)})
			r, s := signWithNonce(t, key.d, nonceFrom(h[:], []byte(key.name)), h[:])
			check(t, key.name, k, key.pub, h[:], r, s, true)
			check(t, key.name+" flipped", k, key.pub, h[:], flip(r, 3), s, false)
		}
	}
}

// TestInfinity builds signatures for which R = u₁·G + u₂·Q is the point at
// infinity: with Q = d·G, R = (e + r·d)·s⁻¹·G, which vanishes when
// e = -r·d mod n, whatever s. Both verifiers must reject them.
func TestInfinity(t *testing.T) {
	for _, key := range testKeys(t) {
		if key.d == nil {
			continue
		}
		k := mustKey(t, key.pub)
		for _, ri := range []*big.Int{big.NewInt(1), big.NewInt(12345), new(big.Int).Sub(bigN, big.NewInt(1)), nonceFrom([]byte("r"))} {
			e := modN(new(big.Int).Neg(new(big.Int).Mul(ri, key.d)))
			for _, si := range []*big.Int{big.NewInt(1), big.NewInt(7), new(big.Int).Sub(bigN, big.NewInt(1)), nonceFrom([]byte("s"))} {
				check(t, key.name+" R=∞", k, key.pub, bytes32(e), bytes32(ri), bytes32(si), false)
			}
		}
	}
}

// TestDoubling builds valid signatures for which u₁·G = u₂·Q, so that the
// final addition is a doubling: with e = r·d and s = 2·r·d·k⁻¹, both halves
// are (k/2)·G and R = k·G.
func TestDoubling(t *testing.T) {
	for _, key := range testKeys(t) {
		if key.d == nil {
			continue
		}
		k := mustKey(t, key.pub)
		for i := range 3 {
			nonce := nonceFrom([]byte{byte(i)}, []byte(key.name))
			x, _ := xOfMultiple(t, nil, nonce)
			ri := modN(x)
			e := modN(new(big.Int).Mul(ri, key.d))
			si := modN(new(big.Int).Mul(new(big.Int).Mul(big.NewInt(2), e), invN(nonce)))
			check(t, key.name+" doubling", k, key.pub, bytes32(e), bytes32(ri), bytes32(si), true)
			check(t, key.name+" doubling, other s", k, key.pub, bytes32(e), bytes32(ri), bytes32(new(big.Int).Add(si, big.NewInt(1))), false)
		}
	}
}

// TestZeroHash signs e = 0 (an all-zero digest, or one equal to n): then
// u₁ = 0 and R = u₂·Q alone.
func TestZeroHash(t *testing.T) {
	for _, key := range testKeys(t) {
		if key.d == nil {
			continue
		}
		k := mustKey(t, key.pub)
		for _, hash := range [][]byte{make([]byte, 32), bytes32(bigN), nil} {
			r, s := signWithNonce(t, key.d, nonceFrom(hash, []byte(key.name)), hash)
			check(t, key.name+" e=0", k, key.pub, hash, r, s, true)
		}
	}
}

// TestBigX uses a public key Q with x(Q) ≥ n. With e = 0, u₂ = c and
// s = r·c⁻¹, R = c·Q; for c = ±1, x(R) = x(Q) ≥ n and the valid r is
// x(Q) - n, while r = x(Q) itself is out of range.
func TestBigX(t *testing.T) {
	key := bigXKey(t)
	k := mustKey(t, key.pub)
	hash := make([]byte, 32)
	xq := key.pub.X
	if xq.Cmp(bigN) < 0 {
		t.Fatal("x(Q) < n")
	}
	r := new(big.Int).Sub(xq, bigN)
	check(t, "c=1", k, key.pub, hash, bytes32(r), bytes32(r), true)
	check(t, "c=-1", k, key.pub, hash, bytes32(r), bytes32(new(big.Int).Sub(bigN, r)), true)
	check(t, "r = x(Q)", k, key.pub, hash, bytes32(xq), bytes32(xq), false)
	check(t, "r+1", k, key.pub, hash, bytes32(new(big.Int).Add(r, big.NewInt(1))), bytes32(r), false)
	for _, c := range []int64{2, 3, 1000} {
		ci := big.NewInt(c)
		x, _ := xOfMultiple(t, key.pub, ci)
		rc := modN(x)
		sc := modN(new(big.Int).Mul(rc, invN(ci)))
		check(t, "c·Q", k, key.pub, hash, bytes32(rc), bytes32(sc), true)
	}
}

func TestNewPublicKeyRejects(t *testing.T) {
	good := testKeys(t)[3].pub
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	one := big.NewInt(1)
	offCurve := new(big.Int).Add(good.Y, one)
	for name, pub := range map[string]*ecdsa.PublicKey{
		"nil":             nil,
		"no curve":        {X: good.X, Y: good.Y},
		"P-384":           &p384.PublicKey,
		"P-224":           {Curve: elliptic.P224(), X: good.X, Y: good.Y},
		"nil X":           {Curve: elliptic.P256(), Y: good.Y},
		"nil Y":           {Curve: elliptic.P256(), X: good.X},
		"negative X":      {Curve: elliptic.P256(), X: new(big.Int).Neg(good.X), Y: good.Y},
		"X over 256 bits": {Curve: elliptic.P256(), X: new(big.Int).Lsh(one, 256), Y: good.Y},
		"X + p":           {Curve: elliptic.P256(), X: new(big.Int).Add(good.X, bigP), Y: good.Y},
		"Y + p":           {Curve: elliptic.P256(), X: good.X, Y: new(big.Int).Add(good.Y, bigP)},
		"off the curve":   {Curve: elliptic.P256(), X: good.X, Y: offCurve},
		"infinity (0,0)":  {Curve: elliptic.P256(), X: new(big.Int), Y: new(big.Int)},
	} {
		if _, err := NewPublicKey(pub); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// The generic P-256 parameters are P-256 to crypto/ecdsa too.
	params := &ecdsa.PublicKey{Curve: elliptic.P256().Params(), X: good.X, Y: good.Y}
	if _, err := NewPublicKey(params); err != nil {
		t.Errorf("elliptic.P256().Params(): %v", err)
	}
}

func TestVerifyNeverPanics(t *testing.T) {
	r := make([]byte, 32)
	r[31] = 1
	var nilKey *PublicKey
	if nilKey.Verify(r, r, r) {
		t.Error("nil key verified")
	}
	if new(PublicKey).Verify(r, r, r) {
		t.Error("zero key verified")
	}
}

// TestOverflowingS builds valid signatures with a small s, so that s + n
// still fits in 32 bytes and is congruent to s: Verify must reject it, as
// SEC 1 requires s < n. With Q = d·G, nonce k and r = x(k·G) mod n, any s
// is valid for e = s·k - r·d.
func TestOverflowingS(t *testing.T) {
	for _, key := range testKeys(t) {
		if key.d == nil {
			continue
		}
		k := mustKey(t, key.pub)
		nonce := nonceFrom([]byte("small s"), []byte(key.name))
		x, _ := xOfMultiple(t, nil, nonce)
		ri := modN(x)
		for _, si := range []*big.Int{big.NewInt(1), big.NewInt(2), big.NewInt(0xffff), new(big.Int).Lsh(big.NewInt(1), 200)} {
			e := new(big.Int).Mul(si, nonce)
			e = modN(e.Sub(e, new(big.Int).Mul(ri, key.d)))
			hash, r := bytes32(e), bytes32(ri)
			check(t, key.name+" small s", k, key.pub, hash, r, bytes32(si), true)
			check(t, key.name+" s+n", k, key.pub, hash, r, bytes32(new(big.Int).Add(si, bigN)), false)
			check(t, key.name+" -s", k, key.pub, hash, r, bytes32(new(big.Int).Sub(bigN, si)), true)
		}
	}
}
