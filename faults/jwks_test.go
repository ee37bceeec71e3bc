package faults_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// fetchTimeout is the gateways' issuers[].jwks_fetch_timeout here.
const fetchTimeout = 500 * time.Millisecond

// jwksGateway is a gateway trusting idp, whose key set it fetches through
// l, with a short fetch timeout and refetch interval: from its jwks_uri,
// or, with discovery, from the jwks_uri of its discovery document (both
// fetched through l). now is the gateway's clock, nil for the real one.
func jwksGateway(t *testing.T, idp *testidp.Server, l *link, now func() time.Time, discovery bool) *testgw.Gateway {
	t.Helper()
	up := testgw.Upstream(t)
	o := testgw.Options{Now: now}
	jwksURI := fmt.Sprintf("    jwks_uri: \"http://%s/jwks\"\n", l.Addr)
	if discovery {
		o.HTTPClient, jwksURI = through(t, idp.URL, l.Addr), ""
	}
	o.Config = func(base string) string {
		return testgw.ServerSection("127.0.0.1:0", base, "") + fmt.Sprintf(`issuers:
  - issuer: %q
%s    audiences: [api]
    algorithms: [ES256]
    jwks_fetch_timeout: %s
    jwks_refetch_interval: 1s
routes:
  - name: app
    path_prefix: /
    upstream: %q
`, idp.Issuer, jwksURI, fetchTimeout, up)
	}
	return testgw.Start(t, o)
}

// get sends a GET with the bearer token and returns the status and how
// long the answer took.
func get(t *testing.T, u, token string) (int, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	res.Body.Close()
	return res.StatusCode, time.Since(start)
}

// eventually repeats f until it reports true or d has passed (bounded
// waiting for the gateway's background retries, which run on real timers).
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tick.C
	}
}

// Every toxic on the key set endpoint (jwks_uri, or discovery and the
// jwks_uri it names) while the gateway starts: either the keys load
// despite it, or requests fail with 503 — the first within the fetch
// timeout, every later one at once — and the keys load once the toxic is
// gone.
func TestJWKSFaultsAtStartup(t *testing.T) {
	cases := []struct {
		name, typ string
		attrs     map[string]any
		loads     bool
	}{
		{"latency 100ms", "latency", map[string]any{"latency": 100}, true},
		{"latency 2s", "latency", map[string]any{"latency": 2000}, false},
		{"latency 30s", "latency", map[string]any{"latency": 30000}, false},
		{"bandwidth 1KB/s", "bandwidth", map[string]any{"rate": 1}, false},
		{"slicer", "slicer", map[string]any{"average_size": 16, "size_variation": 8, "delay": 100}, true},
		{"limit_data", "limit_data", map[string]any{"bytes": 300}, false},
		{"reset_peer", "reset_peer", map[string]any{"timeout": 0}, false},
		{"black hole", "timeout", map[string]any{"timeout": 0}, false},
	}
	for _, mode := range []string{"jwks_uri", "discovery"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				jwksStartup(t, tc.typ, tc.attrs, tc.loads, mode == "discovery")
			})
		}
	}
}

// jwksStartup starts a gateway with the toxic typ (attrs) on its way to
// the issuer's keys (or discovery) and checks what TestJWKSFaultsAtStartup
// says: the keys load despite it, or 503 within the fetch timeout, then at
// once, until the toxic is gone.
func jwksStartup(t *testing.T, typ string, attrs map[string]any, loads, discovery bool) {
	idp, keys := testgw.NewIssuer(t)
	l := newLink(t, "jwks", hostPort(t, idp.URL))
	remove := l.toxic(t, typ, "downstream", attrs)
	g := jwksGateway(t, idp, l, nil, discovery)
	tok := testidp.Mint(t, keys["ES256"], idp.Claims("alice", time.Now()), nil)

	st, took := get(t, g.URL+"/x", tok)
	if loads {
		if st != 200 {
			t.Fatalf("first request %d after %v, want 200", st, took)
		}
		return
	}
	if st != http.StatusServiceUnavailable || took > fetchTimeout+time.Second {
		t.Fatalf("first request %d after %v, want 503 within %v", st, took, fetchTimeout+time.Second)
	}
	// After the failed fetch, at once, also while the background
	// retries (1s, 2s, ...) are under way.
	for start := time.Now(); time.Since(start) < 2500*time.Millisecond; {
		if st, took := get(t, g.URL+"/x", tok); st != http.StatusServiceUnavailable || took > 200*time.Millisecond {
			t.Fatalf("later request %d after %v, want 503 at once", st, took)
		}
	}
	remove()
	eventually(t, 20*time.Second, "keys load after the toxic is gone", func() bool {
		st, _ := get(t, g.URL+"/x", tok)
		return st == 200
	})
}

// A refetch for an unknown kid that hangs on a slow issuer never delays
// requests whose keys are cached, and itself ends within the fetch
// timeout.
func TestJWKSSlowRefetchSparesCachedKeys(t *testing.T) {
	idp, keys := testgw.NewIssuer(t)
	l := newLink(t, "jwks", hostPort(t, idp.URL))
	clk := testclock.New(time.Now())
	g := jwksGateway(t, idp, l, clk.Now, false)
	tok := testidp.Mint(t, keys["ES256"], idp.Claims("alice", time.Now()), nil)
	if st, _ := get(t, g.URL+"/x", tok); st != 200 {
		t.Fatalf("warm-up: %d", st)
	}
	clk.Advance(2 * time.Second) // past jwks_refetch_interval
	l.toxic(t, "latency", "downstream", map[string]any{"latency": 2000})
	unknown := testidp.Mint(t, testidp.NewKey(t, "ES256", "k-rotated"), idp.Claims("bob", time.Now()), nil)
	hits := idp.JWKSHits()
	var wg sync.WaitGroup
	var st int
	var took time.Duration
	wg.Go(func() { st, took = get(t, g.URL+"/x", unknown) })
	eventually(t, 5*time.Second, "the refetch reaches the issuer", func() bool { return idp.JWKSHits() > hits })
	for range 20 {
		if st, took := get(t, g.URL+"/x", tok); st != 200 || took > 200*time.Millisecond {
			t.Fatalf("cached key during the refetch: %d after %v", st, took)
		}
	}
	wg.Wait()
	if st != http.StatusUnauthorized || took > fetchTimeout+time.Second {
		t.Errorf("unknown kid: %d after %v, want 401 within the fetch timeout", st, took)
	}
}

func hostPort(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}
