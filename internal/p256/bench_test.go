package p256

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"
	"testing"

	"filippo.io/nistec"
)

// benchSignature returns a key and a valid ES256 signature for benchmarks.
func benchSignature(b *testing.B) (pub *ecdsa.PublicKey, hash, r, s []byte) {
	b.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.Sum256([]byte("header.payload"))
	ri, si, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		b.Fatal(err)
	}
	return &priv.PublicKey, h[:], ri.FillBytes(make([]byte, 32)), si.FillBytes(make([]byte, 32))
}

// BenchmarkVerifyECDSA is the baseline: crypto/ecdsa.Verify.
func BenchmarkVerifyECDSA(b *testing.B) {
	pub, hash, r, s := benchSignature(b)
	ri, si := new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(pub, hash, ri, si) {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkVerify is a verification with a key's table built.
func BenchmarkVerify(b *testing.B) {
	pub, hash, r, s := benchSignature(b)
	k, err := NewPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !k.Verify(hash, r, s) {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkVerifyWindow measures Verify for each table width, and reports
// the table's size.
func BenchmarkVerifyWindow(b *testing.B) {
	pub, hash, r, s := benchSignature(b)
	c, err := coordsOf(pub)
	if err != nil {
		b.Fatal(err)
	}
	for w := uint(4); w <= maxWindow; w++ {
		b.Run(fmt.Sprintf("w=%d", w), func(b *testing.B) {
			k, err := newPublicKey(&c, w)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ReportMetric(float64(k.tableBytes())/1024, "KiB/key")
			for b.Loop() {
				if !k.Verify(hash, r, s) {
					b.Fatal("not verified")
				}
			}
		})
	}
}

// BenchmarkNewPublicKey measures the table precomputation for each width.
func BenchmarkNewPublicKey(b *testing.B) {
	pub, _, _, _ := benchSignature(b)
	c, err := coordsOf(pub)
	if err != nil {
		b.Fatal(err)
	}
	for w := uint(4); w <= maxWindow; w++ {
		b.Run(fmt.Sprintf("w=%d", w), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := newPublicKey(&c, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSteps breaks a verification down.
func BenchmarkSteps(b *testing.B) {
	pub, _, r, s := benchSignature(b)
	k, err := NewPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	var rs, ss, w, u scalar
	rs.setBytes((*[32]byte)(r))
	ss.setBytes((*[32]byte)(s))
	b.Run("invert", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			invert(&w, &ss)
		}
	})
	b.Run("mulMod", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mulMod(&u, &rs, &ss)
		}
	})
	b.Run("tableMul", func(b *testing.B) {
		p := nistec.NewP256Point()
		b.ReportAllocs()
		for b.Loop() {
			k.table.mul(p, &rs)
		}
	})
	b.Run("ScalarBaseMult", func(b *testing.B) {
		p := nistec.NewP256Point()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.ScalarBaseMult(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BytesX", func(b *testing.B) {
		p, _ := nistec.NewP256Point().ScalarBaseMult(r)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.BytesX(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyWindow16Keys verifies with 16 keys in turn (as many as
// one key set precomputes), so that their tables compete for the
// processor's caches.
func BenchmarkVerifyWindow16Keys(b *testing.B) {
	type sig struct {
		k          *PublicKey
		hash, r, s []byte
	}
	for w := uint(4); w <= maxWindow; w++ {
		b.Run(fmt.Sprintf("w=%d", w), func(b *testing.B) {
			sigs := make([]sig, 16)
			for i := range sigs {
				pub, hash, r, s := benchSignature(b)
				c, err := coordsOf(pub)
				if err != nil {
					b.Fatal(err)
				}
				k, err := newPublicKey(&c, w)
				if err != nil {
					b.Fatal(err)
				}
				sigs[i] = sig{k, hash, r, s}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				x := &sigs[i%len(sigs)]
				if !x.k.Verify(x.hash, x.r, x.s) {
					b.Fatal("not verified")
				}
				i++
			}
		})
	}
}
