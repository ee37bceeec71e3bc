package dpop_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"

	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/internal/dpop/prooftest"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

type key struct{ *prooftest.Key }

func newKey(t testing.TB) key { return key{prooftest.NewKey(t)} }

func (k key) proof(t testing.TB, method, u, token string, iat time.Time, mod func(h, c map[string]any)) string {
	return k.Proof(t, method, u, token, iat, mod)
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	v, err := dpop.New(dpop.Config{Now: clock, Leeway: 5 * time.Second, Replay: dpop.NewMemoryReplay(100, clock)})
	if err != nil {
		t.Fatal(err)
	}
	k, other := newKey(t), newKey(t)
	const u, tok = "https://api.example.com/mcp/tools", "the.access.token"
	req := dpop.Request{Method: "POST", URL: u + "?x=1", AccessToken: tok, JKT: k.JKT}
	good := k.proof(t, "POST", u, tok, now, nil)
	p, err := v.Verify(context.Background(), good, req)
	if err != nil || p.JKT != k.JKT {
		t.Fatalf("a good proof: %v %v", p, err)
	}
	cases := []struct {
		name, proof string
		req         dpop.Request
		code        string
	}{
		{"replayed", good, req, dpop.CodeInvalidProof},
		{"wrong htm", k.proof(t, "GET", u, tok, now, nil), req, dpop.CodeInvalidProof},
		{"wrong htu", k.proof(t, "POST", "https://api.example.com/other", tok, now, nil), req, dpop.CodeInvalidProof},
		{"another host", k.proof(t, "POST", "https://evil.example.com/mcp/tools", tok, now, nil), req, dpop.CodeInvalidProof},
		{"another key", other.proof(t, "POST", u, tok, now, nil), req, dpop.CodeInvalidToken},
		{"stale iat", k.proof(t, "POST", u, tok, now.Add(-2*time.Minute), nil), req, dpop.CodeInvalidProof},
		{"future iat", k.proof(t, "POST", u, tok, now.Add(time.Minute), nil), req, dpop.CodeInvalidProof},
		{"no ath", k.proof(t, "POST", u, "", now, nil), req, dpop.CodeInvalidProof},
		{"ath of another token", k.proof(t, "POST", u, "other.token.x", now, nil), req, dpop.CodeInvalidToken},
		{"typ JWT", k.proof(t, "POST", u, tok, now, func(h, _ map[string]any) { h["typ"] = "JWT" }), req, dpop.CodeInvalidProof},
		{"no jwk", k.proof(t, "POST", u, tok, now, func(h, _ map[string]any) { delete(h, "jwk") }), req, dpop.CodeInvalidProof},
		{"private jwk", k.proof(t, "POST", u, tok, now, func(h, _ map[string]any) {
			m := map[string]any{"d": "AAAA"}
			for a, b := range k.JWK {
				m[a] = b
			}
			h["jwk"] = m
		}), req, dpop.CodeInvalidProof},
		{"no jti", k.proof(t, "POST", u, tok, now, func(_, c map[string]any) { delete(c, "jti") }), req, dpop.CodeInvalidProof},
		{"alg none", "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.eyJqdGkiOiJ4In0.", req, dpop.CodeInvalidProof},
		{"bad signature", good[:len(good)-4] + "AAAA", req, dpop.CodeInvalidProof},
		{"not a JWS", "garbage", req, dpop.CodeInvalidProof},
	}
	for _, tc := range cases {
		_, err := v.Verify(context.Background(), tc.proof, tc.req)
		var de *dpop.Error
		if !errors.As(err, &de) || de.Code != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	// Default ports and letter case of scheme and host do not matter.
	p2 := k.proof(t, "GET", "HTTPS://API.example.com:443/mcp/tools", tok, now, nil)
	if _, err := v.Verify(context.Background(), p2, dpop.Request{Method: "GET", URL: "https://api.example.com/mcp/tools", AccessToken: tok}); err != nil {
		t.Errorf("normalised htu: %v", err)
	}
}

func TestNonces(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	n := dpop.NewNonces(nil, time.Minute, clock)
	v, _ := dpop.New(dpop.Config{Now: clock, Replay: dpop.NewMemoryReplay(100, clock), Nonces: n})
	k := newKey(t)
	req := dpop.Request{Method: "GET", URL: "https://a.example.com/x"}
	var de *dpop.Error
	if _, err := v.Verify(context.Background(), k.proof(t, "GET", req.URL, "", now, nil), req); !errors.As(err, &de) || de.Code != dpop.CodeUseNonce {
		t.Fatalf("without nonce: %v", err)
	}
	cur := n.Current()
	withNonce := func(nonce string) string {
		return k.proof(t, "GET", req.URL, "", now, func(_, c map[string]any) { c["nonce"] = nonce; c["jti"] = nonce })
	}
	if _, err := v.Verify(context.Background(), withNonce(cur), req); err != nil {
		t.Fatalf("with the nonce: %v", err)
	}
	if _, err := v.Verify(context.Background(), withNonce(cur), req); err == nil {
		t.Fatal("a replay passed")
	}
	now = now.Add(70 * time.Second) // the next window still takes it
	if _, err := v.Verify(context.Background(), k.proof(t, "GET", req.URL, "", now, func(_, c map[string]any) { c["nonce"] = cur }), req); err != nil {
		t.Fatalf("the last window's nonce: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.Verify(context.Background(), k.proof(t, "GET", req.URL, "", now, func(_, c map[string]any) { c["nonce"] = cur }), req); !errors.As(err, &de) || de.Code != dpop.CodeUseNonce {
		t.Errorf("an old nonce: %v", err)
	}
}

func TestMemoryReplayBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := dpop.NewMemoryReplay(3, func() time.Time { return now })
	for _, k := range []string{"a", "b", "c"} {
		if seen, err := m.Seen(context.Background(), k, now.Add(time.Minute)); seen || err != nil {
			t.Fatal(k, seen, err)
		}
	}
	if _, err := m.Seen(context.Background(), "d", now.Add(time.Minute)); !errors.Is(err, dpop.ErrReplayFull) {
		t.Fatalf("full: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if seen, err := m.Seen(context.Background(), "d", now.Add(time.Minute)); seen || err != nil || m.Len() != 1 {
		t.Fatalf("after the window: %v %v %d", seen, err, m.Len())
	}
}

// FuzzVerify feeds arbitrary proofs to the verifier: nothing panics, and
// a proof that passes is refused the second time.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	k := newKey(f)
	f.Add(k.proof(f, "GET", "https://a.example.com/x", "tok", now, nil))
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.eyJqdGkiOiJ4In0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, proof string) {
		v, _ := dpop.New(dpop.Config{Now: clock, Replay: dpop.NewMemoryReplay(10, clock)})
		req := dpop.Request{Method: "GET", URL: "https://a.example.com/x", AccessToken: "tok"}
		if _, err := v.Verify(context.Background(), proof, req); err != nil {
			return
		}
		if _, err := v.Verify(context.Background(), proof, req); err == nil {
			t.Fatalf("accepted %q twice", proof)
		}
	})
}

// TestRedisReplaySharedByReplicas: two verifiers on one Redis, as two
// replicas: a proof accepted by one is a replay at the other.
func TestRedisReplaySharedByReplicas(t *testing.T) {
	url, _, _ := testredis.Start(t)
	now := time.Now()
	clock := func() time.Time { return now }
	var vs []*dpop.Verifier
	for range 2 {
		r, err := dpop.NewRedisReplay(url, clock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		v, _ := dpop.New(dpop.Config{Now: clock, Replay: r})
		vs = append(vs, v)
	}
	k := newKey(t)
	req := dpop.Request{Method: "GET", URL: "https://a.example.com/x", AccessToken: "tok"}
	p := k.proof(t, "GET", req.URL, "tok", now, nil)
	if _, err := vs[0].Verify(context.Background(), p, req); err != nil {
		t.Fatal(err)
	}
	var de *dpop.Error
	if _, err := vs[1].Verify(context.Background(), p, req); !errors.As(err, &de) || de.Code != dpop.CodeInvalidProof {
		t.Errorf("replay at the other replica: %v", err)
	}
}

// Ed25519 (RFC 9864) is what oauth4webapi names its EdDSA proofs; EdDSA in
// the algorithms accepts it, a list without EdDSA or Ed25519 does not, and
// an EC key cannot pass for it.
func TestEd25519IsEdDSA(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jk, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	const u = "https://api.example.com/x"
	sign := func(alg string, key any, jwkHeader any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"jti": fmt.Sprint(time.Now().UnixNano()), "htm": "GET", "htu": u, "iat": now.Unix()})
		tok.Header["typ"], tok.Header["jwk"], tok.Header["alg"] = "dpop+jwt", jwkHeader, alg
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		algs []string
		alg  string
		ok   bool
	}{
		{nil, "Ed25519", true},
		{nil, "EdDSA", true},
		{[]string{"Ed25519"}, "Ed25519", true},
		{[]string{"Ed25519"}, "EdDSA", false},
		{[]string{"ES256"}, "Ed25519", false},
	} {
		v, err := dpop.New(dpop.Config{Algorithms: tc.algs, Now: clock, Replay: dpop.NewMemoryReplay(100, clock)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), sign(tc.alg, priv, jk), dpop.Request{Method: "GET", URL: u})
		if (err == nil) != tc.ok {
			t.Errorf("algorithms %v, proof alg %s: %v", tc.algs, tc.alg, err)
		}
		if tc.algs == nil && !slices.Contains(v.Algorithms(), "Ed25519") {
			t.Errorf("default algorithms %v lack Ed25519", v.Algorithms())
		}
	}
	ec := prooftest.NewKey(t)
	v, _ := dpop.New(dpop.Config{Now: clock, Replay: dpop.NewMemoryReplay(100, clock)})
	p := ec.Proof(t, "GET", u, "", now, func(h, _ map[string]any) { h["alg"] = "Ed25519" })
	if _, err := v.Verify(context.Background(), p, dpop.Request{Method: "GET", URL: u}); err == nil {
		t.Error("an EC key passed as Ed25519")
	}
}
