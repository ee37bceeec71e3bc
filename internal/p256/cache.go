package p256

import (
	"crypto/ecdsa"
	"errors"
	"sync"
	"sync/atomic"

	"filippo.io/nistec"
)

// MaxCachedKeys is the number of keys whose tables For keeps: 3.4 MiB in
// all. A JWKS holds a handful of keys; the bound keeps an issuer that
// rotates keys, or many issuers, from growing the cache without limit.
const MaxCachedKeys = 16

// AdmitAfter is how many times a key must be asked for while the cache is
// full before its table displaces another's. With more keys in use than the
// cache holds, tables would otherwise be rebuilt (0.65 ms each) on nearly
// every verification; this way such keys are mostly refused, and their
// callers verify the ordinary way.
const AdmitAfter = 32

// ErrNotCached is returned by For for a key that has no table yet while the
// cache is full of keys in use: verify with crypto/ecdsa instead.
var ErrNotCached = errors.New("p256: no table for this key yet")

// defaultCache is the cache For uses.
var defaultCache = newCache(MaxCachedKeys, AdmitAfter)

// For returns the PublicKey for pub, building its table on first use and
// then reusing it. Keys are cached by value, so the new *ecdsa.PublicKey
// that a JWKS refresh yields for an unchanged key finds the same table, and
// a key changed in place is never mistaken for its old value. A hit takes
// no lock and allocates nothing. Concurrent first uses of a key build its
// table once; a key that is not a valid P-256 point is never cached, and
// its error is returned every time.
func For(pub *ecdsa.PublicKey) (*PublicKey, error) {
	return defaultCache.get(pub)
}

// cache maps coordinates to keys. Readers load an immutable map through an
// atomic pointer; writers, serialized by mu, replace it with a modified
// copy, which is cheap for a few entries. When full it evicts with the
// CLOCK (second chance) policy: a key used since the hand last passed it
// survives one more round. A new entry starts unmarked (the call that built
// it does not count as a use), so a key used once, then never again, goes
// before the keys in steady use.
type cache struct {
	max     int
	admit   int // see AdmitAfter
	entries atomic.Pointer[map[coords]*entry]
	builds  atomic.Int64 // tables built, for tests

	mu     sync.Mutex
	ring   []*entry       // the cached entries, in CLOCK order
	hand   int            // next ring slot to consider for eviction
	misses map[coords]int // requests for uncached keys while full
}

// entry is one cached key. pk is set, and done closed, once the table is
// built; until then the callers that found the entry wait on done.
type entry struct {
	coords coords
	pk     atomic.Pointer[PublicKey]
	done   chan struct{}
	used   atomic.Bool
}

// errBuildFailed is returned to callers that waited on a table whose
// construction did not complete.
var errBuildFailed = errors.New("p256: building the key's table failed")

// newCache returns an empty cache of at most max keys that, when full,
// admits a key on its admit-th request.
func newCache(max, admit int) *cache {
	c := &cache{max: max, admit: admit, misses: make(map[coords]int)}
	m := make(map[coords]*entry)
	c.entries.Store(&m)
	return c
}

// get returns the key for pub, from the cache or newly built.
func (c *cache) get(pub *ecdsa.PublicKey) (*PublicKey, error) {
	co, err := coordsOf(pub)
	if err != nil {
		return nil, err
	}
	if e := (*c.entries.Load())[co]; e != nil {
		e.touch()
		return e.wait()
	}
	return c.miss(&co)
}

// miss validates co, then either finds that another caller inserted it
// meanwhile or inserts it and builds its table.
func (c *cache) miss(co *coords) (*PublicKey, error) {
	q, err := pointOf(co)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e := (*c.entries.Load())[*co]
	owner := e == nil
	if owner && len(c.ring) >= c.max {
		if !c.admitLocked(co) {
			c.mu.Unlock()
			return nil, ErrNotCached
		}
	}
	if owner {
		e = &entry{coords: *co, done: make(chan struct{})}
		c.insertLocked(e)
	}
	c.mu.Unlock()
	if owner {
		c.build(e, q)
	}
	return e.wait()
}

// admitLocked counts a request for an uncached key while the cache is full
// and reports whether the key has now been asked for often enough to
// displace another. The counts are bounded: past 4×max keys they start
// over. c.mu must be held.
func (c *cache) admitLocked(co *coords) bool {
	n := c.misses[*co] + 1
	if n >= c.admit {
		delete(c.misses, *co)
		return true
	}
	if len(c.misses) >= 4*c.max {
		clear(c.misses)
	}
	c.misses[*co] = n
	return false
}

// build fills e. If it panics, waiters are woken with an error and the
// entry is dropped, so a later call tries again.
func (c *cache) build(e *entry, q *nistec.P256Point) {
	defer func() {
		if e.pk.Load() == nil {
			c.remove(e)
		}
		close(e.done)
	}()
	c.builds.Add(1)
	e.pk.Store(&PublicKey{coords: e.coords, table: newTable(q, defaultWindow)})
}

// touch marks e as used, writing only when the mark is not already set so
// that hits on a hot key do not contend on its cache line.
func (e *entry) touch() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// wait returns e's key once it is built.
func (e *entry) wait() (*PublicKey, error) {
	if pk := e.pk.Load(); pk != nil {
		return pk, nil
	}
	<-e.done
	if pk := e.pk.Load(); pk != nil {
		return pk, nil
	}
	return nil, errBuildFailed
}

// insertLocked adds e, evicting an entry if the cache is full. c.mu must be
// held.
func (c *cache) insertLocked(e *entry) {
	m := c.copyLocked()
	if len(c.ring) < c.max {
		c.ring = append(c.ring, e)
	} else {
		victim := c.victimLocked()
		delete(m, c.ring[victim].coords)
		c.ring[victim] = e
	}
	m[e.coords] = e
	c.entries.Store(&m)
}

// victimLocked advances the CLOCK hand to the slot to evict: the first
// entry not used since the hand last passed, clearing the marks it passes.
// Hits may set marks again behind the hand, so it gives up after two turns
// and takes the slot it is on. c.mu must be held.
func (c *cache) victimLocked() int {
	for range 2 * len(c.ring) {
		if !c.ring[c.hand].used.Swap(false) {
			break
		}
		c.hand = (c.hand + 1) % len(c.ring)
	}
	victim := c.hand
	c.hand = (c.hand + 1) % len(c.ring)
	return victim
}

// remove drops e, if it is still cached.
func (c *cache) remove(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.ring {
		if x != e {
			continue
		}
		m := c.copyLocked()
		delete(m, e.coords)
		c.entries.Store(&m)
		c.ring = append(c.ring[:i], c.ring[i+1:]...)
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		return
	}
}

// copyLocked returns a copy of the current map. c.mu must be held.
func (c *cache) copyLocked() map[coords]*entry {
	old := *c.entries.Load()
	m := make(map[coords]*entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	return m
}
