package attack_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestInvalidTokenFlood pipelines bad tokens of every kind down one
// connection, as a flood does: each is refused with 401 and no key fetch,
// and after the first few the connection's answers are held back, while a
// valid token on its own connection is never held.
func TestInvalidTokenFlood(t *testing.T) {
	e := newTokenEnv(t)
	good := e.mint("ES256", e.claims("alice"), nil)
	fetches := e.a.JWKSHits()
	bad := []string{
		"garbage",
		"a.b.c",
		strings.Repeat("A", 2000),
		good[:len(good)-8] + "AAAAAAAA",
		e.mint("ES256", e.claims("mallory"), map[string]any{"kid": "no-such-kid"}),
		e.mint("RS256", e.claims("mallory"), map[string]any{"kid": "random-kid-4d2a"}),
	}
	var req strings.Builder
	const n = 60
	for i := range n {
		fmt.Fprintf(&req, "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", bad[i%len(bad)])
	}
	req.WriteString("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	statuses := exchange(t, e.addr, req.String())
	if len(statuses) != n+1 {
		t.Fatalf("%d answers to %d pipelined requests", len(statuses), n+1)
	}
	for i, s := range statuses[:n] {
		if s != 401 {
			t.Fatalf("bad token %d answered %d", i, s)
		}
	}
	if held := e.held.Load(); held != n-8 {
		t.Fatalf("%d answers held back, want %d (all but the first 8)", held, n-8)
	}
	if got := e.a.JWKSHits() - fetches; got > 1 {
		t.Fatalf("%d key fetches for a flood of unknown kids, want at most 1 (the refetch interval)", got)
	}
	e.held.Store(0)
	for range 20 {
		if res, _ := send(t, "GET", e.url+"/", bearer(good)); res.StatusCode != 200 {
			t.Fatalf("valid token during the flood: %d", res.StatusCode)
		}
	}
	if held := e.held.Load(); held != 0 {
		t.Fatalf("valid traffic held back %d times", held)
	}
}
