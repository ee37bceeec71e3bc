package proxy_test

import (
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
