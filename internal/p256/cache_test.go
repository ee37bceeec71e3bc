package p256

//lint:file-ignore SA1019 the tests build keys from coordinates, and change a key in place, on purpose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"runtime"
	"sync"
	"testing"
)

// signedKey is a key with one valid signature.
type signedKey struct {
	pub        *ecdsa.PublicKey
	hash, r, s []byte
}

// newSignedKeys generates count keys, each with a signature.
func newSignedKeys(t *testing.T, count int) []signedKey {
	t.Helper()
	ks := make([]signedKey, count)
	for i := range ks {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte{byte(i)})
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		ks[i] = signedKey{&priv.PublicKey, h[:], r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))}
	}
	return ks
}

// refetched returns a new *ecdsa.PublicKey with pub's value, as parsing a
// JWKS again yields.
func refetched(pub *ecdsa.PublicKey) *ecdsa.PublicKey {
	return &ecdsa.PublicKey{Curve: pub.Curve, X: new(big.Int).Set(pub.X), Y: new(big.Int).Set(pub.Y)}
}

// checkKey fails unless k verifies sk's signature, and not another's.
func checkKey(t *testing.T, k *PublicKey, sk, other signedKey) {
	t.Helper()
	if !k.Verify(sk.hash, sk.r, sk.s) {
		t.Error("genuine signature rejected")
	}
	if k.Verify(other.hash, other.r, other.s) {
		t.Error("another key's signature accepted")
	}
}

// checkInvariants fails unless the map and the ring hold the same entries,
// within the bound.
func checkInvariants(t *testing.T, c *cache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := *c.entries.Load()
	if len(m) > c.max || len(c.ring) > c.max || len(m) != len(c.ring) {
		t.Fatalf("map %d entries, ring %d, bound %d", len(m), len(c.ring), c.max)
	}
	for _, e := range c.ring {
		if m[e.coords] != e {
			t.Fatal("ring entry missing from the map")
		}
	}
}

func TestCacheConcurrentFirstUse(t *testing.T) {
	const goroutines = 24
	keys := newSignedKeys(t, 4)
	c := newCache(8, 1)
	got := make([][]*PublicKey, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		got[g] = make([]*PublicKey, len(keys))
		wg.Go(func() {
			<-start
			for j := range keys {
				i := (g + j) % len(keys) // each goroutine in its own order
				k, err := c.get(refetched(keys[i].pub))
				if err != nil {
					t.Error(err)
					return
				}
				checkKey(t, k, keys[i], keys[(i+1)%len(keys)])
				got[g][i] = k
			}
		})
	}
	close(start)
	wg.Wait()

	if b := c.builds.Load(); b != int64(len(keys)) {
		t.Errorf("%d tables built for %d keys", b, len(keys))
	}
	for g := range got {
		for i := range keys {
			if got[g][i] != got[0][i] {
				t.Fatalf("goroutine %d got another table for key %d", g, i)
			}
		}
	}
	checkInvariants(t, c)
}

func TestCacheBound(t *testing.T) {
	const bound = 4
	keys := newSignedKeys(t, 3*bound)
	c := newCache(bound, 1)
	for round := range 2 {
		for i, sk := range keys {
			k, err := c.get(sk.pub)
			if err != nil {
				t.Fatal(err)
			}
			checkKey(t, k, sk, keys[(i+1)%len(keys)])
			checkInvariants(t, c)
		}
		// Each key was evicted before it came round again.
		if want := int64((round + 1) * len(keys)); c.builds.Load() != want {
			t.Errorf("round %d: %d builds, want %d", round, c.builds.Load(), want)
		}
	}
}

// TestCacheMemory checks that the memory a cache keeps is bounded by its
// bound, not by the number of keys it has seen.
func TestCacheMemory(t *testing.T) {
	const bound, seen = 4, 24
	keys := newSignedKeys(t, seen)
	perKey := mustKey(t, keys[0].pub).tableBytes()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newCache(bound, 1)
	for _, sk := range keys {
		if _, err := c.get(sk.pub); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	checkInvariants(t, c)

	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if limit := int64(2 * bound * perKey); grown > limit {
		t.Errorf("heap grew by %d bytes for %d keys through a cache of %d; want at most %d (%d per table)", grown, seen, bound, limit, perKey)
	}
	runtime.KeepAlive(c)
}

// TestCacheKeepsHotKey checks the second chance: a key used between the
// arrivals of new keys is never evicted.
func TestCacheKeepsHotKey(t *testing.T) {
	keys := newSignedKeys(t, 10)
	hot := keys[0]
	c := newCache(3, 1)
	for i, sk := range keys[1:] {
		if _, err := c.get(sk.pub); err != nil {
			t.Fatal(err)
		}
		k, err := c.get(hot.pub)
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, k, hot, sk)
		if want := int64(i + 2); c.builds.Load() != want {
			t.Fatalf("after %d new keys: %d builds, want %d (hot key rebuilt)", i+1, c.builds.Load(), want)
		}
	}
}

// TestCacheByValue checks that a re-fetched identical key finds its table,
// and that a key changed in place does not find its old one.
func TestCacheByValue(t *testing.T) {
	keys := newSignedKeys(t, 2)
	c := newCache(4, 1)
	pub := refetched(keys[0].pub)
	k1, err := c.get(pub)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := c.get(refetched(keys[0].pub))
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 || c.builds.Load() != 1 {
		t.Errorf("identical key rebuilt (%d builds)", c.builds.Load())
	}

	pub.X, pub.Y = keys[1].pub.X, keys[1].pub.Y
	k3, err := c.get(pub)
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, k3, keys[1], keys[0])
}

func TestCacheRejectsInvalid(t *testing.T) {
	c := newCache(4, 1)
	good := newSignedKeys(t, 1)[0].pub
	bad := &ecdsa.PublicKey{Curve: elliptic.P256(), X: good.X, Y: new(big.Int).Add(good.Y, big.NewInt(1))}
	for range 3 {
		if _, err := c.get(bad); err == nil {
			t.Fatal("off-curve key accepted")
		}
	}
	if n := len(*c.entries.Load()); n != 0 || c.builds.Load() != 0 {
		t.Errorf("invalid key cached: %d entries, %d builds", n, c.builds.Load())
	}
}

func TestForHitAllocs(t *testing.T) {
	sk := newSignedKeys(t, 1)[0]
	k, err := For(sk.pub)
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, k, sk, newSignedKeys(t, 1)[0])
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := For(sk.pub); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("For allocates %v times on a hit", allocs)
	}
}

// TestCacheAdmission: while the cache is full, a new key is refused until it
// has been asked for often enough, and the keys in use keep their tables.
func TestCacheAdmission(t *testing.T) {
	keys := newSignedKeys(t, 4)
	c := newCache(2, 3)
	for _, sk := range keys[:2] {
		if _, err := c.get(sk.pub); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := c.get(keys[2].pub); err != ErrNotCached {
			t.Fatalf("request %d of a new key while full: err %v, want ErrNotCached", i+1, err)
		}
	}
	k, err := c.get(keys[2].pub) // the third request displaces a table
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, k, keys[2], keys[3])
	if b := c.builds.Load(); b != 3 {
		t.Fatalf("%d tables built, want 3", b)
	}
	checkInvariants(t, c)
	// An invalid key is still refused as invalid, full cache or not.
	if _, err := c.get(&ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}); err == nil || err == ErrNotCached {
		t.Fatalf("invalid key: err %v", err)
	}
}
