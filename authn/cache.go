package authn

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
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
	door    doorkeeper
	shards  [cacheShards]cacheShard
	entries int // per shard
	bytes   int // per shard
	maxAge  time.Duration
}

const cacheShards = 16

type cacheShard struct {
	mu    sync.Mutex
	m     map[[32]byte]*cacheEntry
	bytes int
}

type cacheEntry struct {
	id      *Identity
	iss     *Issuer
	version uint64
	until   time.Time
	size    int
	used    bool // second chance
}

func newTokenCache(entries, bytes int, maxAge time.Duration) *tokenCache {
	c := &tokenCache{entries: max(1, entries/cacheShards), bytes: max(1<<12, bytes/cacheShards), maxAge: maxAge}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*cacheEntry)
	}
	return c
}

func keyVersion(iss *Issuer) uint64 {
	if v, ok := iss.Keys.(versioned); ok {
		return v.Version()
	}
	return 0
}

// get returns a copy of the cached identity for the token, or nil.
func (c *tokenCache) get(key *[32]byte, now time.Time) (*Identity, *Issuer) {
	sh := &c.shards[key[0]%cacheShards]
	sh.mu.Lock()
	e := sh.m[*key]
	if e == nil {
		sh.mu.Unlock()
		return nil, nil
	}
	if !now.Before(e.until) || e.version != keyVersion(e.iss) {
		sh.drop(*key, e)
		sh.mu.Unlock()
		return nil, nil
	}
	e.used = true
	cp := *e.id
	sh.mu.Unlock()
	return &cp, e.iss
}

// put caches a verified identity.
func (c *tokenCache) put(key *[32]byte, id *Identity, iss *Issuer, version uint64, now time.Time) {
	until := id.Expiry.Add(iss.Leeway)
	if lim := now.Add(c.maxAge); lim.Before(until) {
		until = lim
	}
	if !now.Before(until) {
		return
	}
	size := 2*len(id.Token) + 64*len(id.Claims) + 256
	sh := &c.shards[key[0]%cacheShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.m[*key]; old != nil {
		sh.drop(*key, old)
	}
	for len(sh.m) >= c.entries || sh.bytes+size > c.bytes {
		if !sh.evict() {
			return
		}
	}
	sh.m[*key] = &cacheEntry{id: id, iss: iss, version: version, until: until, size: size}
	sh.bytes += size
}

func (sh *cacheShard) drop(key [32]byte, e *cacheEntry) {
	delete(sh.m, key)
	sh.bytes -= e.size
}

// evict removes one entry: the first of a few random ones that was not used
// since the last sweep, else the last one looked at.
func (sh *cacheShard) evict() bool {
	n := 0
	for k, e := range sh.m {
		n++
		if e.used && n < 8 {
			e.used = false
			continue
		}
		sh.drop(k, e)
		return true
	}
	return false
}

// len counts cached entries (for tests).
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
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
