package proxy_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// warm makes sure the gateway has loaded the issuer's keys.
func (e *env) warm() {
	e.t.Helper()
	e.echo(e.do("GET", "/", e.mint("ES256", e.claims("warm"), nil), nil))
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, "")
	e.warm()
	base := e.idp.JWKSHits()

	// The issuer adds a key and signs with it: the first token with the new
	// kid passes after exactly one refetch, sent with no-cache.
	e.clock.Advance(11 * time.Second)
	k2 := testidp.NewKey(t, "ES256", "k-new")
	e.idp.Publish(e.keys["RS256"], e.keys["ES256"], k2)
	noCache := e.idp.NoCacheHits()
	e.echo(e.do("GET", "/", testidp.Mint(t, k2, e.claims("alice"), nil), nil))
	if got := e.idp.JWKSHits() - base; got != 1 {
		t.Fatalf("JWKS fetched %d times for a new kid, want 1", got)
	}
	if e.idp.NoCacheHits() != noCache+1 {
		t.Error("refetch did not send Cache-Control: no-cache")
	}
	// Known keys need no fetch.
	e.echo(e.do("GET", "/", testidp.Mint(t, k2, e.claims("alice"), nil), nil))
	if got := e.idp.JWKSHits() - base; got != 1 {
		t.Fatalf("JWKS fetched again for a known kid")
	}

	// An unknown kid within the refetch interval causes no fetch.
	stranger := testidp.NewKey(t, "ES256", "k-stranger")
	expectChallenge(t, e.do("GET", "/", testidp.Mint(t, stranger, e.claims("x"), nil), nil), 401, "invalid_token")
	if got := e.idp.JWKSHits() - base; got != 1 {
		t.Fatalf("unknown kid within the refetch interval fetched the JWKS")
	}

	// 200 concurrent requests with an unknown kid after the interval cause
	// at most one fetch; the fetch is held open until the first arrives so
	// the requests overlap it.
	e.clock.Advance(11 * time.Second)
	before := e.idp.JWKSHits()
	arrived, release := e.idp.Hold()
	tok := testidp.Mint(t, stranger, e.claims("x"), nil)
	var wg sync.WaitGroup
	statuses := make([]int, 200)
	for i := range statuses {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", e.url+"/", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	<-arrived
	release()
	wg.Wait()
	if got := e.idp.JWKSHits() - before; got != 1 {
		t.Errorf("200 concurrent unknown-kid requests caused %d JWKS fetches, want 1", got)
	}
	for i, s := range statuses {
		if s != 401 {
			t.Fatalf("request %d: status %d, want 401", i, s)
		}
	}

	// The issuer drops the old ES256 key: after a refetch its tokens fail.
	e.clock.Advance(11 * time.Second)
	e.idp.Publish(k2)
	expectChallenge(t, e.do("GET", "/", testidp.Mint(t, stranger, e.claims("x"), nil), nil), 401, "invalid_token")
	expectChallenge(t, e.do("GET", "/", e.mint("ES256", e.claims("old"), nil), nil), 401, "invalid_token")
	e.echo(e.do("GET", "/", testidp.Mint(t, k2, e.claims("alice"), nil), nil))
}

func TestJWKSDownKeepsServing(t *testing.T) {
	e := newEnv(t, "")
	e.warm()
	e.idp.SetDown(true)
	e.clock.Advance(2 * time.Hour) // past max age: a refresh would be due
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		e.echo(e.do("GET", "/", e.mint(alg, e.claims("alice"), nil), nil))
	}
	// An unknown kid triggers a failing refetch; cached keys still work.
	expectChallenge(t, e.do("GET", "/", testidp.Mint(t, testidp.NewKey(t, "ES256", "k-x"), e.claims("x"), nil), nil), 401, "invalid_token")
	e.echo(e.do("GET", "/", e.mint("ES256", e.claims("alice"), nil), nil))
	_, body := e.getAdmin("/metrics")
	if !contains(body, `result="error"`) {
		t.Error("failed JWKS fetch not counted")
	}
}

func TestNotReadyUntilKeysLoad(t *testing.T) {
	e := newEnvHeld(t)
	if s, body := e.getAdmin("/readyz"); s != 503 || !contains(body, e.idp.Issuer) {
		t.Fatalf("readyz %d %q before keys loaded, want 503 naming the issuer", s, body)
	}
	e.release()
	e.warm()
	if s, _ := e.getAdmin("/readyz"); s != 200 {
		t.Fatalf("readyz %d after keys loaded", s)
	}
}

// TestExpiredUnknownKidFetchesNothing: the checks that need no key run
// before the key lookup, so an expired token with an unknown kid is refused
// as expired without a JWKS refetch; the same token unexpired refetches.
func TestExpiredUnknownKidFetchesNothing(t *testing.T) {
	e := newEnv(t, "")
	e.warm()
	e.clock.Advance(11 * time.Second) // past the refetch interval: a kid miss may fetch
	stranger := testidp.NewKey(t, "ES256", "k-stranger")
	expired := e.claims("x")
	expired["exp"] = e.clock.Now().Add(-time.Hour).Unix()
	before := e.idp.JWKSHits()
	res := e.do("GET", "/", testidp.Mint(t, stranger, expired, nil), nil)
	expectChallenge(t, res, 401, "invalid_token")
	if !strings.Contains(res.Header.Get("WWW-Authenticate"), "expired") {
		t.Errorf("expired token with an unknown kid: %q, want the expiry named", res.Header.Get("WWW-Authenticate"))
	}
	if got := e.idp.JWKSHits() - before; got != 0 {
		t.Errorf("an expired token with an unknown kid caused %d JWKS fetches", got)
	}
	expectChallenge(t, e.do("GET", "/", testidp.Mint(t, stranger, e.claims("x"), nil), nil), 401, "invalid_token")
	if got := e.idp.JWKSHits() - before; got != 1 {
		t.Errorf("an unexpired token with an unknown kid caused %d JWKS fetches, want 1 (the control)", got)
	}
}
