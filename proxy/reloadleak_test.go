package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

// TestReloadsCloseTheirConnections reloads twenty times a gateway whose
// built-in issuer keeps its store in Redis and whose login keeps sessions
// there too, with traffic on both between reloads. Each reload replaces
// the issuer (its access_token_ttl changes); a replaced configuration
// closes what it alone opened once its requests are done, so the clients
// connected to redis-server (CLIENT LIST) come back to where they started.
// Between them, a reload that validates but cannot be built (an upstream
// CA file with no certificate in it, read after the new issuer's store is
// made) is refused: the running configuration keeps serving, on the same
// connections.
func TestReloadsCloseTheirConnections(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	up := upstream(t)
	badCA := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(badCA, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badRoute := fmt.Sprintf("  - name: bad-ca\n    path_prefix: /bad\n    upstream: https://127.0.0.1:1\n    upstream_ca_file: %q\n    auth: public\n", badCA)
	yml := func(base string, ttl int, routes ...string) string {
		s := fmt.Sprintf(testgw.Login{Routes: strings.Join(routes, "")}.YAML(), base, up, testgw.AliceHash())
		s = strings.Replace(s, "issuer:\n  url: ", fmt.Sprintf("issuer:\n  store: %q\n  access_token_ttl: %dm\n  url: ", redisURL, ttl), 1)
		return strings.Replace(s, "login:\n", "login:\n  session_store: redis\n", 1)
	}
	var base string
	g := testgw.Start(t, testgw.Options{Logger: slog.New(slog.DiscardHandler), Config: func(b string) string {
		base = b
		return yml(b, 15)
	}})
	admin := redis.NewClient(mustParseRedis(t, redisURL))
	t.Cleanup(func() { admin.Close() })
	clients := func() int {
		t.Helper()
		list, err := admin.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(strings.TrimSpace(list), "\n") + 1
	}
	b := newBrowser(t)
	traffic := func() {
		t.Helper()
		// A page with the session (read from Redis) and /readyz (which
		// asks the issuer's store).
		if res, _ := b.visit(base, base+"/"); res.StatusCode != 200 {
			t.Fatalf("signed-in page: %d", res.StatusCode)
		}
		rec := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != 200 {
			t.Fatalf("readyz: %d %s", rec.Code, rec.Body)
		}
	}
	traffic()
	start := clients()
	for i := range 20 {
		cfg, err := config.Parse("gateway.yaml", []byte(yml(base, 16+i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		traffic()
		if n := clients(); n > start {
			t.Errorf("after reload %d: %d redis-server clients, %d before", i+1, n, start)
		}
		bad, err := config.Parse("gateway.yaml", []byte(yml(base, 100+i, badRoute)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(bad); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
			t.Fatalf("reload with a CA file holding no certificate: %v", err)
		}
		traffic()
		if n := clients(); n > start {
			t.Errorf("after refused reload %d: %d redis-server clients, %d before", i+1, n, start)
		}
	}
	if end := clients(); end > start {
		t.Errorf("redis-server has %d clients after 20 reloads, %d before: replaced configurations leave connections open", end, start)
	} else {
		t.Logf("redis-server clients: %d before, %d after 20 reloads", start, end)
	}
}

func mustParseRedis(t *testing.T, u string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
