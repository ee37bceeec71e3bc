package jwks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/p256"
)

// TestKeyVerifiersBuiltOncePerKey: a parsed key's verifier is built on its
// first use and shared by every copy the set hands out, also when many
// goroutines ask at once; it checks what crypto/ecdsa checks.
func TestKeyVerifiersBuiltOncePerKey(t *testing.T) {
	tk := newTestKeys(t)
	set, err := Parse(jwksJSON(t, jwkMap(t, &tk.ec.PublicKey, "ec", "ES256"), jwkMap(t, &tk.rsa.PublicKey, "rsa", "RS256"),
		jwkMap(t, tk.ed.Public(), "ed", "EdDSA")))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]*p256.PublicKey, 8)
	for i := range got {
		wg.Go(func() {
			k := set.Lookup("ec")[0] // a fresh copy each time
			got[i], _ = k.P256()
		})
	}
	wg.Wait()
	for i, pk := range got {
		if pk == nil || pk != got[0] {
			t.Fatalf("copy %d: verifier %p, copy 0's %p: not one per key", i, pk, got[0])
		}
	}
	h := sha256.Sum256([]byte("m"))
	r, s, err := ecdsa.Sign(rand.Reader, tk.ec, h[:])
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Verify(h[:], r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))) {
		t.Error("the key's verifier refuses crypto/ecdsa's signature")
	}
	rk := set.Lookup("rsa")[0]
	r1, ok1 := rk.RSA()
	r2, ok2 := set.Lookup("rsa")[0].RSA()
	if !ok1 || !ok2 || r1 != r2 {
		t.Errorf("RSA verifier: %p %v, %p %v: not one per key", r1, ok1, r2, ok2)
	}
	if _, ok := rk.P256(); ok {
		t.Error("an RSA key has a P-256 verifier")
	}
	if _, ok := set.Lookup("ed")[0].RSA(); ok {
		t.Error("an Ed25519 key has an RSA verifier")
	}
	if _, ok := (Key{ID: "ec", Public: &tk.ec.PublicKey}).P256(); ok {
		t.Error("a Key made outside the package has a verifier")
	}
}

// TestKeyVerifiersBounded: only the first 16 keys of a set get verifiers,
// so a key set listing hundreds of keys cannot make the gateway build
// hundreds of 216 KiB tables.
func TestKeyVerifiersBounded(t *testing.T) {
	var keys []any
	for i := range maxPrecomputed + 4 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, jwkMap(t, &k.PublicKey, string(rune('a'+i)), "ES256"))
	}
	set, err := Parse(jwksJSON(t, keys...))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range set.Lookup("") {
		_, ok := k.P256()
		if want := i < maxPrecomputed; ok != want {
			t.Errorf("key %d of %d: verifier %v, want %v", i, set.Len(), ok, want)
		}
	}
}

// TestRefreshKeepsVerifiers: a refresh that serves a key unchanged keeps
// its verifier (no table is built again); a key that changed gets its own.
func TestRefreshKeepsVerifiers(t *testing.T) {
	a, b := newEC(t), newEC(t)
	p := newProvider(t, jwkMap(t, &a.PublicKey, "a", "ES256"), jwkMap(t, &b.PublicKey, "b", "ES256"))
	r, _, _ := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL()})
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	verifier := func(kid string) *p256.PublicKey {
		t.Helper()
		keys, err := r.Keys(t.Context(), kid)
		if err != nil || len(keys) != 1 {
			t.Fatalf("kid %s: %v %v", kid, keys, err)
		}
		pk, ok := keys[0].P256()
		if !ok {
			t.Fatalf("kid %s: no verifier", kid)
		}
		return pk
	}
	a1, b1 := verifier("a"), verifier("b")
	c := newEC(t)
	p.set(func(p *provider) {
		p.keys = []any{jwkMap(t, &a.PublicKey, "a", "ES256"), jwkMap(t, &c.PublicKey, "b", "ES256")}
	})
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if p.jwksHits.Load() != 2 {
		t.Fatalf("%d key set fetches, want 2", p.jwksHits.Load())
	}
	if a2 := verifier("a"); a2 != a1 {
		t.Error("unchanged key a: its verifier was built again after the refresh")
	}
	if b2 := verifier("b"); b2 == b1 {
		t.Error("key b changed: the refreshed set still uses the old key's verifier")
	}
}
