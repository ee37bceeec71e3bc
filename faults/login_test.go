package faults_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/nodeidp"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// providerTimeout is the gateways' login.provider_timeout here.
const providerTimeout = time.Second

// loginGateway logs browsers in at the OpenID provider p, reaching it
// through l (the browser goes to p directly), and takes bearer tokens of
// idp; it serves on ln at public URL pub.
func loginGateway(t *testing.T, p *nodeidp.Provider, l *link, idp *testidp.Server, ln net.Listener, pub string) *testgw.Gateway {
	t.Helper()
	up := testgw.Upstream(t)
	return testgw.Start(t, testgw.Options{Listener: ln, Admin: true, HTTPClient: through(t, p.Issuer, l.Addr), Config: func(string) string {
		return fmt.Sprintf(`server: {listen: "127.0.0.1:0", public_url: %[1]q}
admin: {listen: off}
log: {level: warn}
issuers:
  - issuer: %[2]q
    audiences: [api]
    algorithms: [ES256]
  - issuer: %[3]q
    audiences: [portcullis]
    algorithms: [RS256]
    jwks_fetch_timeout: %[5]s
login:
  issuer: %[3]q
  client_id: portcullis
  client_secret: provider-client-secret-0123456789
  scopes: [openid, profile, email]
  cookie: {secret: %[4]q, secure: false}
  provider_timeout: %[5]s
routes:
  - name: app
    path_prefix: /
    upstream: %[6]q
    forward_headers: {X-Auth-Request-User: sub}
`, pub, idp.Issuer, p.Issuer, testgw.CookieSecret, providerTimeout, up)
	}})
}

// through is an HTTP client that reaches the host of target at addr
// instead: the gateway's own calls to the provider go through Toxiproxy.
func through(t *testing.T, target, addr string) *http.Client {
	host := hostPort(t, target)
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if a == host {
			a = addr
		}
		return d.DialContext(ctx, network, a)
	}}}
}

// bearerMeanwhile sends requests with token to u until stop is closed and
// then reports the slowest and whether every one was answered 200.
func bearerMeanwhile(u, token string, stop <-chan struct{}) (slowest func() (time.Duration, error)) {
	var wg sync.WaitGroup
	var worst time.Duration
	var failed error
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				if n == 0 {
					failed = fmt.Errorf("no request was sent")
				}
				return
			default:
			}
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			start := time.Now()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				failed = err
				return
			}
			res.Body.Close()
			worst = max(worst, time.Since(start))
			if res.StatusCode != 200 {
				failed = fmt.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	return func() (time.Duration, error) {
		wg.Wait()
		return worst, failed
	}
}

// Every toxic between the gateway and the OpenID provider of its login,
// at discovery (the first login) or at the code exchange (and the
// id_token's keys): the login either completes, or fails with a page
// within login.provider_timeout, while bearer requests are answered as
// before; with the toxic gone, the next login completes.
func TestLoginProviderFaults(t *testing.T) {
	cases := []struct {
		name, typ string
		attrs     map[string]any
		ok        bool
	}{
		{"latency 100ms", "latency", map[string]any{"latency": 100}, true},
		{"slicer", "slicer", map[string]any{"average_size": 64, "size_variation": 32, "delay": 10}, true},
		{"latency 2s", "latency", map[string]any{"latency": 2000}, false},
		{"latency 30s", "latency", map[string]any{"latency": 30000}, false},
		{"bandwidth 1KB/s", "bandwidth", map[string]any{"rate": 1}, false},
		{"limit_data", "limit_data", map[string]any{"bytes": 300}, false},
		{"reset_peer", "reset_peer", map[string]any{"timeout": 0}, false},
		{"black hole", "timeout", map[string]any{"timeout": 0}, false},
	}
	type run struct {
		name, phase string
		ln          net.Listener
		pub         string
	}
	var runs []run
	var redirects []string
	for _, phase := range []string{"discovery", "exchange"} {
		for _, tc := range cases {
			ln, pub := testgw.Listen(t)
			runs = append(runs, run{tc.name, phase, ln, pub})
			redirects = append(redirects, pub+"/oauth2/callback")
		}
	}
	p := nodeidp.Start(t, nodeidp.Client{ID: "portcullis", Secret: "provider-client-secret-0123456789", RedirectURIs: redirects})
	idp, keys := testgw.NewIssuer(t)
	tok := testidp.Mint(t, keys["ES256"], idp.Claims("alice", time.Now()), nil)

	for i, r := range runs {
		tc := cases[i%len(cases)]
		t.Run(r.phase+"/"+r.name, func(t *testing.T) {
			t.Parallel()
			l := newLink(t, "provider", hostPort(t, p.Issuer))
			g := loginGateway(t, p, l, idp, r.ln, r.pub)
			b := testgw.NewBrowser(t)
			// Both issuers' keys loaded (while a first fetch has failed,
			// the provider's id_tokens fail at once until a background
			// retry succeeds: TestJWKSFaultsAtStartup's case).
			eventually(t, 10*time.Second, "the keys load", func() bool {
				res, err := http.Get(g.AdminURL + "/readyz")
				if err != nil {
					return false
				}
				res.Body.Close()
				return res.StatusCode == 200
			})

			var remove func()
			if r.phase == "discovery" {
				remove = l.toxic(t, tc.typ, "downstream", tc.attrs)
			}
			stop := make(chan struct{})
			slowest := bearerMeanwhile(g.URL+"/api", tok, stop)
			start := time.Now()
			res, body := b.Do("GET", g.URL+"/oauth2/start?rd=/page", nil, nil)
			if r.phase == "exchange" {
				if res.StatusCode != http.StatusFound {
					t.Fatalf("start: %d %q", res.StatusCode, body)
				}
				remove = l.toxic(t, tc.typ, "downstream", tc.attrs)
				start = time.Now()
				res, body = p.SignIn(t, b, res.Header.Get("Location"), "alice")
			} else if res.StatusCode == http.StatusFound {
				res, body = p.SignIn(t, b, res.Header.Get("Location"), "alice")
			}
			took := time.Since(start)
			close(stop)
			if worst, err := slowest(); err != nil || worst > 500*time.Millisecond {
				t.Errorf("bearer requests during the login: slowest %v, %v; want each 200 at once", worst, err)
			}

			signedIn := res.StatusCode == 200 && strings.Contains(body, `"X-Auth-Request-User":["alice"]`)
			if tc.ok {
				if !signedIn {
					t.Fatalf("login: %d %q, want the page for alice", res.StatusCode, body)
				}
				return
			}
			wantStatus, wantTitle := http.StatusBadGateway, "Sign-in failed"
			if r.phase == "discovery" {
				wantStatus, wantTitle = http.StatusServiceUnavailable, "Sign-in unavailable"
			}
			if res.StatusCode != wantStatus || !strings.Contains(body, wantTitle) || took > providerTimeout+time.Second {
				t.Fatalf("login: %d after %v %q; want %d %q within %v", res.StatusCode, took, body, wantStatus, wantTitle, providerTimeout+time.Second)
			}
			t.Logf("login failed with %d %q after %v", res.StatusCode, wantTitle, took.Round(time.Millisecond))

			remove()
			if r.phase == "discovery" {
				return // a failed discovery is tried again on a login 10s later
			}
			res, _ = b.Do("GET", g.URL+"/oauth2/start?rd=/page", nil, nil)
			if res.StatusCode != http.StatusFound {
				t.Fatalf("start after the fault: %d", res.StatusCode)
			}
			if res, body = p.SignIn(t, b, res.Header.Get("Location"), "alice"); res.StatusCode != 200 || !strings.Contains(body, `"X-Auth-Request-User":["alice"]`) {
				t.Fatalf("login after the fault: %d %q, want the page for alice", res.StatusCode, body)
			}
		})
	}
}
