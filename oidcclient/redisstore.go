package oidcclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/portcullis-dev/portcullis/internal/redistrace"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// RedisStore is a [SessionStore] in Redis, so cookies stay small, replicas
// share sessions and signing out revokes the session everywhere. Keys are
// the SHA-256 of the session id (reading Redis does not let anyone sign
// in), and every key expires with its session.
type RedisStore struct {
	client *redis.Client
	root   string // of every key
	prefix string // of session keys
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
	return &RedisStore{client: redis.NewClient(opt), root: "portcullis:", prefix: "portcullis:gwsession:", url: rawURL}, nil
}

// Trace gives the store's commands in traced requests client spans; call
// it before the store is used.
func (s *RedisStore) Trace(t trace.Tracer) {
	s.client.AddHook(redistrace.Hook(t, s.client.Options().Addr))
}

// URL is the URL the store was made with.
func (s *RedisStore) URL() string { return s.url }

func (s *RedisStore) key(id string) string {
	sum := sha256.Sum256([]byte(id))
	return s.prefix + hex.EncodeToString(sum[:])
}

// hashed is the hex SHA-256 of v: what keys are named by, so that reading
// Redis yields no session id, sid or subject.
func hashed(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// ownerKeys are the index sets a session of owner is filed in: by sid,
// by subject, and by subject for sessions without a sid.
func (s *RedisStore) ownerKeys(owner SessionOwner) []string {
	var keys []string
	if owner.SID != "" {
		keys = append(keys, s.root+"gwsid:"+hashed(owner.SID))
	} else if owner.Subject != "" {
		keys = append(keys, s.root+"gwnosid:"+hashed(owner.Subject))
	}
	if owner.Subject != "" {
		keys = append(keys, s.root+"gwsub:"+hashed(owner.Subject))
	}
	return keys
}

// SaveSession implements [SessionStore]. The session's key joins its
// owner's index sets, which live as long as their longest-lived session.
func (s *RedisStore) SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration, owner SessionOwner) error {
	key := s.key(id)
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, data, ttl)
		for _, idx := range s.ownerKeys(owner) {
			p.SAdd(ctx, idx, key)
			p.Do(ctx, "PEXPIRE", idx, ttl.Milliseconds(), "NX")
			p.Do(ctx, "PEXPIRE", idx, ttl.Milliseconds(), "GT")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("oidcclient: session store: %w", err)
	}
	return nil
}

// UpdateSession implements [SessionStore]: the write happens only if the
// session is still there.
func (s *RedisStore) UpdateSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	ok, err := s.client.SetXX(ctx, s.key(id), data, ttl).Result()
	if err != nil {
		return fmt.Errorf("oidcclient: session store: %w", err)
	}
	if !ok {
		return ErrNoSession
	}
	return nil
}

// deleteIndexed deletes every key listed in the index sets KEYS, and the
// sets; it returns how many sessions it deleted.
var deleteIndexed = redis.NewScript(`
local n = 0
for _, idx in ipairs(KEYS) do
  for _, k in ipairs(redis.call('SMEMBERS', idx)) do
    n = n + redis.call('DEL', k)
  end
  redis.call('DEL', idx)
end
return n`)

// DeleteSessionsOf implements [SessionStore], atomically.
func (s *RedisStore) DeleteSessionsOf(ctx context.Context, sid, subject string) (int, error) {
	var keys []string
	switch {
	case sid != "":
		keys = append(keys, s.root+"gwsid:"+hashed(sid))
		if subject != "" {
			keys = append(keys, s.root+"gwnosid:"+hashed(subject))
		}
	case subject != "":
		keys = append(keys, s.root+"gwsub:"+hashed(subject))
	default:
		return 0, nil
	}
	n, err := deleteIndexed.Run(ctx, s.client, keys).Int()
	if err != nil {
		return 0, fmt.Errorf("oidcclient: session store: %w", err)
	}
	return n, nil
}

// RecordLogout implements [LogoutStore]: a key per sid or subject, holding
// the time of the logout and expiring when no session it matches can be
// alive.
func (s *RedisStore) RecordLogout(ctx context.Context, sid, subject string, at time.Time, ttl time.Duration) error {
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		v := strconv.FormatInt(at.UnixMilli(), 10)
		switch {
		case sid != "":
			p.Set(ctx, s.root+"gwlogout:sid:"+hashed(sid), v, ttl)
			if subject != "" {
				p.Set(ctx, s.root+"gwlogout:nosid:"+hashed(subject), v, ttl)
			}
		case subject != "":
			p.Set(ctx, s.root+"gwlogout:sub:"+hashed(subject), v, ttl)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("oidcclient: logout store: %w", err)
	}
	return nil
}

// LoggedOut implements [LogoutStore] with one round trip.
func (s *RedisStore) LoggedOut(ctx context.Context, sid, subject string, started time.Time) (bool, error) {
	first := s.root + "gwlogout:nosid:" + hashed(subject)
	if sid != "" {
		first = s.root + "gwlogout:sid:" + hashed(sid)
	}
	vs, err := s.client.MGet(ctx, first, s.root+"gwlogout:sub:"+hashed(subject)).Result()
	if err != nil {
		return false, fmt.Errorf("oidcclient: logout store: %w", err)
	}
	for i, v := range vs {
		str, ok := v.(string)
		if !ok {
			continue
		}
		if i == 0 && sid != "" {
			return true, nil
		}
		ms, err := strconv.ParseInt(str, 10, 64)
		if err != nil || !started.After(time.UnixMilli(ms)) {
			return true, nil
		}
	}
	return false, nil
}

// FirstUse implements [LogoutStore].
func (s *RedisStore) FirstUse(ctx context.Context, jti string, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.root+"gwlogout:jti:"+hashed(jti), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("oidcclient: logout store: %w", err)
	}
	return ok, nil
}

// ForgetUse forgets a jti recorded by FirstUse.
func (s *RedisStore) ForgetUse(ctx context.Context, jti string) error {
	return s.client.Del(ctx, s.root+"gwlogout:jti:"+hashed(jti)).Err()
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

var (
	_ SessionStore = (*RedisStore)(nil)
	_ LogoutStore  = (*RedisStore)(nil)
)
