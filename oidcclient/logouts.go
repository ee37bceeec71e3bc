package oidcclient

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryLogouts is a [LogoutStore] in the process's memory, for one
// replica: a logout reaches only the process that received it. Records are
// kept until they can match no live session and then dropped. It is safe
// for concurrent use; the zero value is ready.
type MemoryLogouts struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	n     atomic.Int64 // records held: 0 lets LoggedOut answer at once
	mu    sync.RWMutex
	ended map[logoutKey]logoutRecord
	seen  map[[32]byte]time.Time // jti hashes, until
	adds  int                    // since the last sweep
}

// logoutKey is what a record ends: a sid, all of a subject's sessions, or
// a subject's sessions without a sid.
type logoutKey struct {
	kind  byte // 'i' sid, 's' subject, 'n' subject's sid-less sessions
	value string
}

type logoutRecord struct {
	at, until time.Time
}

func (m *MemoryLogouts) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// RecordLogout implements [LogoutStore].
func (m *MemoryLogouts) RecordLogout(_ context.Context, sid, subject string, at time.Time, ttl time.Duration) error {
	until := m.now().Add(ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended == nil {
		m.ended = map[logoutKey]logoutRecord{}
	}
	m.sweepLocked()
	put := func(k logoutKey) {
		if old, ok := m.ended[k]; ok {
			if old.at.After(at) {
				at = old.at
			}
			if old.until.After(until) {
				until = old.until
			}
		}
		m.ended[k] = logoutRecord{at: at, until: until}
	}
	switch {
	case sid != "":
		put(logoutKey{'i', sid})
		if subject != "" {
			put(logoutKey{'n', subject})
		}
	case subject != "":
		put(logoutKey{'s', subject})
	}
	m.n.Store(int64(len(m.ended)))
	return nil
}

// LoggedOut implements [LogoutStore]. With no logout recorded it costs an
// atomic load.
func (m *MemoryLogouts) LoggedOut(_ context.Context, sid, subject string, started time.Time) (bool, error) {
	if m.n.Load() == 0 {
		return false, nil
	}
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	live := func(k logoutKey) (logoutRecord, bool) {
		r, ok := m.ended[k]
		return r, ok && now.Before(r.until)
	}
	if sid != "" {
		if _, ok := live(logoutKey{'i', sid}); ok {
			return true, nil
		}
	} else if r, ok := live(logoutKey{'n', subject}); ok && !started.After(r.at) {
		return true, nil
	}
	if r, ok := live(logoutKey{'s', subject}); ok && !started.After(r.at) {
		return true, nil
	}
	return false, nil
}

// FirstUse implements [LogoutStore].
func (m *MemoryLogouts) FirstUse(_ context.Context, jti string, ttl time.Duration) (bool, error) {
	k := sha256.Sum256([]byte(jti))
	now := m.now()
	until := now.Add(ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[[32]byte]time.Time{}
	}
	m.sweepLocked()
	if u, ok := m.seen[k]; ok && now.Before(u) {
		return false, nil
	}
	m.seen[k] = until
	return true, nil
}

// ForgetUse forgets a jti recorded by FirstUse, so the same token may be
// sent again after a logout that could not be recorded.
func (m *MemoryLogouts) ForgetUse(_ context.Context, jti string) error {
	k := sha256.Sum256([]byte(jti))
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, k)
	return nil
}

// sweepLocked drops expired records every 64 additions, so the maps hold
// about what is still live.
func (m *MemoryLogouts) sweepLocked() {
	if m.adds++; m.adds < 64 {
		return
	}
	m.adds = 0
	now := m.now()
	for k, r := range m.ended {
		if !now.Before(r.until) {
			delete(m.ended, k)
		}
	}
	for k, u := range m.seen {
		if !now.Before(u) {
			delete(m.seen, k)
		}
	}
	m.n.Store(int64(len(m.ended)))
}

// Len reports how many logout records and token ids it holds.
func (m *MemoryLogouts) Len() (logouts, tokens int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.ended), len(m.seen)
}

var _ LogoutStore = (*MemoryLogouts)(nil)
