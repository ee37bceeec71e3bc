package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The Redis store's registered clients (see [ClientStore]). A client is
// the hash under "client:" and its ID; the index "clients:all" is a sorted
// set of every client's ID, scored by the end of its unused TTL in Unix
// milliseconds on the store's clock (+inf once used or without one), which
// RegisterClient prunes and counts for the limit. An unused client's hash
// holds that end as "until" and has a matching Redis TTL, so reads decide
// with the store's clock and the TTL only removes dead data.

// clientKey is the key of a registered client.
func (s *RedisStore) clientKey(id string) string { return s.key("client", id) }

// clientIndex is the key of the index of all registered clients.
func (s *RedisStore) clientIndex() string { return s.key("clients", "all") }

// RegisterClient implements [Store]. It refuses an empty client ID. A
// registration that stores exactly the client already stored under its ID
// is taken for this registration's retry and succeeds again: the ID and
// IssuedAt come from the caller, so no one else stores an identical client.
func (s *RedisStore) RegisterClient(ctx context.Context, c RegisteredClient, max int, unusedTTL time.Duration) error {
	if c.ID == "" {
		return errors.New("issuer: register client: empty client ID")
	}
	now := s.now()
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("issuer: register client: %w", err)
	}
	until := ""
	if unusedTTL > 0 {
		until = fmt.Sprint(redisMs(now.Add(unusedTTL)))
	}
	st, err := s.status(ctx, "register client", redisRegisterClient,
		[]string{s.clientKey(c.ID), s.clientIndex()},
		redisMs(now), v, until, max, s.clientKey(""), c.ID)
	switch {
	case err != nil:
		return err
	case st == "exists":
		return ErrExists
	case st == "limit":
		return ErrClientLimit
	}
	return nil
}

// GetClient implements [Store].
func (s *RedisStore) GetClient(ctx context.Context, id string) (RegisteredClient, error) {
	const op = "get client"
	var f []any
	err := s.do(ctx, op, func(ctx context.Context) (err error) {
		f, err = s.rdb.HMGet(ctx, s.clientKey(id), "v", "until").Result()
		return err
	})
	if err != nil {
		return RegisteredClient{}, err
	}
	str, ok := f[0].(string)
	if !ok || (f[1] != nil && !s.live(f[1])) {
		return RegisteredClient{}, ErrNotFound
	}
	var c RegisteredClient
	if err := json.Unmarshal([]byte(str), &c); err != nil {
		return RegisteredClient{}, fmt.Errorf("issuer: %s: redis store: bad value: %w", op, err)
	}
	return c, nil
}

// UseClient implements [Store]. For a client used before, it only reads.
func (s *RedisStore) UseClient(ctx context.Context, id string) error {
	st, err := s.status(ctx, "use client", redisUseClient,
		[]string{s.clientKey(id), s.clientIndex()}, redisMs(s.now()), id)
	if err == nil && st == "notfound" {
		err = ErrNotFound
	}
	return err
}

// DeleteClient implements [Store].
func (s *RedisStore) DeleteClient(ctx context.Context, id string) error {
	st, err := s.status(ctx, "delete client", redisDeleteClient,
		[]string{s.clientKey(id), s.clientIndex()}, redisMs(s.now()), id)
	if err == nil && st == "notfound" {
		err = ErrNotFound
	}
	return err
}
