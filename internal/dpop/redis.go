package dpop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisReplay is a [ReplayCache] in Redis, shared by replicas: a proof
// used at one is refused at every other. Each proof is a key
// portcullis:dpop:<hash> set with NX until its window ends.
type RedisReplay struct {
	rdb *redis.Client
	now func() time.Time
}

// NewRedisReplay connects to the Redis at rawURL (redis:// or rediss://)
// lazily; now is the clock (nil: time.Now).
func NewRedisReplay(rawURL string, now func() time.Time) (*RedisReplay, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dpop: replay store: %w", err)
	}
	opt.ReadTimeout, opt.WriteTimeout, opt.DialTimeout = time.Second, time.Second, 2*time.Second
	if now == nil {
		now = time.Now
	}
	return &RedisReplay{rdb: redis.NewClient(opt), now: now}, nil
}

// Seen implements [ReplayCache].
func (r *RedisReplay) Seen(ctx context.Context, key string, expiry time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(key))
	ttl := expiry.Sub(r.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	ok, err := r.rdb.SetNX(ctx, "portcullis:dpop:"+base64.RawURLEncoding.EncodeToString(sum[:]), 1, ttl).Result()
	if err != nil {
		return false, err
	}
	return !ok, nil
}

// Close closes the connection pool.
func (r *RedisReplay) Close() error { return r.rdb.Close() }
