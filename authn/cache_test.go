package authn_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authn"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/jwks"
)

// cacheFixture is an Authenticator with the cache on, a movable clock, a
// revocation list, and a JWKS whose keys the test changes.
type cacheFixture struct {
	idp     *testidp.Server
	key     *testidp.Key
	remote  *jwks.Remote
	auth    *authn.Authenticator
	now     atomic.Int64
	revoked atomic.Value // string jti
}

func newCacheFixture(t *testing.T) *cacheFixture {
	f := &cacheFixture{key: testidp.NewKey(t, "ES256", "k1")}
	f.now.Store(testNow.UnixNano())
	clock := func() time.Time { return time.Unix(0, f.now.Load()) }
	f.idp = testidp.New(t, f.key)
	f.remote = jwks.NewRemote(t.Context(), jwks.RemoteConfig{Issuer: f.idp.Issuer, Now: clock, RefetchInterval: time.Second})
	f.revoked.Store("")
	var err error
	f.auth, err = authn.New(authn.Config{Now: clock, Issuers: []authn.Issuer{{
		Issuer: f.idp.Issuer, Audiences: []string{"api"}, Algorithms: []string{"ES256"}, Leeway: 30 * time.Second,
		Keys: f.remote,
		Revoked: func(_ context.Context, jti string) (bool, error) {
			return jti == f.revoked.Load().(string), nil
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cacheFixture) verify(tok string) error {
	_, err := f.auth.Verify(context.Background(), tok)
	return err
}

// cached verifies tok until it is in the cache (the second verification
// admits it) and fails the test if it is not.
func (f *cacheFixture) cached(t *testing.T, tok string) {
	t.Helper()
	before := f.auth.CacheLen()
	for range 2 {
		if err := f.verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if f.auth.CacheLen() != before+1 {
		t.Fatalf("token not cached: %d entries, want %d", f.auth.CacheLen(), before+1)
	}
}

func reasonOf(err error) string {
	var ae *authn.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestCacheAdmitsOnSecondSight(t *testing.T) {
	f := newCacheFixture(t)
	// A stream of distinct tokens, each seen once, leaves the cache empty.
	for i := range 50 {
		tok := testidp.Mint(t, f.key, f.idp.Claims(fmt.Sprint("user-", i), testNow), nil)
		if err := f.verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.auth.CacheLen(); n != 0 {
		t.Fatalf("%d tokens seen once were cached", n)
	}
	// A token that comes back is cached on its second verification.
	f.cached(t, f.mintOnce(t))
}

func (f *cacheFixture) mintOnce(t *testing.T) string {
	return testidp.Mint(t, f.key, f.idp.Claims("alice", testNow), nil)
}

func TestCachedTokens(t *testing.T) {
	t.Run("revoked jti rejected although cached", func(t *testing.T) {
		f := newCacheFixture(t)
		tok := testidp.Mint(t, f.key, f.idp.Claims("alice", testNow), nil)
		f.cached(t, tok)
		c := f.idp.Claims("alice", testNow)
		f.revoked.Store(c["jti"].(string))
		if r := reasonOf(f.verify(tok)); r != authn.ReasonRevoked {
			t.Fatalf("reason %q, want revoked", r)
		}
	})
	t.Run("expired cached token rejected", func(t *testing.T) {
		f := newCacheFixture(t)
		tok := testidp.Mint(t, f.key, f.idp.Claims("alice", testNow), nil)
		f.cached(t, tok)
		f.now.Add(int64(time.Hour + 31*time.Second))
		if r := reasonOf(f.verify(tok)); r != authn.ReasonExpired {
			t.Fatalf("reason %q, want expired", r)
		}
	})
	t.Run("key removed from the JWKS invalidates its tokens", func(t *testing.T) {
		f := newCacheFixture(t)
		tok := testidp.Mint(t, f.key, f.idp.Claims("alice", testNow), nil)
		f.cached(t, tok)
		hits := f.idp.JWKSHits()
		if err := f.verify(tok); err != nil || f.idp.JWKSHits() != hits {
			t.Fatalf("cached verify: %v, fetches %d", err, f.idp.JWKSHits()-hits)
		}
		f.idp.Publish(testidp.NewKey(t, "ES256", "k2"))
		if err := f.remote.Refresh(); err != nil {
			t.Fatal(err)
		}
		if r := reasonOf(f.verify(tok)); r != authn.ReasonUnknownKey {
			t.Fatalf("reason %q after key removal, want unknown_kid", r)
		}
	})
	t.Run("cached identity still checked per policy", func(t *testing.T) {
		f := newCacheFixture(t)
		tok := testidp.Mint(t, f.key, f.idp.Claims("alice", testNow), nil)
		f.cached(t, tok)
		for _, p := range []struct {
			policy authn.Policy
			ok     bool
		}{
			{authn.Policy{Scopes: []string{"read"}}, true},
			{authn.Policy{Scopes: []string{"admin"}}, false},
			{authn.Policy{Audiences: []string{"other"}}, false},
			{authn.Policy{}, true},
		} {
			id, err := f.auth.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.auth.Authorize(id, &p.policy); (err == nil) != p.ok {
				t.Errorf("policy %+v: %v", p.policy, err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"ES256", "RS256"} {
		key := testidp.NewKey(b, alg, "k1")
		idp := testidp.New(b, key)
		remote := jwks.NewRemote(b.Context(), jwks.RemoteConfig{Issuer: idp.Issuer})
		if err := remote.Refresh(); err != nil {
			b.Fatal(err)
		}
		for _, cached := range []bool{false, true} {
			entries := -1
			if cached {
				entries = 0
			}
			a, _ := authn.New(authn.Config{CacheEntries: entries, Issuers: []authn.Issuer{{
				Issuer: idp.Issuer, Audiences: []string{"api"}, Algorithms: []string{alg}, Keys: remote}}})
			tok := testidp.Mint(b, key, idp.Claims("alice", time.Now()), nil)
			name := alg + "/cold"
			if cached {
				name = alg + "/cached"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.Verify(context.Background(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
