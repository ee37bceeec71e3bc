package proxy_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

// client returns a client that keeps one connection to the gateway.
func oneConnClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
}

func (e *env) status(c *http.Client, token string) int {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.url+"/", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body) // so the connection is reused
	res.Body.Close()
	return res.StatusCode
}

// TestFailedAuthenticationSlowsTheConnectionDown: a connection that keeps
// sending bad tokens gets its answers later and later; a success resets it;
// other connections and requests without a token are never slowed.
func TestFailedAuthenticationSlowsTheConnectionDown(t *testing.T) {
	e := newEnv(t, "")
	good := e.mint("RS256", e.claims("alice"), nil)
	bad := good[:len(good)-4] + "AAAA" // signature broken
	garbage := "not.a.token"
	flood := oneConnClient()
	ms := time.Millisecond

	for range 8 {
		if s := e.status(flood, bad); s != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", s)
		}
	}
	if d := e.sleeps.take(); len(d) != 0 {
		t.Fatalf("the first 8 failures were delayed: %v", d)
	}
	for range 8 {
		e.status(flood, garbage)
	}
	want := []time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}
	if d := e.sleeps.take(); !slices.Equal(d, want) {
		t.Fatalf("delays %v, want %v", d, want)
	}

	// Valid traffic on its own connection, and requests without a token,
	// are answered at once while the flooding connection is slowed.
	other := oneConnClient()
	for range 20 {
		if s := e.status(other, good); s != http.StatusOK {
			t.Fatalf("valid request: status %d", s)
		}
		e.status(other, "")
	}
	if d := e.sleeps.take(); len(d) != 0 {
		t.Fatalf("valid traffic or missing tokens were delayed: %v", d)
	}

	// One success on the flooding connection starts it afresh.
	if s := e.status(flood, good); s != http.StatusOK {
		t.Fatalf("status %d", s)
	}
	for range 9 {
		e.status(flood, bad)
	}
	if d := e.sleeps.take(); !slices.Equal(d, []time.Duration{25 * ms}) {
		t.Fatalf("after a success: delays %v, want [25ms]", d)
	}
	if _, body := e.getAdmin("/metrics"); !strings.Contains(body, "portcullis_auth_failure_delays_total 9") {
		t.Fatal("portcullis_auth_failure_delays_total is not 9")
	}
}

func TestFailedAuthenticationDelayOff(t *testing.T) {
	for name, server := range map[string]string{
		"auth_failure_delay 0s": "  auth_failure_delay: 0s\n",
		// A trusted proxy's connection carries everyone's requests.
		"trusted proxy": "  trusted_proxies: [127.0.0.1]\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, "")
			yml := strings.Replace(e.yml, "  trusted_proxies: [10.99.0.0/16]\n", "", 1)
			yml = strings.Replace(yml, "server:\n", "server:\n"+server, 1)
			cfg, err := config.Parse("test.yaml", []byte(yml), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			if err := e.gw.Reload(cfg); err != nil {
				t.Fatal(err)
			}
			flood := oneConnClient()
			for range 20 {
				e.status(flood, "not.a.token")
			}
			if d := e.sleeps.take(); len(d) != 0 {
				t.Fatalf("still delayed: %v", d)
			}
		})
	}
}
