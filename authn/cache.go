package authn

import (
	"crypto/sha256"
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/portcullis-dev/portcullis/internal/boundcache"
)

// versioned is implemented by key sources whose keys can change
// (*jwks.Remote, *jwks.KeyRing): a cached token is trusted only while the
// version it was verified under is current, so a key that leaves the key
// set takes its cached tokens with it.
type versioned interface{ Version() uint64 }

// tokenCache remembers verified identities under the SHA-256 of the whole
// token, so a client reusing its access token pays for one signature check.
// An entry lives until the token expires (plus leeway), a maximum age, or
// its issuer's key set changes, whichever comes first. Only successes are
// cached: caching failures by token would let garbage fill memory. It is
// sharded, bounded in entries and in bytes, and evicts with a second-chance
// sweep over random entries when full. A token is admitted on its second
// verification only (see doorkeeper), so tokens seen once, the bulk of a
// stream of distinct tokens, never displace the ones clients reuse.
type tokenCache struct {
	door   doorkeeper
	c      *boundcache.Cache[cacheEntry]
	maxAge time.Duration
}

type cacheEntry struct {
	id      *Identity // never modified; hits get a copy
	iss     *Issuer
	version uint64 // of the issuer's keys when id was verified
}

func newTokenCache(entries, bytes int, maxAge time.Duration) *tokenCache {
	return &tokenCache{c: boundcache.New[cacheEntry](entries, bytes), maxAge: maxAge}
}

func keyVersion(iss *Issuer) uint64 {
	if v, ok := iss.Keys.(versioned); ok {
		return v.Version()
	}
	return 0
}

// get returns a copy of the cached identity for the token, or nil: an
// entry past its deadline, or verified under keys its issuer no longer has,
// is dropped.
func (c *tokenCache) get(key *[32]byte, now time.Time) (*Identity, *Issuer) {
	e, ok := c.c.Get(key, now, func(e cacheEntry) bool { return e.version == keyVersion(e.iss) })
	if !ok {
		return nil, nil
	}
	cp := *e.id
	return &cp, e.iss
}

// put caches a verified identity until the token expires (plus leeway) or
// the maximum age passes.
func (c *tokenCache) put(key *[32]byte, id *Identity, iss *Issuer, version uint64, now time.Time) {
	until := id.Expiry.Add(iss.Leeway)
	if lim := now.Add(c.maxAge); lim.Before(until) {
		until = lim
	}
	size := 2*len(id.Token) + 64*len(id.Claims) + 256
	c.c.Put(key, cacheEntry{id: id, iss: iss, version: version}, until, now, size)
}

// CacheStats reports the verified-token cache's size and use: every
// verification looks the token up, and a hit skips the signature check.
// It is all zeros when the cache is off.
func (a *Authenticator) CacheStats() boundcache.Stats {
	if a.cache == nil {
		return boundcache.Stats{}
	}
	return a.cache.c.Stats()
}

// len counts cached entries (for tests).
func (c *tokenCache) len() int {
	return c.c.Stats().Entries
}

// tokenKey hashes the token where it lies (Sum256 only reads its input).
func tokenKey(token string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// doorkeeper remembers, in a fixed array of fingerprints, which tokens were
// verified once: a cache that admitted every token would spend its memory
// and its garbage collector's time on tokens that never come back, and
// would evict, for each of them, an entry that might. Collisions only make
// a token wait one more verification before it is cached. It holds no
// pointers and never grows.
type doorkeeper struct {
	slots [doorSlots]atomic.Uint64
}

const doorSlots = 1 << 16 // 512 KiB

// admit reports whether the token with this key was seen before, and
// remembers it otherwise.
func (d *doorkeeper) admit(key *[32]byte) bool {
	i := binary.LittleEndian.Uint64(key[0:8]) % doorSlots
	fp := binary.LittleEndian.Uint64(key[8:16]) | 1 // never the empty slot's 0
	if d.slots[i].Load() == fp {
		return true
	}
	d.slots[i].Store(fp)
	return false
}
