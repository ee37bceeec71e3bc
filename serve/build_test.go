package serve

import (
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

func TestAuthnConfigTokenCache(t *testing.T) {
	c := &config.Config{}
	c.Server.TokenCache = config.TokenCache{Entries: 5, Bytes: 1 << 20, MaxAge: config.Duration(time.Minute)}
	if ac := authnConfig(c, nil, nil); ac.CacheEntries != 5 || ac.CacheBytes != 1<<20 || ac.CacheMaxAge != time.Minute {
		t.Fatalf("token_cache not passed on: %+v", ac)
	}
	c.Server.TokenCache.Entries = 0
	if ac := authnConfig(c, nil, nil); ac.CacheEntries >= 0 {
		t.Fatalf("entries: 0 did not turn the cache off: %d", ac.CacheEntries)
	}
}

func TestSessionCacheEntries(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, -1}, {1, 1}, {10000, 10000}} {
		if got := sessionCacheEntries(config.SessionCache{Entries: c.in}); got != c.want {
			t.Errorf("login.session_cache.entries %d: oidcclient gets %d, want %d", c.in, got, c.want)
		}
	}
}
