package issuer

import (
	"context"
	"errors"
	"slices"
	"time"
)

// The memory store's registered clients (see [ClientStore]).

// memNever is the expiry of a registered client that is kept until it is
// deleted: one that was used, or registered with no unused TTL.
var memNever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// memClient is a stored registered client.
type memClient struct {
	c    RegisteredClient
	used bool
}

// RegisterClient implements [Store]. It refuses an empty client ID. The
// limit counts live clients only (expired unused ones are swept first).
// Registered clients count against [MemoryConfig.MaxEntries] as a kind of
// their own, which refuses a registration beyond it with an error wrapping
// [ErrUnavailable].
func (m *MemoryStore) RegisterClient(_ context.Context, c RegisteredClient, max int, unusedTTL time.Duration) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if c.ID == "" {
		return errors.New("issuer: register client: empty client ID")
	}
	if _, ok := m.clients.get(now, c.ID); ok {
		return ErrExists
	}
	if max > 0 {
		m.clients.sweep(now)
		if len(m.clients.m) >= max {
			return ErrClientLimit
		}
	}
	exp := memNever
	if unusedTTL > 0 {
		exp = now.Add(unusedTTL)
	}
	return m.clients.set(now, c.ID, memClient{c: memCopyClient(c)}, exp)
}

// GetClient implements [Store]. The returned client is the caller's copy.
func (m *MemoryStore) GetClient(_ context.Context, id string) (RegisteredClient, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	e, ok := m.clients.get(now, id)
	if !ok {
		return RegisteredClient{}, ErrNotFound
	}
	return memCopyClient(e.val.c), nil
}

// UseClient implements [Store].
func (m *MemoryStore) UseClient(_ context.Context, id string) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	e, ok := m.clients.get(now, id)
	if !ok {
		return ErrNotFound
	}
	if !e.val.used {
		e.val.used = true
		m.clients.extend(e, memNever)
	}
	return nil
}

// DeleteClient implements [Store].
func (m *MemoryStore) DeleteClient(_ context.Context, id string) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	e, ok := m.clients.get(now, id)
	if !ok {
		return ErrNotFound
	}
	m.clients.remove(e)
	return nil
}

// memCopyClient returns c with its own slices.
func memCopyClient(c RegisteredClient) RegisteredClient {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = slices.Clone(c.Scopes)
	return c
}
