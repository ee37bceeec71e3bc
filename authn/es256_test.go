package authn_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// TestES256AgreesWithGolangJWT: ES256 signatures are checked with a
// precomputed table rather than golang-jwt; for valid, mutated, malleated
// and misshapen signatures both must give the same verdict.
func TestES256AgreesWithGolangJWT(t *testing.T) {
	f := newFixture(t, nil)
	pub := f.key.Public().(*ecdsa.PublicKey)
	good := testidp.Mint(t, f.key, f.claims(), nil)
	dot := strings.LastIndexByte(good, '.')
	signed, sig := good[:dot], good[dot+1:]
	raw, _ := base64.RawURLEncoding.DecodeString(sig)

	n := pub.Curve.Params().N
	s := new(big.Int).SetBytes(raw[32:])
	highS := append(append([]byte(nil), raw[:32]...), new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))...)

	sigs := [][]byte{raw, highS, raw[:63], append(append([]byte(nil), raw...), 0),
		make([]byte, 64), append(raw[32:], raw[:32]...)}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		m := append([]byte(nil), raw...)
		m[rng.IntN(len(m))] ^= byte(1 << rng.IntN(8))
		sigs = append(sigs, m)
	}
	if accepted := checkAgreement(t, f, jwt.SigningMethodES256, signed, pub, sigs); accepted != 2 {
		t.Fatalf("%d signatures accepted, want 2", accepted) // the original and its high-s twin, as crypto/ecdsa
	}
}

// checkAgreement puts each signature over signed to portcullis and to
// golang-jwt's signing method, fails on any disagreement or on a refusal
// for another reason than the signature or the token's shape, and returns
// how many were accepted.
func checkAgreement(t *testing.T, f *fixture, method jwt.SigningMethod, signed string, pub any, sigs [][]byte) int {
	t.Helper()
	accepted := 0
	for _, sg := range sigs {
		tok := signed + "." + base64.RawURLEncoding.EncodeToString(sg)
		_, err := f.auth.Verify(context.Background(), tok)
		want := method.Verify(signed, sg, pub) == nil
		if (err == nil) != want {
			t.Fatalf("signature %x: portcullis err %v, golang-jwt valid %v", sg, err, want)
		}
		if err == nil {
			accepted++
		} else if r := reasonOf(err); r != authn.ReasonSignature && r != authn.ReasonMalformed {
			t.Fatalf("signature %x: reason %q", sg, r)
		}
	}
	return accepted
}

// FuzzVerifyNeverAcceptsMore: whatever portcullis accepts, golang-jwt's own
// parser (strict decoding, the same algorithms, the same key) accepts too;
// portcullis may refuse more (duplicate names, claim checks), never less.
func FuzzVerifyNeverAcceptsMore(f *testing.F) {
	fx := newFixture(f, nil)
	good := testidp.Mint(f, fx.key, fx.claims(), nil)
	f.Add(good, 0, byte(0))
	f.Add(good, 5, byte(1))
	f.Add(good, len(good)-3, byte(0x20))
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithStrictDecoding(), jwt.WithoutClaimsValidation())
	pub := fx.key.Public()
	f.Fuzz(func(t *testing.T, tok string, at int, flip byte) {
		if at >= 0 && at < len(tok) {
			b := []byte(tok)
			b[at] ^= flip
			tok = string(b)
		}
		if _, err := fx.auth.Verify(context.Background(), tok); err != nil {
			return
		}
		if _, err := parser.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
			t.Fatalf("portcullis accepted %q, golang-jwt refuses it: %v", tok, err)
		}
	})
}
