package authn_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// TestRSAgreesWithGolangJWT puts valid, damaged and misshapen signatures
// to portcullis (RS256/384/512 through internal/rsaverify, PS256 through
// golang-jwt) and to golang-jwt's own signing methods: both must answer
// alike, and only the original signature may pass.
func TestRSAgreesWithGolangJWT(t *testing.T) {
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, func(iss *authn.Issuer) { iss.Algorithms = []string{alg} })
			key := testidp.NewKey(t, alg, "k-"+alg)
			f.idp.Publish(key)
			pub := key.Public().(*rsa.PublicKey)
			good := testidp.Mint(t, key, f.claims(), nil)
			dot := strings.LastIndexByte(good, '.')
			signed, sig := good[:dot], good[dot+1:]
			raw, _ := base64.RawURLEncoding.DecodeString(sig)

			sigs := [][]byte{raw, raw[:len(raw)-1], append([]byte{0}, raw...), append(append([]byte(nil), raw...), 0),
				make([]byte, len(raw)), pub.N.Bytes()}
			rng := rand.New(rand.NewPCG(3, 4))
			for range 100 {
				m := append([]byte(nil), raw...)
				m[rng.IntN(len(m))] ^= byte(1 << rng.IntN(8))
				sigs = append(sigs, m)
			}
			method := jwt.GetSigningMethod(alg)
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
			if accepted != 1 {
				t.Fatalf("%d signatures accepted, want 1", accepted)
			}
		})
	}
}
