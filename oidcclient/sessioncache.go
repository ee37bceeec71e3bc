package oidcclient

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/boundcache"
)

// Session cache defaults and shape.
const (
	// sessionCacheEntries and sessionCacheBytes are the bounds used when
	// [Config] leaves them zero.
	sessionCacheEntries = 10_000
	sessionCacheBytes   = 16 << 20

	// sessionKeyStack is how much of a cookie is hashed without allocating.
	sessionKeyStack = 4096
)

// sessionCache remembers decoded session cookies under the SHA-256 of the
// sealed value as the request carried it, so a browser repeating its cookie
// pays for one decryption and one JSON decode. It saves only that work:
// whatever depends on the time (refresh, expiry of the access token, the
// session's maximum age) is still decided on every request, from the
// cached value. An entry lives until the expiry sealed in its cookie. Only
// cookies that opened and decoded are cached: garbage cannot fill memory.
// Bounded in entries and approximate bytes (see internal/boundcache).
type sessionCache struct {
	c *boundcache.Cache[*Session] // never modified; hits get a copy
}

// newSessionCache returns a cache holding about entries sessions and bytes
// bytes in all.
func newSessionCache(entries, bytes int) *sessionCache {
	return &sessionCache{c: boundcache.New[*Session](entries, bytes)}
}

// sessionKey returns the cache key of a cookie from its chunks as
// [cookieRequestChunks] returns them: the SHA-256 of every chunk's value
// with its length before it, so the same characters cut into chunks
// differently make another key. ok is false when a chunk is repeated in the
// request: which combination opens is then decided by
// [CookieCodec.openChunks] on every request, and nothing is cached.
func sessionKey(chunks [][]string) (key [32]byte, ok bool) {
	n := 0
	for _, vs := range chunks {
		if len(vs) != 1 {
			return key, false
		}
		n += 4 + len(vs[0])
	}
	var stack [sessionKeyStack]byte
	buf := stack[:0]
	if n > len(stack) {
		buf = make([]byte, 0, n)
	}
	for _, vs := range chunks {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(vs[0])))
		buf = append(buf, vs[0]...)
	}
	return sha256.Sum256(buf), true
}

// get returns a copy of the session cached under key, or nil. An entry
// whose cookie has expired by now is dropped.
func (c *sessionCache) get(key *[32]byte, now time.Time) *Session {
	s, ok := c.c.Get(key, now, nil)
	if !ok {
		return nil
	}
	cp := *s
	return &cp
}

// put caches a copy of s, decoded from a cookie sealed to expire at until.
// The copy shares s's memoised id_token claims, if it has them.
func (c *sessionCache) put(key *[32]byte, s *Session, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	cp := *s
	// A caller appending to its copy's Scopes must not write into ours.
	cp.Scopes = slices.Clip(cp.Scopes)
	c.c.Put(key, &cp, until, now, sessionSize(&cp))
}

// sessionSize estimates the memory a cached session holds: its strings,
// the claims it may decode or merge (about the size of the tokens again),
// and the entry's own overhead.
func sessionSize(s *Session) int {
	n := 2*len(s.AccessToken) + 3*len(s.IDToken) + len(s.RefreshToken) + len(s.Subject) + 512
	for _, sc := range s.Scopes {
		n += 16 + len(sc)
	}
	return n
}

// SessionCacheStats reports the decoded-session cache's size and use:
// every session cookie is looked up, and a hit skips its decryption. It is
// all zeros when the cache is off or sessions live in a store.
func (c *Client) SessionCacheStats() boundcache.Stats {
	if c.cache == nil {
		return boundcache.Stats{}
	}
	return c.cache.c.Stats()
}

// stats counts cached entries, their approximate bytes and hits (for
// tests).
func (c *sessionCache) stats() (entries, bytes int, hits uint64) {
	st := c.c.Stats()
	return st.Entries, st.Bytes, st.Hits
}
