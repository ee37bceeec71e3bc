package oidcclient

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// MemoryStore is a [SessionStore] in the process's memory: the cookie
// carries only a session id, so a session of any size travels in one small
// cookie, which is what a fronting proxy's auth subrequest can pass on
// (nginx's auth_request passes one Set-Cookie). Sessions are lost when the
// process stops and are not shared between replicas; use Redis for those.
// It is safe for concurrent use.
type MemoryStore struct {
	// Max bounds how many sessions it keeps; 0 means 100 000. When it is
	// full, expired sessions are dropped first, then the session closest to
	// its expiry.
	Max int
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[[32]byte]memSession
}

type memSession struct {
	data    []byte
	expires time.Time
	owner   SessionOwner
}

// key hashes the id, so the map never holds a usable session id.
func (s *MemoryStore) key(id string) [32]byte { return sha256.Sum256([]byte(id)) }

func (s *MemoryStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SaveSession keeps data under id for ttl, filed under owner.
func (s *MemoryStore) SaveSession(_ context.Context, id string, data []byte, ttl time.Duration, owner SessionOwner) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[[32]byte]memSession{}
	}
	k := s.key(id)
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max() {
		s.evict(now)
	}
	s.m[k] = memSession{data: append([]byte(nil), data...), expires: now.Add(ttl), owner: owner}
	return nil
}

// UpdateSession replaces the data of a live session, or returns
// [ErrNoSession].
func (s *MemoryStore) UpdateSession(_ context.Context, id string, data []byte, ttl time.Duration) error {
	now := s.now()
	k := s.key(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok || !now.Before(v.expires) {
		return ErrNoSession
	}
	v.data, v.expires = append([]byte(nil), data...), now.Add(ttl)
	s.m[k] = v
	return nil
}

// DeleteSessionsOf implements [SessionStore]. It looks at every session:
// logouts are rare, requests are not, so nothing is indexed for it.
func (s *MemoryStore) DeleteSessionsOf(_ context.Context, sid, subject string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.m {
		if ownedBy(v.owner, sid, subject) {
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

// ownedBy reports whether a session of owner is one that a logout naming
// sid and subject ends (see [SessionStore.DeleteSessionsOf]).
func ownedBy(owner SessionOwner, sid, subject string) bool {
	switch {
	case sid != "":
		return owner.SID == sid || (subject != "" && owner.SID == "" && owner.Subject == subject)
	default:
		return subject != "" && owner.Subject == subject
	}
}

func (s *MemoryStore) max() int {
	if s.Max > 0 {
		return s.Max
	}
	return 100_000
}

// evict makes room for one session: every expired one goes, and if none
// had, the one that would expire first.
func (s *MemoryStore) evict(now time.Time) {
	var (
		first   [32]byte
		firstAt time.Time
		dropped bool
	)
	for k, v := range s.m {
		switch {
		case !now.Before(v.expires):
			delete(s.m, k)
			dropped = true
		case firstAt.IsZero() || v.expires.Before(firstAt):
			first, firstAt = k, v.expires
		}
	}
	if !dropped && !firstAt.IsZero() {
		delete(s.m, first)
	}
}

// LoadSession returns the session kept under id, or [ErrNoSession].
func (s *MemoryStore) LoadSession(_ context.Context, id string) ([]byte, error) {
	now := s.now()
	k := s.key(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return nil, ErrNoSession
	}
	if !now.Before(v.expires) {
		delete(s.m, k)
		return nil, ErrNoSession
	}
	return v.data, nil
}

// DeleteSession forgets the session kept under id.
func (s *MemoryStore) DeleteSession(_ context.Context, id string) error {
	k := s.key(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

// Len reports how many sessions it holds, expired ones included until they
// are dropped.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

var _ SessionStore = (*MemoryStore)(nil)
