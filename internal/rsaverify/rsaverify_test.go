package rsaverify

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
	"sync"
	"testing"
)

// testKeys are made once per test binary: a 2048-bit key, the size JWKS
// keys have, and a 1025-bit one, whose modulus does not fill its first
// byte and which sits at crypto/rsa's lower bound.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	for _, bits := range []int{2048, 1025} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
	}
	return keys
})

var hashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	}
	d := sha512.Sum512(msg)
	return d[:]
}

func mustKey(t testing.TB, pub *rsa.PublicKey) *PublicKey {
	t.Helper()
	k, err := NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// agree fails unless rsaverify and crypto/rsa give the same answer.
func agree(t testing.TB, k *PublicKey, pub *rsa.PublicKey, h crypto.Hash, hashed, sig []byte) bool {
	t.Helper()
	want := rsa.VerifyPKCS1v15(pub, h, hashed, sig) == nil
	if got := k.VerifyPKCS1v15(h, hashed, sig); got != want {
		t.Fatalf("%v, %d-byte signature %x: rsaverify %v, crypto/rsa %v", h, len(sig), sig, got, want)
	}
	return want
}

func TestAgreesWithCryptoRSA(t *testing.T) {
	for _, priv := range testKeys() {
		pub := &priv.PublicKey
		k := mustKey(t, pub)
		n := pub.N.Bytes()
		for _, h := range hashes {
			t.Run(fmt.Sprintf("%d/%v", pub.N.BitLen(), h), func(t *testing.T) {
				hashed := digest(h, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9"))
				sig, err := rsa.SignPKCS1v15(rand.Reader, priv, h, hashed)
				if err != nil {
					t.Fatal(err)
				}
				if !agree(t, k, pub, h, hashed, sig) {
					t.Fatal("a valid signature is refused")
				}
				for i := range sig {
					bad := append([]byte(nil), sig...)
					bad[i] ^= 1 << (i % 8)
					if agree(t, k, pub, h, hashed, bad) {
						t.Fatalf("byte %d flipped: accepted", i)
					}
				}
				other := append([]byte(nil), hashed...)
				other[0] ^= 1
				nMinus1 := new(big.Int).Sub(pub.N, big.NewInt(1)).FillBytes(make([]byte, len(sig)))
				for name, c := range map[string]struct{ hashed, sig []byte }{
					"other hash":         {other, sig},
					"short hash":         {hashed[:len(hashed)-1], sig},
					"long hash":          {append(append([]byte(nil), hashed...), 0), sig},
					"no hash":            {nil, sig},
					"short signature":    {hashed, sig[1:]},
					"leading zero added": {hashed, append([]byte{0}, sig...)},
					"empty signature":    {hashed, nil},
					"zero":               {hashed, make([]byte, len(sig))},
					"one":                {hashed, big.NewInt(1).FillBytes(make([]byte, len(sig)))},
					"n":                  {hashed, n},
					"n-1":                {hashed, nMinus1},
					"all ones":           {hashed, bytesOf(0xff, len(sig))},
				} {
					if agree(t, k, pub, h, c.hashed, c.sig) {
						t.Errorf("%s: accepted", name)
					}
				}
			})
		}
		// Another hash's valid signature, and a hash rsaverify does not do.
		hashed := digest(crypto.SHA256, []byte("m"))
		sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
		if k.VerifyPKCS1v15(crypto.SHA512, digest(crypto.SHA512, []byte("m")), sig) {
			t.Error("SHA-256 signature accepted as SHA-512")
		}
		if k.VerifyPKCS1v15(crypto.SHA1, hashed[:20], sig) || k.VerifyPKCS1v15(crypto.Hash(0), hashed, sig) {
			t.Error("an unsupported hash accepted")
		}
	}
}

func bytesOf(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

// rawSign applies the private key to em as it stands, so that encodings
// no signer would produce can be put to the verifiers.
func rawSign(priv *rsa.PrivateKey, em []byte) []byte {
	m := new(big.Int).SetBytes(em)
	return new(big.Int).Exp(m, priv.D, priv.N).FillBytes(make([]byte, (priv.N.BitLen()+7)/8))
}

// TestForgedEncodings signs malformed EMSA-PKCS1-v1_5 encodings with the
// real key: the classic forgeries (garbage after the digest with shortened
// padding, a wrong block type, no separator, another DigestInfo) must all
// fail, and the well-formed encoding must pass, in both verifiers.
func TestForgedEncodings(t *testing.T) {
	priv := testKeys()[0]
	pub := &priv.PublicKey
	k := mustKey(t, pub)
	size := (pub.N.BitLen() + 7) / 8
	hashed := digest(crypto.SHA256, []byte("payload"))
	prefix := digestInfo[crypto.SHA256]
	encode := func(bt byte, ps int, sep byte, info, tail []byte) []byte {
		em := []byte{0, bt}
		em = append(em, bytesOf(0xff, ps)...)
		em = append(em, sep)
		em = append(em, info...)
		em = append(em, hashed...)
		em = append(em, tail...)
		return em
	}
	full := size - 3 - len(prefix) - len(hashed)
	sha1Info := []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}
	badPS := encode(1, full, 0, prefix, nil)
	badPS[10] = 0xfe
	for name, c := range map[string]struct {
		em   []byte
		want bool
	}{
		"well formed":                {encode(1, full, 0, prefix, nil), true},
		"block type 2":               {encode(2, full, 0, prefix, nil), false},
		"block type 0":               {encode(0, full, 0, prefix, nil), false},
		"no separator":               {encode(1, full, 0xff, prefix, nil), false},
		"garbage after the digest":   {encode(1, full-16, 0, prefix, bytesOf(0x41, 16)), false},
		"digest without DigestInfo":  {encode(1, full+len(prefix), 0, nil, nil), false},
		"SHA-1 DigestInfo":           {encode(1, full+len(prefix)-len(sha1Info), 0, sha1Info, nil), false},
		"padding byte not 0xff":      {badPS, false},
		"DigestInfo length mismatch": {encode(1, full, 0, append(append([]byte(nil), prefix[:len(prefix)-1]...), 0x21), nil), false},
	} {
		if len(c.em) != size {
			t.Fatalf("%s: encoding of %d bytes, want %d", name, len(c.em), size)
		}
		sig := rawSign(priv, c.em)
		if got := agree(t, k, pub, crypto.SHA256, hashed, sig); got != c.want {
			t.Errorf("%s: accepted %v, want %v", name, got, c.want)
		}
	}
}

func TestNewPublicKeyRefuses(t *testing.T) {
	good := &testKeys()[0].PublicKey
	small, err := rsa.GenerateKey(rand.Reader, 512) // crypto/rsa refuses to make it without GODEBUG
	var smallPub *rsa.PublicKey
	if err == nil {
		smallPub = &small.PublicKey
	} else {
		smallPub = &rsa.PublicKey{N: new(big.Int).Rsh(good.N, 1100), E: 65537}
		smallPub.N.SetBit(smallPub.N, 0, 1)
	}
	even := new(big.Int).SetBit(new(big.Int).Set(good.N), 0, 0)
	for name, pub := range map[string]*rsa.PublicKey{
		"nil":           nil,
		"nil modulus":   {E: 65537},
		"zero modulus":  {N: new(big.Int), E: 65537},
		"negative":      {N: new(big.Int).Neg(good.N), E: 65537},
		"even modulus":  {N: even, E: 65537},
		"under 1024":    smallPub,
		"exponent 1":    {N: good.N, E: 1},
		"exponent even": {N: good.N, E: 65536},
		"exponent 2³¹":  {N: good.N, E: 1 << 31},
		"exponent < 0":  {N: good.N, E: -3},
	} {
		if _, err := NewPublicKey(pub); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewPublicKey(&rsa.PublicKey{N: good.N, E: 3}); err != nil {
		t.Errorf("exponent 3: %v", err)
	}
}

// mustEM is the well-formed encoding of a SHA-256 digest for priv's size.
func mustEM(t *testing.T, priv *rsa.PrivateKey, hashed []byte) []byte {
	t.Helper()
	size := (priv.N.BitLen() + 7) / 8
	prefix := digestInfo[crypto.SHA256]
	em := append([]byte{0, 1}, bytesOf(0xff, size-3-len(prefix)-len(hashed))...)
	em = append(em, 0)
	em = append(em, prefix...)
	return append(em, hashed...)
}

// FuzzVerify checks rsaverify against crypto/rsa on signatures that are
// valid, valid then damaged, or made up.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJSUzI1NiJ9.e30"), uint8(0), uint16(0), byte(0), []byte(nil))
	f.Add([]byte("m"), uint8(1), uint16(5), byte(0x80), []byte(nil))
	f.Add([]byte("m"), uint8(2), uint16(300), byte(1), []byte{1, 2, 3})
	f.Add([]byte(""), uint8(3), uint16(0), byte(0), make([]byte, 256))
	f.Fuzz(func(t *testing.T, msg []byte, sel uint8, pos uint16, flip byte, raw []byte) {
		priv := testKeys()[int(sel>>2)%len(testKeys())]
		h := hashes[int(sel&3)%len(hashes)]
		k, err := NewPublicKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		hashed := digest(h, msg)
		sig := raw
		if len(raw) == 0 {
			sig, err = rsa.SignPKCS1v15(nil, priv, h, hashed)
			if err != nil {
				t.Fatal(err)
			}
			if int(pos) < len(sig) {
				sig[pos] ^= flip
			}
		}
		agree(t, k, &priv.PublicKey, h, hashed, sig)
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := testKeys()[0]
	hashed := digest(crypto.SHA256, []byte("bench"))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, hashed)
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, hashed, sig) != nil {
				b.Fatal("refused")
			}
		}
	})
	b.Run("rsaverify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k, _ := NewPublicKey(&priv.PublicKey)
			if !k.VerifyPKCS1v15(crypto.SHA256, hashed, sig) {
				b.Fatal("refused")
			}
		}
	})
}
