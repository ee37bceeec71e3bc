package jwks

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
)

func TestSigningAlgorithms(t *testing.T) {
	tests := []struct {
		alg     string
		keyType string
	}{
		{"ES256", "*ecdsa.PrivateKey"},
		{"ES384", "*ecdsa.PrivateKey"},
		{"RS256", "*rsa.PrivateKey"},
		{"PS256", "*rsa.PrivateKey"},
		{"EdDSA", "ed25519.PrivateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			s, err := GenerateKey(tt.alg)
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := s.(*rsa.PrivateKey); ok && k.N.BitLen() != 3072 {
				t.Errorf("new rsa key has %d bits, want 3072", k.N.BitLen())
			}
			data, err := MarshalPrivateKey(s)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(data); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("not a PKCS#8 PEM block: %.30q", data)
			}
			parsed, err := ParsePrivateKey(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", parsed); got != tt.keyType {
				t.Errorf("parsed %s, want %s", got, tt.keyType)
			}
			if !parsed.(interface{ Equal(crypto.PrivateKey) bool }).Equal(s) {
				t.Fatal("round trip changed the key")
			}
			id, err := thumbprintID(parsed.Public())
			if err != nil {
				t.Fatal(err)
			}
			// A token signed with the parsed key verifies with the public
			// half of the original, as published in a set.
			raw := signToken(t, SigningKey{ID: id, Algorithm: tt.alg, Signer: parsed})
			set := &Set{keys: []Key{{ID: id, Algorithm: tt.alg, Public: s.Public()}}}
			if err := verifyToken(setKeys{set}, raw); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

// setKeys gives a [Set] the Keys method verifyToken wants.
type setKeys struct{ s *Set }

func (sk setKeys) Keys(_ context.Context, kid string) ([]Key, error) {
	if keys := sk.s.Lookup(kid); len(keys) > 0 {
		return keys, nil
	}
	return nil, ErrKeyNotFound
}

func mustPKCS8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParsePrivateKeyErrors(t *testing.T) {
	ec, err := MarshalPrivateKey(newEC(t))
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER := mustPKCS8(t, small)
	body := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: smallDER}))
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "no PEM block"},
		{"sec1", strings.ReplaceAll(string(ec), "PRIVATE KEY", "EC PRIVATE KEY"), "PKCS#8"},
		{"two keys", string(ec) + string(ec), "data after"},
		{"garbage der", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "asn1"},
		{"small rsa", body, "below 2048 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePrivateKey([]byte(tt.in))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "jwks: parse private key: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("err %q, want one about %q", msg, tt.want)
			}
			if strings.Contains(msg, "AAAA") || strings.Contains(msg, "MII") {
				t.Errorf("err %q quotes the input", msg)
			}
		})
	}
	if _, err := MarshalPrivateKey(small); err == nil {
		t.Error("MarshalPrivateKey accepted a 1024-bit rsa key")
	}
	if _, err := GenerateKey("HS256"); err == nil || !strings.HasPrefix(err.Error(), "jwks: ") {
		t.Errorf("GenerateKey(HS256) err = %v", err)
	}
}

func FuzzParsePrivateKey(f *testing.F) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		s, err := GenerateKey(alg)
		if err != nil {
			f.Fatal(err)
		}
		data, err := MarshalPrivateKey(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePrivateKey(data)
		if err != nil {
			return
		}
		if err := checkPublic(s.Public()); err != nil {
			t.Fatalf("accepted an unsupported key: %v", err)
		}
		if _, err := MarshalPrivateKey(s); err != nil {
			t.Fatalf("parsed key does not marshal: %v", err)
		}
	})
}
