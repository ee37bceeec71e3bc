package issuer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/issuer/storetest"
)

// redisStore returns a store on the Redis at url whose keys start with
// prefix, closed when the test ends.
func redisStore(t *testing.T, url, prefix string, now func() time.Time, log *slog.Logger) *issuer.RedisStore {
	t.Helper()
	s, err := issuer.NewRedisStore(issuer.RedisConfig{URL: url, Prefix: prefix, Now: now, Logger: log})
	if err != nil {
		t.Fatalf("NewRedisStore: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRedisStore(t *testing.T) {
	url, _, _ := testredis.Start(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) issuer.Store {
		// Subtests share the server; each has its own keys.
		return redisStore(t, url, "test:"+t.Name()+":", now, nil)
	})
}

func TestRedisStoreKeysExpire(t *testing.T) {
	url, _, _ := testredis.Start(t)
	ctx := t.Context()
	c := storetest.NewClock(time.Now().Truncate(time.Second))
	s := redisStore(t, url, "ttl:", c.Now, nil)
	exp := c.Now().Add(time.Hour)
	const sid = "session-cookie-secret"

	memMust(t, s.SaveCode(ctx, "code-1", issuer.AuthCode{ClientID: "client-1", Expiry: c.Now().Add(time.Minute)}))
	_, err := s.RedeemCode(ctx, "code-1", issuer.Issued{FamilyID: "fam-1", AccessJTI: "jti-1"})
	memMust(t, err)
	rt := memRefresh(c, "fam-1")
	rt.SessionID = sid
	memMust(t, s.CreateRefresh(ctx, "rt-0", rt))
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-1", memRefresh(c, "fam-1"), "jti-2", exp)
	memMust(t, err)
	memMust(t, s.AddFamilyAccess(ctx, "fam-1", "jti-3", exp))
	memMust(t, s.RevokeFamily(ctx, "fam-unknown"))
	memMust(t, s.RevokeAccess(ctx, "jti-4", exp))
	memMust(t, s.SaveSession(ctx, sid, issuer.Session{Subject: "alice", Expiry: exp}))
	memMust(t, s.JoinSession(ctx, sid, "client-1"))
	memMust(t, s.SaveConsent(ctx, "alice", "client-1", []string{"openid"}, exp))
	if _, err := s.Hit(ctx, "login:alice", time.Minute); err != nil {
		t.Fatal(err)
	}

	rdb := redisClient(t, url)
	kinds := map[string]int{}
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if strings.Contains(key, sid) {
			t.Errorf("key %q holds the raw session ID", key)
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(key, "ttl:"), ":")
		kinds[kind]++
		ttl, err := rdb.PTTL(ctx, key).Result()
		memMust(t, err)
		if ttl <= 0 {
			t.Errorf("key %q has TTL %v, want one", key, ttl)
		}
	}
	memMust(t, iter.Err())
	want := map[string]int{"code": 1, "refresh": 2, "family": 2, "access": 2, "revoked": 1, "session": 1, "consent": 1, "hit": 1,
		"subject-sessions": 1, "subject-families": 1, "session-families": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("keys by kind = %v, want %v", kinds, want)
	}
}

// Two processes sharing one Redis redeem a code exactly once between them.
func TestRedisStoreRedeemAcrossStores(t *testing.T) {
	url, _, _ := testredis.Start(t)
	ctx := t.Context()
	c := storetest.NewClock(time.Now().Truncate(time.Second))
	stores := []*issuer.RedisStore{
		redisStore(t, url, "shared:", c.Now, nil),
		redisStore(t, url, "shared:", c.Now, nil),
	}
	memMust(t, stores[0].SaveCode(ctx, "code-1", issuer.AuthCode{ClientID: "client-1", Expiry: c.Now().Add(time.Minute)}))
	const n = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%2].RedeemCode(ctx, "code-1", issuer.Issued{AccessJTI: fmt.Sprint("jti-", i)})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, issuer.ErrCodeReused):
			t.Errorf("redemption %d: got %v, want %v", i, err, issuer.ErrCodeReused)
		}
	}
	if won != 1 {
		t.Errorf("%d redemptions succeeded, want 1", won)
	}
}

// While Redis is down every method fails with ErrUnavailable, promptly;
// once it is back the same store works again.
func TestRedisStoreUnavailable(t *testing.T) {
	url, stop, restart := testredis.Start(t)
	c := storetest.NewClock(time.Now().Truncate(time.Second))
	var logs bytes.Buffer
	s := redisStore(t, url, "down:", c.Now, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := t.Context()
	memMust(t, s.Ping(ctx)) // the pool now holds a connection that will break

	exp := c.Now().Add(time.Hour)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"SaveCode", func(ctx context.Context) error {
			return s.SaveCode(ctx, "code-1", issuer.AuthCode{ClientID: "client-1", Expiry: c.Now().Add(time.Minute)})
		}},
		{"RedeemCode", func(ctx context.Context) error {
			_, err := s.RedeemCode(ctx, "code-1", issuer.Issued{FamilyID: "fam-1", AccessJTI: "jti-1"})
			return err
		}},
		{"CreateRefresh", func(ctx context.Context) error { return s.CreateRefresh(ctx, "rt-0", memRefresh(c, "fam-1")) }},
		{"AddFamilyAccess", func(ctx context.Context) error { return s.AddFamilyAccess(ctx, "fam-1", "jti-2", exp) }},
		{"RotateRefresh", func(ctx context.Context) error {
			_, err := s.RotateRefresh(ctx, "rt-0", "rt-1", memRefresh(c, "fam-1"), "jti-3", exp)
			return err
		}},
		{"LookupRefresh", func(ctx context.Context) error { _, err := s.LookupRefresh(ctx, "rt-1"); return err }},
		{"RevokeFamily", func(ctx context.Context) error { return s.RevokeFamily(ctx, "fam-2") }},
		{"RevokeAccess", func(ctx context.Context) error { return s.RevokeAccess(ctx, "jti-4", exp) }},
		{"IsAccessRevoked", func(ctx context.Context) error { _, err := s.IsAccessRevoked(ctx, "jti-4"); return err }},
		{"SaveSession", func(ctx context.Context) error {
			return s.SaveSession(ctx, "sid-1", issuer.Session{Subject: "alice", Expiry: exp})
		}},
		{"GetSession", func(ctx context.Context) error { _, err := s.GetSession(ctx, "sid-1"); return err }},
		{"DeleteSession", func(ctx context.Context) error { return s.DeleteSession(ctx, "sid-2") }},
		{"SaveConsent", func(ctx context.Context) error {
			return s.SaveConsent(ctx, "alice", "client-1", []string{"openid"}, exp)
		}},
		{"GetConsent", func(ctx context.Context) error { _, err := s.GetConsent(ctx, "alice", "client-1"); return err }},
		{"Hit", func(ctx context.Context) error { _, err := s.Hit(ctx, "login:alice", time.Minute); return err }},
		{"Count", func(ctx context.Context) error { _, err := s.Count(ctx, "login:alice"); return err }},
		{"JoinSession", func(ctx context.Context) error { return s.JoinSession(ctx, "sid-1", "client-1") }},
		{"SubjectSessions", func(ctx context.Context) error { _, err := s.SubjectSessions(ctx, "alice"); return err }},
		{"EndSession", func(ctx context.Context) error {
			sum := sha256.Sum256([]byte("sid-1"))
			_, _, err := s.EndSession(ctx, base64.RawURLEncoding.EncodeToString(sum[:]))
			return err
		}},
		{"RevokeSessionFamilies", func(ctx context.Context) error {
			_, err := s.RevokeSessionFamilies(ctx, "session-hash")
			return err
		}},
		{"RevokeSubjectFamilies", func(ctx context.Context) error {
			_, err := s.RevokeSubjectFamilies(ctx, "alice")
			return err
		}},
		{"Ping", s.Ping},
	}

	stop()
	const bound = 6 * time.Second // the store's per-call timeout and then some
	var slowest time.Duration
	for _, tc := range calls {
		start := time.Now()
		err := tc.call(ctx)
		took := time.Since(start)
		if took > bound {
			t.Errorf("%s while Redis is down took %v, want at most %v", tc.name, took, bound)
		}
		slowest = max(slowest, took)
		if !errors.Is(err, issuer.ErrUnavailable) {
			t.Errorf("%s while Redis is down: got %v, want an error wrapping %v", tc.name, err, issuer.ErrUnavailable)
		}
	}

	t.Logf("slowest call while Redis was down: %v", slowest.Round(time.Millisecond))

	restart()
	// The client redials by itself; give it a bounded time to notice.
	start := time.Now()
	for err := s.Ping(ctx); err != nil; err = s.Ping(ctx) {
		if time.Since(start) > bound {
			t.Fatalf("Ping %v after Redis restarted: %v", bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("store reachable %v after Redis restarted", time.Since(start).Round(time.Millisecond))
	for _, tc := range calls { // in an order where each one succeeds
		if err := tc.call(ctx); err != nil {
			t.Errorf("%s after Redis restarted: %v", tc.name, err)
		}
	}
	if got := logs.String(); !strings.Contains(got, "redis store unreachable") || !strings.Contains(got, "reachable again") {
		t.Errorf("logs do not report the outage and the recovery:\n%s", got)
	}
}

// The client sends a script again when a connection drops before its reply;
// a decision repeated with the same arguments must not turn into a replay.
func TestRedisStoreRetriesAreIdempotent(t *testing.T) {
	url, _, _ := testredis.Start(t)
	ctx := t.Context()
	c := storetest.NewClock(time.Now().Truncate(time.Second))
	s := redisStore(t, url, "retry:", c.Now, nil)
	code := issuer.AuthCode{ClientID: "client-1", Expiry: c.Now().Add(time.Minute)}
	memMust(t, s.SaveCode(ctx, "code-1", code))
	memMust(t, s.SaveCode(ctx, "code-1", code))
	iss := issuer.Issued{FamilyID: "fam-1", AccessJTI: "jti-1"}
	for range 2 {
		got, err := s.RedeemCode(ctx, "code-1", iss)
		memMust(t, err)
		if got.Issued != iss {
			t.Errorf("Issued = %+v, want %+v", got.Issued, iss)
		}
	}
	if _, err := s.RedeemCode(ctx, "code-1", issuer.Issued{FamilyID: "fam-2", AccessJTI: "jti-2"}); !errors.Is(err, issuer.ErrCodeReused) {
		t.Errorf("another redemption: got %v, want %v", err, issuer.ErrCodeReused)
	}

	rt := memRefresh(c, "fam-1")
	memMust(t, s.CreateRefresh(ctx, "rt-0", rt))
	memMust(t, s.CreateRefresh(ctx, "rt-0", rt))
	for range 2 {
		_, err := s.RotateRefresh(ctx, "rt-0", "rt-1", memRefresh(c, "fam-1"), "jti-3", c.Now().Add(time.Minute))
		memMust(t, err)
	}
	if _, err := s.LookupRefresh(ctx, "rt-1"); err != nil {
		t.Errorf("token of a repeated rotation: %v", err)
	}
	// A different rotation of the old token is a reuse all the same.
	_, err := s.RotateRefresh(ctx, "rt-0", "rt-2", memRefresh(c, "fam-1"), "jti-4", c.Now().Add(time.Minute))
	if !errors.Is(err, issuer.ErrRefreshReused) {
		t.Errorf("another rotation of the old token: got %v, want %v", err, issuer.ErrRefreshReused)
	}
}

// A Redis that accepts connections and never answers costs a call the
// store's timeout, not the caller's patience.
func TestRedisStoreHung(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	memMust(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	s := redisStore(t, "redis://"+l.Addr().String()+"/0", "", nil, nil)
	start := time.Now()
	_, err = s.RedeemCode(t.Context(), "code-1", issuer.Issued{AccessJTI: "jti-1"})
	took := time.Since(start)
	if !errors.Is(err, issuer.ErrUnavailable) {
		t.Errorf("RedeemCode on a hung Redis: got %v, want an error wrapping %v", err, issuer.ErrUnavailable)
	}
	if took > 6*time.Second {
		t.Errorf("RedeemCode on a hung Redis took %v", took)
	}
	t.Logf("RedeemCode on a hung Redis failed after %v", took.Round(time.Millisecond))
}

func TestNewRedisStore(t *testing.T) {
	// A bad URL is refused without repeating its password.
	for _, url := range []string{"redis://:hunter2@localhost:port/0", "http://:hunter2@localhost/", "redis://:hunter2@localhost/x"} {
		_, err := issuer.NewRedisStore(issuer.RedisConfig{URL: url})
		if err == nil {
			t.Errorf("NewRedisStore(%q): no error", url)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewRedisStore: error %q shows the password", err)
		}
	}
	// Redis need not be up to build a store.
	s, err := issuer.NewRedisStore(issuer.RedisConfig{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatalf("NewRedisStore without a server: %v", err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, issuer.ErrUnavailable) {
		t.Errorf("Ping without a server: got %v, want an error wrapping %v", err, issuer.ErrUnavailable)
	}
}

// redisClient returns a plain client for inspecting the server.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	memMust(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
