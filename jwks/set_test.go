package jwks

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	k := newTestKeys(t)
	data := jwksJSON(t,
		jwkMap(t, k.rsa.Public(), "rsa-1", "RS256"),
		jwkMap(t, k.ec.Public(), "ec-1", "ES256"),
		jwkMap(t, k.ed.Public(), "ed-1", ""),
		jwkMap(t, newEC(t).Public(), "ec-1", "ES256"), // a second key with the same kid
	)
	s, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 4 || len(s.skipped) != 0 {
		t.Fatalf("Len() = %d, skipped %v; want 4 keys, none skipped", s.Len(), s.skipped)
	}

	tests := []struct {
		kid     string
		n       int
		alg     string
		checkPK func(any) bool
	}{
		{"rsa-1", 1, "RS256", func(p any) bool { return k.rsa.PublicKey.Equal(p) }},
		{"ed-1", 1, "", func(p any) bool { return k.ed.Public().(ed25519.PublicKey).Equal(p) }},
		{"ec-1", 2, "ES256", func(p any) bool { _, ok := p.(*ecdsa.PublicKey); return ok }},
		{"missing", 0, "", nil},
		{"", 4, "", nil},
	}
	for _, tt := range tests {
		t.Run("kid="+tt.kid, func(t *testing.T) {
			got := s.Lookup(tt.kid)
			if len(got) != tt.n {
				t.Fatalf("Lookup(%q) returned %d keys, want %d", tt.kid, len(got), tt.n)
			}
			if tt.n == 0 && got != nil {
				t.Errorf("Lookup(%q) = %v, want nil", tt.kid, got)
			}
			for _, key := range got {
				if tt.kid != "" && (key.ID != tt.kid || key.Algorithm != tt.alg) {
					t.Errorf("key = {%q %q}, want {%q %q}", key.ID, key.Algorithm, tt.kid, tt.alg)
				}
				if tt.checkPK != nil && !tt.checkPK(key.Public) {
					t.Errorf("Public = %T, not the served key", key.Public)
				}
			}
		})
	}

	t.Run("lookup result is the caller's", func(t *testing.T) {
		got := s.Lookup("")
		got[0] = Key{ID: "changed"}
		if s.Lookup("")[0].ID == "changed" {
			t.Error("modifying a Lookup result changed the set")
		}
	})
	t.Run("nil set", func(t *testing.T) {
		var s *Set
		if s.Len() != 0 || s.Lookup("") != nil || s.Lookup("x") != nil {
			t.Error("nil set is not empty")
		}
	})
	t.Run("empty keys array", func(t *testing.T) {
		s, err := Parse([]byte(`{"keys":[]}`))
		if err != nil || s.Len() != 0 {
			t.Fatalf("Parse = %v, %v; want an empty set", s, err)
		}
	})
}

func TestParseSkips(t *testing.T) {
	k := newTestKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(m map[string]any, k string, v any) map[string]any { m[k] = v; return m }
	ecPub := func() map[string]any { return jwkMap(t, newEC(t).Public(), "bad", "ES256") }

	tests := []struct {
		name   string
		key    any
		reason string // substring of the recorded skip reason
	}{
		{"use enc", with(ecPub(), "use", "enc"), `use "enc"`},
		{"key_ops without verify", with(ecPub(), "key_ops", []string{"encrypt"}), "key_ops"},
		{"oct key", map[string]any{"kty": "oct", "kid": "bad", "k": b64([]byte("0123456789abcdef0123456789abcdef"))}, `kty "oct"`},
		{"unknown kty", map[string]any{"kty": "foo", "kid": "bad"}, `kty "foo"`},
		{"missing kty", map[string]any{"kid": "bad", "x": "AA"}, `kty ""`},
		{"rsa 1024", map[string]any{"kty": "RSA", "kid": "bad", "n": b64(small.N.Bytes()), "e": "AQAB"}, "invalid"},
		{"rsa private", jwkMap(t, k.rsa, "bad", "RS256"), `private member "d"`},
		{"ec private", jwkMap(t, k.ec, "bad", "ES256"), `private member "d"`},
		{"ed25519 private", jwkMap(t, k.ed, "bad", "EdDSA"), `private member "d"`},
		{"rsa with only primes", with(jwkMap(t, k.rsa.Public(), "bad", ""), "p", b64(k.rsa.Primes[0].Bytes())), `private member "p"`},
		{"p-224 curve", map[string]any{
			"kty": "EC", "kid": "bad", "crv": "P-224",
			"x": b64(p224.X.Bytes()), "y": b64(p224.Y.Bytes()),
		}, "invalid"},
		{"secp256k1 curve", with(ecPub(), "crv", "secp256k1"), "invalid"},
		{"x25519", jwkMap(t, x25519.PublicKey(), "bad", ""), "unsupported key type"},
		{"rsa without modulus", map[string]any{"kty": "RSA", "kid": "bad", "e": "AQAB"}, "invalid"},
		{"not an object", 42, "not a json object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := jwkMap(t, k.ed.Public(), "good", "EdDSA")
			s, err := Parse(jwksJSON(t, tt.key, good))
			if err != nil {
				t.Fatalf("Parse: %v (a bad key must be skipped, not fail the set)", err)
			}
			if s.Len() != 1 || s.Lookup("good") == nil || s.Lookup("bad") != nil {
				t.Fatalf("kept %d keys %v, want only %q", s.Len(), s.Lookup(""), "good")
			}
			if len(s.skipped) != 1 || !strings.Contains(s.skipped[0].Reason, tt.reason) {
				t.Fatalf("skipped = %+v, want one with reason containing %q", s.skipped, tt.reason)
			}
			if id := s.skipped[0].ID; tt.name != "not an object" && id != "bad" {
				t.Errorf("skipped ID = %q, want %q", id, "bad")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tooMany := `{"keys":[` + strings.Repeat(`{},`, maxSetKeys) + `{}]}`
	tests := []struct {
		name, in string
	}{
		{"empty input", ""},
		{"malformed json", `{"keys":[`},
		{"trailing garbage", `{"keys":[]} x`},
		{"json null", `null`},
		{"json array", `[]`},
		{"no keys member", `{}`},
		{"keys in other case", `{"Keys":[]}`},
		{"keys null", `{"keys":null}`},
		{"keys not an array", `{"keys":{"kty":"EC"}}`},
		{"single jwk, not a set", `{"kty":"OKP","crv":"Ed25519","x":"kaDaK4tPv8MS4L-elte2mB8n3oFam1t7BpS1kUzACt4"}`},
		{"too many keys", tooMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse = %d keys, want an error", s.Len())
			}
			if s != nil {
				t.Errorf("Parse returned a set with its error")
			}
			if !strings.HasPrefix(err.Error(), "jwks: ") {
				t.Errorf("error %q lacks the jwks: prefix", err)
			}
		})
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// holds only usable public keys.
func FuzzParse(f *testing.F) {
	k := newTestKeys(f)
	f.Add(jwksJSON(f, jwkMap(f, k.rsa.Public(), "r", "RS256"), jwkMap(f, k.ec.Public(), "e", "ES256"),
		jwkMap(f, k.ed.Public(), "d", "EdDSA")))
	f.Add(jwksJSON(f, jwkMap(f, k.ec, "priv", "")))
	for _, s := range []string{
		``, `null`, `{}`, `{"keys":[]}`, `{"keys":null}`, `{"keys":[1,"a",null,[],{}]}`,
		`{"keys":[{"kty":"oct","k":"AAAA"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"kaDaK4tPv8MS4L-elte2mB8n3oFam1t7BpS1kUzACt4","use":"sig","key_ops":["verify"]}]}`,
		`{"keys":[{"kty":"OKP","crv":"X25519","x":"AA"}],"keys":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if s != nil {
				t.Fatal("set returned with an error")
			}
			if !json.Valid(data) && !strings.HasPrefix(err.Error(), "jwks: parse key set: ") {
				t.Fatalf("error %q lacks its prefix", err)
			}
			return
		}
		for _, key := range s.Lookup("") {
			if err := checkPublic(key.Public); err != nil {
				t.Fatalf("kept key %q: %v", key.ID, err)
			}
		}
		if s.Len() != len(s.Lookup("")) {
			t.Fatal("Len disagrees with Lookup")
		}
	})
}

func TestParseErrorWraps(t *testing.T) {
	_, err := Parse([]byte(`{"keys":`))
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Errorf("error %v does not wrap the json error", err)
	}
}
