package authn_test

import (
	"context"
	"crypto"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
			if accepted := checkAgreement(t, f, jwt.GetSigningMethod(alg), signed, pub, sigs); accepted != 1 {
				t.Fatalf("%d signatures accepted, want 1", accepted)
			}
		})
	}
}

// TestRSAlgorithmConfusion: a PKCS#1 v1.5 signature under a PS256 header,
// and a PSS signature under an RS256 header, are refused, with the issuer
// allowing both algorithms and the key fitting both.
func TestRSAlgorithmConfusion(t *testing.T) {
	f := newFixture(t, func(iss *authn.Issuer) { iss.Algorithms = []string{"RS256", "PS256"} })
	key := testidp.NewKey(t, "RS256", "k-rsa")
	key.Alg = "" // published without alg, so it fits both
	f.idp.Publish(key)
	priv := key.Private.(*rsa.PrivateKey)
	payload := base64.RawURLEncoding.EncodeToString(mustJSON(t, f.claims()))
	for _, c := range []struct {
		header string
		sign   func(digest []byte) ([]byte, error)
	}{
		{`{"alg":"PS256","kid":"k-rsa"}`, func(d []byte) ([]byte, error) { return rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d) }},
		{`{"alg":"RS256","kid":"k-rsa"}`, func(d []byte) ([]byte, error) {
			return rsa.SignPSS(crand.Reader, priv, crypto.SHA256, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}},
	} {
		signed := base64.RawURLEncoding.EncodeToString([]byte(c.header)) + "." + payload
		d := sha256.Sum256([]byte(signed))
		sig, err := c.sign(d[:])
		if err != nil {
			t.Fatal(err)
		}
		tok := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
		if _, err := f.auth.Verify(context.Background(), tok); err == nil {
			t.Errorf("%s with the other scheme's signature: accepted", c.header)
		}
	}
	// The same key signs both ways correctly, so the refusals above are
	// about the scheme, not the key.
	for _, alg := range []string{"RS256", "PS256"} {
		k := &testidp.Key{ID: "k-rsa", Alg: alg, Private: priv}
		if _, err := f.auth.Verify(context.Background(), testidp.Mint(t, k, f.claims(), nil)); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
