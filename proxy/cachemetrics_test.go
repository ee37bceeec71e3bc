package proxy_test

import (
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestTokenCacheMetrics: a token is cached on its second verification, so
// three requests with it are three lookups, one hit and one entry.
func TestTokenCacheMetrics(t *testing.T) {
	e := newEnv(t, "")
	tok := e.mint("ES256", e.claims("alice"), nil)
	for range 3 {
		e.echo(e.do("GET", "/", tok, nil))
	}
	_, body := e.getAdmin("/metrics")
	for _, want := range []string{
		`portcullis_cache_lookups_total{cache="token"} 3`,
		`portcullis_cache_hits_total{cache="token"} 1`,
		`portcullis_cache_entries{cache="token"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(body, `portcullis_cache_bytes{cache="token"} `) || strings.Contains(body, `portcullis_cache_bytes{cache="token"} 0`+"\n") {
		t.Error("token cache bytes not reported")
	}
	if strings.Contains(body, `cache="session"`) {
		t.Error("session cache reported without browser login")
	}
}

// TestSessionCacheMetrics: the first request with a new session cookie
// decodes it, the next ones find it cached.
func TestSessionCacheMetrics(t *testing.T) {
	e := newLoginEnv(t)
	b := newBrowser(t)
	if res, _ := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	before := sessionCacheMetrics(t, e)
	for range 2 {
		if res, _ := b.do("GET", e.base+"/again", nil, nil); res.StatusCode != 200 {
			t.Fatalf("with the session: %d", res.StatusCode)
		}
	}
	after := sessionCacheMetrics(t, e)
	if after["entries"] != 1 || after["lookups"]-before["lookups"] != 2 || after["hits"]-before["hits"] != 2 {
		t.Errorf("session cache before %v, after two visits %v", before, after)
	}
}

// sessionCacheMetrics scrapes the session cache's metrics.
func sessionCacheMetrics(t *testing.T, e *loginEnv) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	e.gw.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	for _, name := range []string{"entries", "lookups", "hits"} {
		metric := "portcullis_cache_" + name
		if name != "entries" {
			metric += "_total"
		}
		prefix := metric + `{cache="session"} `
		i := strings.Index(rec.Body.String(), prefix)
		if i < 0 {
			t.Fatalf("metrics lack %s", prefix)
		}
		line, _, _ := strings.Cut(rec.Body.String()[i+len(prefix):], "\n")
		v, err := strconv.ParseFloat(line, 64)
		if err != nil {
			t.Fatalf("%s%s: %v", prefix, line, err)
		}
		out[name] = v
	}
	return out
}

// TestSessionCacheOff: login.session_cache.entries 0 turns the cache off.
func TestSessionCacheOff(t *testing.T) {
	e := newLoginEnvWith(t, func(yml string) string {
		return strings.Replace(yml, "\n  cookie: {", "\n  session_cache: {entries: 0}\n  cookie: {", 1)
	})
	b := newBrowser(t)
	for range 3 {
		if res, _ := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 {
			t.Fatalf("visit: %d", res.StatusCode)
		}
	}
	if m := sessionCacheMetrics(t, e); m["entries"] != 0 || m["lookups"] != 0 || m["hits"] != 0 {
		t.Errorf("session cache used while off: %v", m)
	}
}
