package faults_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

const redirectURI = "http://127.0.0.1:53682/callback"

// issuerGateway is a gateway whose built-in issuer keeps its state in
// Redis behind l, with the given store timeout and retry grace.
// It trusts ext, an external issuer, too.
func issuerGateway(t *testing.T, l *link, grace, storeTimeout string, ext *testidp.Server) *testgw.Gateway {
	t.Helper()
	up := testgw.Upstream(t)
	return testgw.Start(t, testgw.Options{Config: func(base string) string {
		return testgw.ServerSection("127.0.0.1:0", base, "") + fmt.Sprintf(`issuers:
  - issuer: "%[1]s/idp"
    audiences: [api]
    algorithms: [ES256]
  - issuer: %[7]q
    audiences: [api]
    algorithms: [ES256]
routes:
  - name: app
    path_prefix: /
    upstream: %[2]q
issuer:
  url: "%[1]s/idp"
  store: "redis://%[3]s/0"
  store_timeout: %[8]s
  refresh_retry_grace: %[4]s
  clients:
    - id: cli
      public: true
      first_party: true
      redirect_uris: [%[5]q]
      grant_types: [authorization_code, refresh_token]
      scopes: [openid, offline_access]
      audiences: [api]
  users:
    - username: alice
      password_hash: %[6]q
`, base, up, l.Addr, grace, redirectURI, testgw.AliceHash(), ext.Issuer, storeTimeout)
	}})
}

// signIn runs the code flow with PKCE for the public client as alice and
// returns the token response.
func signIn(t *testing.T, base string) map[string]any {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	u := base + "/idp/authorize?" + url.Values{"client_id": {"cli"}, "response_type": {"code"}, "redirect_uri": {redirectURI},
		"scope": {"openid offline_access"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}, "state": {"s"}}.Encode()
	b := testgw.NewBrowser(t)
	res, body := b.Do("GET", u, nil, nil)
	for range 10 {
		if res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther {
			loc, _ := res.Location()
			if strings.HasPrefix(loc.String(), redirectURI) {
				st, out := tokenPost(t, base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
					"redirect_uri": {redirectURI}, "code_verifier": {verifier}, "client_id": {"cli"}})
				if st != 200 {
					t.Fatalf("code exchange: %d %v", st, out)
				}
				return out
			}
			res, body = b.Do("GET", loc.String(), nil, nil)
			continue
		}
		if !strings.Contains(body, `name="password"`) {
			t.Fatalf("unexpected page %d: %s", res.StatusCode, body)
		}
		res, body = b.SubmitLogin(base, body)
	}
	t.Fatal("too many hops")
	return nil
}

func tokenPost(t *testing.T, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	res, err := http.PostForm(base+"/idp/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func refresh(t *testing.T, base, rt string) (int, map[string]any, time.Duration) {
	t.Helper()
	start := time.Now()
	st, out := tokenPost(t, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cli"}})
	return st, out, time.Since(start)
}

// Redis slow, cut or silent while a refresh rotates: the refresh answers
// 503 within the store timeout (plus the reply), bearer requests go on,
// and once the fault is gone the family was either rotated or not, never
// half: the client presenting its old token again gets a working pair —
// the one it was rotated to, when the rotation was written but its reply
// lost — and the family is not revoked.
func TestRedisFaultsDuringRefresh(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	cases := []struct {
		name, typ, stream string
		attrs             map[string]any
		// smallPass: short commands (a revocation check) get through.
		smallPass bool
		// ok: with the default store timeout, all works.
		ok bool
	}{
		{"reply delayed 100ms", "latency", "downstream", map[string]any{"latency": 100}, true, true},
		{"slicer", "slicer", "downstream", map[string]any{"average_size": 16, "size_variation": 8, "delay": 100}, true, true},
		{"reply delayed 2s", "latency", "downstream", map[string]any{"latency": 2000}, false, false},
		{"reply delayed 30s", "latency", "downstream", map[string]any{"latency": 30000}, false, false},
		{"reply black-holed", "timeout", "downstream", map[string]any{"timeout": 0}, false, false},
		{"request black-holed", "timeout", "upstream", map[string]any{"timeout": 0}, false, false},
		{"reset mid-reply", "reset_peer", "downstream", map[string]any{"timeout": 0}, false, false},
		{"reply cut short", "limit_data", "downstream", map[string]any{"bytes": 8}, false, false},
		{"bandwidth 1KB/s", "bandwidth", "downstream", map[string]any{"rate": 1}, false, false},
		// The rotation's EVALSHA carries the new grant and the sealed
		// pair, well over 1000 bytes; a lookup's is a few hundred.
		{"rotation's request cut", "limit_data", "upstream", map[string]any{"bytes": 1000}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLink(t, "redis", hostPort(t, redisURL))
			ext, keys := testgw.NewIssuer(t)
			// 200ms, but the default (1s) where the toxic is one all
			// should survive: a store call can be more than one round
			// trip (a new connection's handshake, a script's first run).
			storeTimeout := "200ms"
			if tc.ok {
				storeTimeout = "1s"
			}
			g := issuerGateway(t, l, "10s", storeTimeout, ext)
			tok := signIn(t, g.URL)
			access, rt := tok["access_token"].(string), tok["refresh_token"].(string)
			other := testidp.Mint(t, keys["ES256"], ext.Claims("bob", time.Now()), nil)
			for _, tk := range []string{access, other} {
				if st, _ := get(t, g.URL+"/x", tk); st != 200 {
					t.Fatalf("warm-up: %d", st)
				}
			}

			remove := l.toxic(t, tc.typ, tc.stream, tc.attrs)
			st, out, took := refresh(t, g.URL, rt)
			if tc.ok {
				if st != 200 {
					t.Fatalf("refresh despite the toxic: %d %v after %v, want 200", st, out, took)
				}
				if st, took := get(t, g.URL+"/x", out["access_token"].(string)); st != 200 {
					t.Fatalf("the new access token despite the toxic: %d after %v", st, took)
				}
				return
			}
			if st != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable" || took > time.Second {
				t.Fatalf("refresh during the fault: %d %v after %v, want 503 within 1s", st, out, took)
			}
			for range 5 {
				// Another issuer's tokens need no Redis: served on.
				if st, took := get(t, g.URL+"/x", other); st != 200 || took > 200*time.Millisecond {
					t.Errorf("external issuer's token during the fault: %d after %v", st, took)
				}
				// The built-in issuer's are checked against its
				// revocations in Redis on every request: refused, fast
				// (fail closed, never a revoked token let through).
				want := http.StatusServiceUnavailable
				if tc.smallPass {
					want = 200
				}
				if st, took := get(t, g.URL+"/x", access); st != want || took > 600*time.Millisecond {
					t.Errorf("built-in issuer's token during the fault: %d after %v, want %d within the store timeout", st, took, want)
				}
			}
			remove()

			st, pair, _ := refresh(t, g.URL, rt)
			if st != 200 {
				t.Fatalf("refresh after the fault: %d %v", st, pair)
			}
			if st, _ := get(t, g.URL+"/x", pair["access_token"].(string)); st != 200 {
				t.Errorf("the pair's access token: %d", st)
			}
			if st, out, _ := refresh(t, g.URL, pair["refresh_token"].(string)); st != 200 {
				t.Errorf("the pair's refresh token: %d %v (family revoked?)", st, out)
			}
		})
	}
}
