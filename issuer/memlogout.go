package issuer

import (
	"context"
	"errors"
	"slices"
	"time"
)

// The memory store's side of logout: who took part in a session, and
// ending a subject's sessions and refresh-token families. The indexes
// these read are kept by the methods in memstore.go.

// JoinSession implements [Store]. The clients recorded are bounded by the
// number of distinct client IDs callers pass, the registered clients.
func (m *MemoryStore) JoinSession(_ context.Context, id, clientID string) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if clientID == "" {
		return errors.New("issuer: join session: empty client ID")
	}
	e, ok := m.sessions.get(now, hashToken(id))
	if !ok {
		return ErrNotFound
	}
	if !slices.Contains(e.val.clients, clientID) {
		e.val.clients = append(e.val.clients, clientID)
	}
	return nil
}

// EndSession implements [Store].
func (m *MemoryStore) EndSession(_ context.Context, idHash string) (Session, []string, error) {
	now := m.lockWrite()
	defer m.mu.Unlock()
	e, ok := m.sessions.get(now, idHash)
	if !ok {
		return Session{}, nil, ErrNotFound
	}
	m.sessions.remove(e)
	clients := slices.Clone(e.val.clients)
	slices.Sort(clients)
	return e.val.s, clients, nil
}

// SubjectSessions implements [Store]. The hashes come sorted.
func (m *MemoryStore) SubjectSessions(_ context.Context, subject string) ([]string, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	var out []string
	for _, h := range m.subjectSessions.members(subject) {
		if _, ok := m.sessions.get(now, h); ok { // removes an expired one
			out = append(out, h)
		}
	}
	return out, nil
}

// RevokeSubjectFamilies implements [Store]. The families come sorted by
// ID.
func (m *MemoryStore) RevokeSubjectFamilies(_ context.Context, subject string) ([]RevokedFamily, error) {
	now := m.lockWrite()
	defer m.mu.Unlock()
	return m.revokeIndexed(now, m.subjectFamilies, subject), nil
}

// RevokeSessionFamilies implements [Store]. The families come sorted by
// ID.
func (m *MemoryStore) RevokeSessionFamilies(_ context.Context, idHash string) ([]RevokedFamily, error) {
	now := m.lockWrite()
	defer m.mu.Unlock()
	return m.revokeIndexed(now, m.sessionFamilies, idHash), nil
}

// revokeIndexed revokes the live families idx lists under key that are
// not revoked yet, and returns them. Like RevokeFamily it needs no room:
// the access tokens recorded with a family are denied through it.
func (m *MemoryStore) revokeIndexed(now time.Time, idx memIndex, key string) []RevokedFamily {
	var out []RevokedFamily
	for _, id := range idx.members(key) {
		f, ok := m.families.get(now, id) // removes an expired one
		if !ok || f.val.revoked {
			continue
		}
		f.val.revoked = true
		out = append(out, RevokedFamily{ID: id, ClientID: f.val.client, Subject: f.val.subject, SessionHash: f.val.session})
	}
	return out
}

// memSession is a stored session and the clients that took part in it.
type memSession struct {
	s       Session
	clients []string
}

// memIndex maps a key (a subject, a session ID hash) to the set of entries
// (session ID hashes, family IDs) that name it. The caller serialises
// access and removes every member whose entry goes away, so an index holds
// no more than the entries it names.
type memIndex map[string]map[string]struct{}

// add puts member in key's set; an empty key is not indexed.
func (x memIndex) add(key, member string) {
	if key == "" {
		return
	}
	set := x[key]
	if set == nil {
		set = map[string]struct{}{}
		x[key] = set
	}
	set[member] = struct{}{}
}

// remove takes member out of key's set, dropping a set left empty.
func (x memIndex) remove(key, member string) {
	set := x[key]
	delete(set, member)
	if len(set) == 0 {
		delete(x, key)
	}
}

// members returns key's members, sorted.
func (x memIndex) members(key string) []string {
	out := make([]string, 0, len(x[key]))
	for k := range x[key] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
