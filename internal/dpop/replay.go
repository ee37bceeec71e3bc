package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// ErrReplayFull: the memory replay cache holds MaxEntries proofs that are
// all still within their window, so no proof can be recorded; proofs are
// refused (with a 503) rather than risk accepting one twice.
var ErrReplayFull = errors.New("dpop: replay cache full")

// MemoryReplay is a [ReplayCache] in the process: bounded, expired entries
// swept as it fills. Replicas that must not accept a proof used at another
// need a shared cache instead.
type MemoryReplay struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	seen  map[string]time.Time
	order []entry // insertion order, for sweeping
}

type entry struct {
	key    string
	expiry time.Time
}

// NewMemoryReplay returns a cache of at most max proofs (default 100 000)
// on clock now (nil: time.Now).
func NewMemoryReplay(max int, now func() time.Time) *MemoryReplay {
	if max <= 0 {
		max = 100_000
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{max: max, now: now, seen: map[string]time.Time{}}
}

// Seen implements [ReplayCache].
func (m *MemoryReplay) Seen(_ context.Context, key string, expiry time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if exp, ok := m.seen[key]; ok && now.Before(exp) {
		return true, nil
	}
	if len(m.order) >= m.max {
		m.sweep(now)
		if len(m.seen) >= m.max {
			return false, ErrReplayFull
		}
	}
	m.seen[key] = expiry
	m.order = append(m.order, entry{key, expiry})
	return false, nil
}

// sweep drops expired entries. Entries expire roughly in insertion order
// (one window for all), so the scan stops at the first live one.
func (m *MemoryReplay) sweep(now time.Time) {
	i := 0
	for ; i < len(m.order); i++ {
		e := m.order[i]
		if now.Before(e.expiry) {
			break
		}
		if m.seen[e.key] == e.expiry {
			delete(m.seen, e.key)
		}
	}
	m.order = append(m.order[:0], m.order[i:]...)
}

// Len is the number of proofs recorded, expired ones not yet swept
// included.
func (m *MemoryReplay) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seen)
}

// Nonces are server-provided nonces (RFC 9449 §8) that need no shared
// state: a nonce is the current time window, MACed with a key every
// replica holds. A nonce is good in its window and the next.
type Nonces struct {
	key    []byte
	window time.Duration
	now    func() time.Time
}

// NewNonces returns nonces MACed with key (nil: a random key, good for one
// process) in windows of window (default 5m) on clock now.
func NewNonces(key []byte, window time.Duration, now func() time.Time) *Nonces {
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if window <= 0 {
		window = 5 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{key: key, window: window, now: now}
}

// Current is the nonce to send in DPoP-Nonce.
func (n *Nonces) Current() string { return n.make(n.slot()) }

// Valid reports whether s is the nonce of this window or the last.
func (n *Nonces) Valid(s string) bool {
	slot := n.slot()
	return hmac.Equal([]byte(s), []byte(n.make(slot))) || hmac.Equal([]byte(s), []byte(n.make(slot-1)))
}

func (n *Nonces) slot() int64 { return n.now().UnixNano() / int64(n.window) }

func (n *Nonces) make(slot int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(slot))
	mac := hmac.New(sha256.New, n.key)
	mac.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}
