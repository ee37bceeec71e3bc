package rsaverify

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"sync"
	"testing"
)

// primeKey is an RSA key whose modulus is a prime p of the given size,
// with d = e⁻¹ mod p-1: cheap to make at any size and exponent, and a
// valid key to crypto/rsa's verifier, which never factors the modulus.
type primeKey struct {
	pub *rsa.PublicKey
	d   *big.Int
}

var primeKeys sync.Map // "bits/e" → *primeKey

func newPrimeKey(t testing.TB, bits, e int) *primeKey {
	t.Helper()
	name := fmt.Sprintf("%d/%d", bits, e)
	if k, ok := primeKeys.Load(name); ok {
		return k.(*primeKey)
	}
	E := big.NewInt(int64(e))
	for {
		p, err := rand.Prime(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		pm1 := new(big.Int).Sub(p, big.NewInt(1))
		d := new(big.Int).ModInverse(E, pm1)
		if d == nil {
			continue // e shares a factor with p-1
		}
		k := &primeKey{pub: &rsa.PublicKey{N: p, E: e}, d: d}
		primeKeys.Store(name, k)
		return k
	}
}

// sign applies the key to em as it stands, left-padded to the modulus's size.
func (k *primeKey) sign(em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	return new(big.Int).Exp(m, k.d, k.pub.N).FillBytes(make([]byte, (k.pub.N.BitLen()+7)/8))
}

// encoding is the EMSA-PKCS1-v1_5 encoding of hashed for a modulus of
// size bytes.
func encoding(h crypto.Hash, hashed []byte, size int) []byte {
	prefix := digestInfo[h]
	em := append([]byte{0, 1}, bytesOf(0xff, size-3-len(prefix)-len(hashed))...)
	em = append(em, 0)
	em = append(em, prefix...)
	return append(em, hashed...)
}

// TestSizesAndExponents checks, against crypto/rsa, moduli whose bit
// lengths fill their last byte or limb or miss it by one, and the smallest
// and largest exponents allowed, with each hash: a valid signature, the
// signature plus N where that still fits, N+2, and damaged encodings.
func TestSizesAndExponents(t *testing.T) {
	sizes := []int{1024, 1025, 1031, 1032, 1033, 1087, 1088, 1089, 2047, 2049}
	if testing.Short() {
		sizes = []int{1024, 1025, 2049}
	}
	for _, bits := range sizes {
		for _, e := range []int{3, 65537, 1<<31 - 1} {
			pk := newPrimeKey(t, bits, e)
			k := mustKey(t, pk.pub)
			size := (bits + 7) / 8
			for _, h := range hashes {
				hashed := digest(h, []byte(fmt.Sprint(bits, e, h)))
				good := encoding(h, hashed, size)
				sig := pk.sign(good)
				if !agree(t, k, pk.pub, h, hashed, sig) {
					t.Fatalf("%d bits, e=%d, %v: valid signature refused", bits, e, h)
				}
				s := new(big.Int).SetBytes(sig)
				if over := new(big.Int).Add(s, pk.pub.N); (over.BitLen()+7)/8 <= size {
					if agree(t, k, pk.pub, h, hashed, over.FillBytes(make([]byte, size))) {
						t.Errorf("%d bits, e=%d: signature + N accepted", bits, e)
					}
				}
				if n2 := new(big.Int).Add(pk.pub.N, big.NewInt(2)); (n2.BitLen()+7)/8 <= size {
					agree(t, k, pk.pub, h, hashed, n2.FillBytes(make([]byte, size)))
				}
				psEnd := size - len(digestInfo[h]) - len(hashed) - 1
				for name, mod := range map[string]func(em []byte) []byte{
					"separator one later":   func(em []byte) []byte { em[psEnd], em[psEnd+1] = 0xff, 0; return em },
					"separator one earlier": func(em []byte) []byte { em[psEnd-1], em[psEnd] = 0, 0xff; return em },
					"padding of 7 bytes, then garbage": func(em []byte) []byte {
						copy(em[10:psEnd+1], bytesOf(0x41, psEnd+1-10))
						em[9] = 0
						return em
					},
					"00 00 01 ff…":        func(em []byte) []byte { return append([]byte{0, 0}, em[1:len(em)-1]...) },
					"last byte flipped":   func(em []byte) []byte { em[len(em)-1] ^= 1; return em },
					"prefix byte flipped": func(em []byte) []byte { em[psEnd+3] ^= 0x80; return em },
				} {
					em := mod(append([]byte(nil), good...))
					if len(em) != size {
						t.Fatalf("%s: %d bytes, want %d", name, len(em), size)
					}
					if agree(t, k, pk.pub, h, hashed, pk.sign(em)) {
						t.Errorf("%d bits, e=%d, %v, %s: accepted", bits, e, h, name)
					}
				}
			}
		}
	}
}

func TestKeyBounds(t *testing.T) {
	if _, err := NewPublicKey(newPrimeKey(t, 1023, 65537).pub); err == nil {
		t.Error("1023-bit modulus accepted")
	}
	if _, err := NewPublicKey(newPrimeKey(t, 1024, 65537).pub); err != nil {
		t.Errorf("1024-bit modulus: %v", err)
	}
	n := newPrimeKey(t, 1024, 65537).pub.N
	if _, err := NewPublicKey(&rsa.PublicKey{N: n, E: 2}); err == nil {
		t.Error("exponent 2 accepted")
	}
	if _, err := NewPublicKey(&rsa.PublicKey{N: n, E: 1<<31 - 1}); err != nil {
		t.Errorf("exponent 2³¹-1: %v", err)
	}
	var nilKey *PublicKey
	if nilKey.VerifyPKCS1v15(crypto.SHA256, make([]byte, 32), make([]byte, 128)) || (&PublicKey{}).VerifyPKCS1v15(crypto.SHA256, make([]byte, 32), nil) {
		t.Error("an empty key verified")
	}
	if Supports(crypto.SHA1) || Supports(crypto.Hash(0)) || !Supports(crypto.SHA384) {
		t.Error("Supports is wrong")
	}
}

// FuzzEncoding signs encodings that are nearly right (a well-formed one
// with fuzz-chosen bytes overwritten) so that the comparison of every part
// of the encoding is exercised, against crypto/rsa.
func FuzzEncoding(f *testing.F) {
	f.Add(uint8(0), uint16(0), byte(0), uint16(1), byte(0xff))
	f.Add(uint8(1), uint16(1), byte(2), uint16(10), byte(0))
	f.Add(uint8(2), uint16(60), byte(0), uint16(61), byte(0xff))
	f.Fuzz(func(t *testing.T, sel uint8, p1 uint16, b1 byte, p2 uint16, b2 byte) {
		bits := []int{1024, 1025, 1032}[int(sel>>2)%3]
		h := hashes[int(sel&3)%len(hashes)]
		pk := newPrimeKey(t, bits, 65537)
		k, err := NewPublicKey(pk.pub)
		if err != nil {
			t.Fatal(err)
		}
		size := (bits + 7) / 8
		hashed := digest(h, []byte{sel})
		em := encoding(h, hashed, size)
		em[int(p1)%size] = b1
		em[int(p2)%size] = b2
		if new(big.Int).SetBytes(em).Cmp(pk.pub.N) >= 0 {
			return // not a value below N: no signature recovers it
		}
		agree(t, k, pk.pub, h, hashed, pk.sign(em))
	})
}
