package p256

import (
	"crypto/sha256"
	"math/big"
	"testing"
)

// Fuzz modes: how FuzzVerify turns its input into a signature to check.
const (
	modeRaw      = iota // hash, r and s as given
	modeRaw32           // the same with r and s fitted to 32 bytes
	modeMasked          // a genuine signature, r and s XORed with the inputs
	modeHighS           // the same with s replaced by n - s
	modeSwapped         // the same with r and s swapped
	modeResized         // a genuine signature with r or s shortened or lengthened
	modeInfinity        // R = ∞: e = -r·d, r and s from the inputs
	modeDoubling        // a genuine signature with u₁·G = u₂·Q, masked
	modeZeroHash        // a genuine signature with e = 0 and R = c·Q, masked
	fuzzModes
)

// FuzzVerify checks that Verify agrees with crypto/ecdsa.Verify (for the
// 32-byte r and s of an ES256 signature) on every input, over a few fixed
// keys. Besides raw values, the modes build genuine signatures and mutate
// them, and construct the corner cases of the verification equation.
func FuzzVerify(f *testing.F) {
	keys := testKeys(f)
	pks := make([]*PublicKey, len(keys))
	for i, key := range keys {
		pks[i] = mustKey(f, key.pub)
	}
	h := sha256.Sum256([]byte("seed"))
	r32 := bytes32(big.NewInt(0x1234))
	for i := range keys {
		for mode := range fuzzModes {
			f.Add(uint8(i), uint8(mode), h[:], []byte{}, []byte{})
		}
		f.Add(uint8(i), uint8(modeRaw), h[:], r32, r32)
		f.Add(uint8(i), uint8(modeMasked), h[:], []byte{1}, []byte{})
		f.Add(uint8(i), uint8(modeResized), h[:], []byte{0}, []byte{})
	}
	f.Add(uint8(0), uint8(modeRaw), h[:], bytes32(bigN), bytes32(big.NewInt(1)))

	f.Fuzz(func(t *testing.T, keySel, mode uint8, hash, r, s []byte) {
		i := int(keySel) % len(keys)
		key, pk := keys[i], pks[i]
		hash, r, s = fuzzCase(t, key, mode%fuzzModes, hash, r, s)
		got := pk.Verify(hash, r, s)
		if want := reference(key.pub, hash, r, s); got != want {
			t.Fatalf("key %s mode %d: Verify = %v, crypto/ecdsa = %v\nhash %x\nr %x\ns %x", key.name, mode%fuzzModes, got, want, hash, r, s)
		}
	})
}

// fuzzCase builds the (hash, r, s) to check from a fuzz input.
func fuzzCase(t *testing.T, key testKey, mode uint8, hash, r, s []byte) ([]byte, []byte, []byte) {
	if key.d == nil && mode > modeRaw32 {
		// Without the private key, only e = 0 signatures can be made.
		mode = modeZeroHash
	}
	switch mode {
	case modeRaw:
		return hash, r, s
	case modeRaw32:
		return hash, fit32(r), fit32(s)
	case modeMasked, modeHighS, modeSwapped, modeResized:
		gr, gs := signWithNonce(t, key.d, nonceFrom(hash, []byte(key.name)), hash)
		switch mode {
		case modeHighS:
			gs = bytes32(new(big.Int).Sub(bigN, new(big.Int).SetBytes(gs)))
		case modeSwapped:
			gr, gs = gs, gr
		case modeResized:
			return hash, resize(gr, r), resize(gs, s)
		}
		return hash, xorMask(gr, r), xorMask(gs, s)
	case modeInfinity:
		ri, si := nonZeroModN(r), nonZeroModN(s)
		e := modN(new(big.Int).Neg(new(big.Int).Mul(ri, key.d)))
		return bytes32(e), bytes32(ri), bytes32(si)
	case modeDoubling:
		k := nonceFrom(hash)
		x, _ := xOfMultiple(t, nil, k)
		ri := modN(x)
		e := modN(new(big.Int).Mul(ri, key.d))
		si := modN(new(big.Int).Mul(new(big.Int).Lsh(e, 1), invN(k)))
		return bytes32(e), xorMask(bytes32(ri), r), xorMask(bytes32(si), s)
	default: // modeZeroHash
		c := nonceFrom(hash)
		x, _ := xOfMultiple(t, key.pub, c)
		ri := modN(x)
		si := modN(new(big.Int).Mul(ri, invN(c)))
		return make([]byte, 32), xorMask(bytes32(ri), r), xorMask(bytes32(si), s)
	}
}

// xorMask returns g with the mask XORed into its leading bytes; mask bytes
// past the 32nd are appended, lengthening the result.
func xorMask(g, mask []byte) []byte {
	out := append([]byte(nil), g...)
	for i, b := range mask {
		if i < len(out) {
			out[i] ^= b
		} else {
			out = append(out, b)
		}
	}
	return out
}

// resize shortens g by a byte when prefix is empty, and otherwise prepends
// up to four bytes of prefix to it.
func resize(g, prefix []byte) []byte {
	if len(prefix) == 0 {
		return g[1:]
	}
	return append(append([]byte(nil), prefix[:min(len(prefix), 4)]...), g...)
}

// fit32 returns the last 32 bytes of b, left-padded with zeros if shorter.
func fit32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out[max(0, 32-len(b)):], b[max(0, len(b)-32):])
	return out
}

// nonZeroModN reads b as an integer and maps it into [1, n-1].
func nonZeroModN(b []byte) *big.Int {
	x := modN(new(big.Int).SetBytes(b))
	if x.Sign() == 0 {
		x.SetInt64(1)
	}
	return x
}

// TestFuzzModes checks that the fuzz modes build what they claim: with
// empty masks, the genuine modes yield valid signatures, and the infinity
// mode an invalid one.
func TestFuzzModes(t *testing.T) {
	keys := testKeys(t)
	h := sha256.Sum256([]byte("modes"))
	for _, key := range keys {
		pk := mustKey(t, key.pub)
		for mode, want := range map[uint8]bool{
			modeMasked: true, modeHighS: true, modeSwapped: false,
			modeInfinity: false, modeDoubling: true, modeZeroHash: true,
		} {
			if key.d == nil && mode != modeZeroHash {
				continue
			}
			hash, r, s := fuzzCase(t, key, mode, h[:], nil, nil)
			if got := pk.Verify(hash, r, s); got != want {
				t.Errorf("key %s mode %d: Verify = %v, want %v", key.name, mode, got, want)
			}
			if got := reference(key.pub, hash, r, s); got != want {
				t.Errorf("key %s mode %d: crypto/ecdsa = %v, want %v", key.name, mode, got, want)
			}
		}
	}
}
