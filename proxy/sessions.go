package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/oidcclient"
)

// redisSessions keeps the gateway's browser sessions in Redis, so cookies
// stay small and signing out revokes the session everywhere. Keys are the
// SHA-256 of the session id (reading Redis does not let anyone sign in),
// and every key expires with its session.
type redisSessions struct {
	client *redis.Client
	prefix string
	url    string // as configured: a reload to the same URL keeps the client
}

func newRedisSessions(rawURL string) (*redisSessions, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("proxy: login.session_store: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = 1
	return &redisSessions{client: redis.NewClient(opt), prefix: "portcullis:gwsession:", url: rawURL}, nil
}

func (s *redisSessions) key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.prefix + hex.EncodeToString(sum[:])
}

func (s *redisSessions) SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.key(id), data, ttl).Err(); err != nil {
		return fmt.Errorf("proxy: session store: %w", err)
	}
	return nil
}

func (s *redisSessions) LoadSession(ctx context.Context, id string) ([]byte, error) {
	b, err := s.client.Get(ctx, s.key(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, oidcclient.ErrNoSession
	case err != nil:
		return nil, fmt.Errorf("proxy: session store: %w", err)
	}
	return b, nil
}

func (s *redisSessions) DeleteSession(ctx context.Context, id string) error {
	if err := s.client.Del(ctx, s.key(id)).Err(); err != nil {
		return fmt.Errorf("proxy: session store: %w", err)
	}
	return nil
}

// ping reports whether Redis answers (for /readyz).
func (s *redisSessions) ping(ctx context.Context) error { return s.client.Ping(ctx).Err() }

var _ oidcclient.SessionStore = (*redisSessions)(nil)
