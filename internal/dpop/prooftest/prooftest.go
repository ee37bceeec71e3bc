// Package prooftest makes DPoP proofs (RFC 9449) for tests: a client key
// and proofs signed with it, each claim and header member changeable, so a
// test can send what a real client sends and every way of getting it wrong.
package prooftest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Key is a client's P-256 DPoP key.
type Key struct {
	Private *ecdsa.PrivateKey
	// JWK is the public key as the proof's jwk header carries it.
	JWK map[string]any
	// JKT is its RFC 7638 thumbprint, what cnf.jkt of a bound token holds.
	JKT string
}

// NewKey makes a key.
func NewKey(t testing.TB) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(pub)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	tp, _ := pub.Thumbprint(crypto.SHA256)
	return &Key{Private: priv, JWK: m, JKT: base64.RawURLEncoding.EncodeToString(tp)}
}

// Proof signs a proof for method and url at iat, with the ath of token
// unless it is "", and a fresh random jti; mod, when set, changes the
// header and claims before signing.
func (k *Key) Proof(t testing.TB, method, url, token string, iat time.Time, mod func(header, claims map[string]any)) string {
	t.Helper()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c := jwt.MapClaims{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": url, "iat": iat.Unix()}
	if token != "" {
		c["ath"] = ATH(token)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = k.JWK
	if mod != nil {
		mod(tok.Header, c)
	}
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ATH is the ath claim of a proof for token: its SHA-256, base64url.
func ATH(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
