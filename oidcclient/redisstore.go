package oidcclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is a [SessionStore] in Redis, so cookies stay small, replicas
// share sessions and signing out revokes the session everywhere. Keys are
// the SHA-256 of the session id (reading Redis does not let anyone sign
// in), and every key expires with its session.
type RedisStore struct {
	client *redis.Client
	prefix string
	url    string
}

// NewRedisStore connects (lazily) to the Redis at rawURL,
// redis://[user:password@]host[:port][/db] or rediss:// for TLS. Errors
// never repeat the URL, which may hold a password.
func NewRedisStore(rawURL string) (*RedisStore, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("oidcclient: session store: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = 1
	return &RedisStore{client: redis.NewClient(opt), prefix: "portcullis:gwsession:", url: rawURL}, nil
}

// URL is the URL the store was made with.
func (s *RedisStore) URL() string { return s.url }

func (s *RedisStore) key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.prefix + hex.EncodeToString(sum[:])
}

// SaveSession implements [SessionStore].
func (s *RedisStore) SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.key(id), data, ttl).Err(); err != nil {
		return fmt.Errorf("oidcclient: session store: %w", err)
	}
	return nil
}

// LoadSession implements [SessionStore].
func (s *RedisStore) LoadSession(ctx context.Context, id string) ([]byte, error) {
	b, err := s.client.Get(ctx, s.key(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, ErrNoSession
	case err != nil:
		return nil, fmt.Errorf("oidcclient: session store: %w", err)
	}
	return b, nil
}

// DeleteSession implements [SessionStore].
func (s *RedisStore) DeleteSession(ctx context.Context, id string) error {
	if err := s.client.Del(ctx, s.key(id)).Err(); err != nil {
		return fmt.Errorf("oidcclient: session store: %w", err)
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *RedisStore) Ping(ctx context.Context) error { return s.client.Ping(ctx).Err() }

// Close closes the store's connections.
func (s *RedisStore) Close() error { return s.client.Close() }

var _ SessionStore = (*RedisStore)(nil)
