// Package boundcache is the cache behind portcullis' verified tokens and
// decoded session cookies: keyed by a SHA-256 digest of what was verified,
// sharded, bounded in entries and in approximate bytes, each entry valid
// until a deadline. When full it evicts with a second-chance sweep over a
// few entries in the map's random order: cheap, and good enough to keep
// what clients reuse.
//
// Values are never modified once cached; callers that hand them out copy
// them.
package boundcache

import (
	"sync"
	"time"
)

const shards = 16

// Cache maps SHA-256 digests to values of type V.
type Cache[V any] struct {
	shards  [shards]shard[V]
	entries int // per shard
	bytes   int // per shard
}

type shard[V any] struct {
	mu    sync.Mutex
	m     map[[32]byte]*entry[V]
	bytes int

	lookups, hits uint64
}

type entry[V any] struct {
	v     V
	until time.Time
	size  int
	used  bool // second chance
}

// New returns a cache of about entries values and bytes bytes in all.
func New[V any](entries, bytes int) *Cache[V] {
	c := &Cache[V]{entries: max(1, entries/shards), bytes: max(1<<12, bytes/shards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]*entry[V])
	}
	return c
}

// Get returns the value cached under key, if its deadline is after now and
// valid (when not nil) accepts it; an entry that fails either is dropped.
func (c *Cache[V]) Get(key *[32]byte, now time.Time, valid func(V) bool) (v V, ok bool) {
	sh := &c.shards[key[0]%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.lookups++
	e := sh.m[*key]
	if e == nil {
		return v, false
	}
	if !now.Before(e.until) || valid != nil && !valid(e.v) {
		sh.drop(*key, e)
		return v, false
	}
	e.used = true
	sh.hits++
	return e.v, true
}

// Put caches v under key until the deadline until, counting size bytes
// for it; it evicts others to make room, and caches nothing when until is
// not after now or v alone is larger than a shard may hold.
func (c *Cache[V]) Put(key *[32]byte, v V, until, now time.Time, size int) {
	if !now.Before(until) {
		return
	}
	sh := &c.shards[key[0]%shards]
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
	sh.m[*key] = &entry[V]{v: v, until: until, size: size}
	sh.bytes += size
}

func (sh *shard[V]) drop(key [32]byte, e *entry[V]) {
	delete(sh.m, key)
	sh.bytes -= e.size
}

// evict removes one entry: the first of a few random ones that was not used
// since the last sweep, else the last one looked at.
func (sh *shard[V]) evict() bool {
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

// Stats is a snapshot of a cache's size and use.
type Stats struct {
	Entries int    // values cached
	Bytes   int    // their approximate size
	Lookups uint64 // calls of Get so far
	Hits    uint64 // calls of Get that returned a value
}

// Stats counts the cached entries, their approximate bytes, and the
// lookups and hits so far.
func (c *Cache[V]) Stats() Stats {
	var st Stats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		st.Entries += len(sh.m)
		st.Bytes += sh.bytes
		st.Lookups += sh.lookups
		st.Hits += sh.hits
		sh.mu.Unlock()
	}
	return st
}
