package proxy_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/serve"
)

// replicaConfig is one of several replicas of the gateway and built-in
// issuer behind one URL, sharing a Redis store and signing keys mounted from
// one Secret. %[1]s Redis URL, %[2]s key file, %[3]s upstream, %[4]s
// password hash.
const replicaConfig = `
server: {listen: "127.0.0.1:18099", public_url: "http://idp.test", insecure_allow_http: true}
admin: {listen: off}
issuers:
  - issuer: http://idp.test/idp
    audiences: [api]
    algorithms: [ES256]
issuer:
  url: http://idp.test/idp
  store: %[1]q
  signing: {key_files: [%[2]q]}
  clients:
    - id: app
      secret: app-secret-0123456789
      first_party: true
      redirect_uris: [http://app.test/cb]
      scopes: [openid, offline_access, read]
      audiences: [api]
    - id: machine
      secret: machine-secret-0123456789
      grant_types: [client_credentials]
      scopes: [read]
      audiences: [api]
  users:
    - username: alice
      password_hash: %[4]q
  scopes: {read: Read}
routes:
  - name: app
    path_prefix: /
    upstream: %[3]q
`

// replica is one running gateway.
type replica struct {
	gw   *serve.Server
	addr string
}

// viaReplica is an HTTP client whose connections, whatever the URL's host,
// go to the replica *to points at.
func viaReplica(to *atomic.Pointer[replica]) *http.Client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, to.Load().addr)
	}}
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func TestReplicasShareOneRedis(t *testing.T) {
	redisURL, stopRedis, restartRedis := testredis.Start(t)
	up := upstream(t)
	key, _ := jwks.GenerateKey("ES256")
	pemKey, _ := jwks.MarshalPrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(keyFile, pemKey, 0o400); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(replicaConfig, redisURL, keyFile, up, testgw.AliceHash())
	start := func() *replica {
		g := testgw.Start(t, testgw.Options{Config: func(string) string { return yml }})
		return &replica{gw: g.Server, addr: g.Addr}
	}
	a, b := start(), start()
	var to atomic.Pointer[replica]
	to.Store(a)
	client := viaReplica(&to)

	// Every replica publishes the same keys.
	_, jwksA := fetch(t, client, "GET", "http://idp.test/idp/jwks", nil)
	to.Store(b)
	_, jwksB := fetch(t, client, "GET", "http://idp.test/idp/jwks", nil)
	to.Store(a)
	if jwksA != jwksB || !strings.Contains(jwksA, `"kid"`) {
		t.Fatalf("replicas publish different key sets:\n%s\n%s", jwksA, jwksB)
	}

	// Log in through A.
	code := func() string {
		t.Helper()
		verifier := strings.Repeat("v", 50)
		sum := sha256.Sum256([]byte(verifier))
		u := "http://idp.test/idp/authorize?" + url.Values{"response_type": {"code"}, "client_id": {"app"},
			"redirect_uri": {"http://app.test/cb"}, "scope": {"openid offline_access read"}, "state": {"s"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}.Encode()
		res, body := fetch(t, client, "GET", u, nil)
		if strings.Contains(body, `name="password"`) {
			res, _ = fetch(t, client, "POST", "http://idp.test/idp/authorize", testgw.LoginForm(body))
			loc, _ := res.Location()
			res, _ = fetch(t, client, "GET", loc.String(), nil)
		}
		loc, err := res.Location()
		if err != nil || loc.Query().Get("code") == "" {
			t.Fatalf("no code: %d %v", res.StatusCode, loc)
		}
		return loc.Query().Get("code")
	}
	token := func(at *replica, form url.Values, id, secret string) (int, map[string]any) {
		t.Helper()
		to.Store(at)
		req, _ := http.NewRequest("POST", "http://idp.test/idp/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	codeForm := func(c string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {"http://app.test/cb"},
			"code_verifier": {strings.Repeat("v", 50)}}
	}
	refreshForm := func(rt any) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fmt.Sprint(rt)}}
	}

	c1 := code()
	s, tok := token(a, codeForm(c1), "app", "app-secret-0123456789")
	if s != 200 {
		t.Fatalf("code at A: %d %v", s, tok)
	}
	// Refresh through B; retried at A within the grace it is the same
	// pair; once the pair was used, a replay of the old refresh token on A
	// revokes the family on both.
	s, tok2 := token(b, refreshForm(tok["refresh_token"]), "app", "app-secret-0123456789")
	if s != 200 {
		t.Fatalf("refresh at B: %d %v", s, tok2)
	}
	if s, again := token(a, refreshForm(tok["refresh_token"]), "app", "app-secret-0123456789"); s != 200 || again["refresh_token"] != tok2["refresh_token"] {
		t.Fatalf("retry at A: %d %v, want B's pair", s, again)
	}
	s, tok2 = token(b, refreshForm(tok2["refresh_token"]), "app", "app-secret-0123456789")
	if s != 200 {
		t.Fatalf("second refresh at B: %d %v", s, tok2)
	}
	if s, _ := token(a, refreshForm(tok["refresh_token"]), "app", "app-secret-0123456789"); s != 400 {
		t.Fatalf("replay at A: %d", s)
	}
	if s, _ := token(b, refreshForm(tok2["refresh_token"]), "app", "app-secret-0123456789"); s != 400 {
		t.Fatalf("the family survived the replay: %d", s)
	}

	// A code redeemed on A cannot be redeemed on B (and the replay revokes
	// what A issued for it).
	to.Store(a)
	c3 := code()
	if s, out := token(a, codeForm(c3), "app", "app-secret-0123456789"); s != 200 {
		t.Fatalf("code at A: %d %v", s, out)
	}
	if s, out := token(b, codeForm(c3), "app", "app-secret-0123456789"); s != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("code again at B: %d %v", s, out)
	}

	// Revoke on B: the access token is rejected on A.
	_, mt := token(a, url.Values{"grant_type": {"client_credentials"}}, "machine", "machine-secret-0123456789")
	call := func(at *replica, tok any) int {
		to.Store(at)
		res, _ := fetch(t, client, "GET", "http://app.test/orders", nil, "Authorization", "Bearer "+fmt.Sprint(tok))
		return res.StatusCode
	}
	if s := call(a, mt["access_token"]); s != 200 {
		t.Fatalf("machine token at A: %d", s)
	}
	to.Store(b)
	res, _ := fetch(t, client, "POST", "http://idp.test/idp/revoke", url.Values{"token": {fmt.Sprint(mt["access_token"])}},
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("machine:machine-secret-0123456789")))
	if res.StatusCode != 200 {
		t.Fatalf("revoke at B: %d", res.StatusCode)
	}
	if s := call(a, mt["access_token"]); s != 401 {
		t.Fatalf("revoked token at A: %d", s)
	}

	// 50 concurrent redemptions of one code across both: exactly one wins;
	// the others are replays, which revoke what the winner got.
	to.Store(a)
	c2 := code()
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			r := a
			if i%2 == 1 {
				r = b
			}
			var pin atomic.Pointer[replica]
			pin.Store(r)
			c := viaReplica(&pin)
			req, _ := http.NewRequest("POST", "http://idp.test/idp/token", strings.NewReader(codeForm(c2).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("app", "app-secret-0123456789")
			res, err := c.Do(req)
			if err != nil {
				t.Errorf("redemption %d: %v", i, err)
				return
			}
			if res.StatusCode == 200 {
				wins.Add(1)
				var out map[string]any
				_ = json.NewDecoder(res.Body).Decode(&out)
				winner.Store(fmt.Sprint(out["access_token"]))
			} else if res.StatusCode != 400 {
				b, _ := io.ReadAll(res.Body)
				t.Errorf("redemption %d: %d %s", i, res.StatusCode, b)
			}
			res.Body.Close()
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of 50 concurrent redemptions won, want 1", wins.Load())
	}
	if s := call(b, winner.Load()); s != 401 {
		t.Fatalf("the winner's token after 49 replays: %d, want 401 (revoked)", s)
	}

	// Nothing issued is lost when portcullis restarts: a new replica built
	// from the same configuration honours earlier tokens.
	to.Store(a)
	c4 := code()
	_, before := token(a, codeForm(c4), "app", "app-secret-0123456789")
	c := start()
	if s := call(c, before["access_token"]); s != 200 {
		t.Fatalf("access token after a restart: %d", s)
	}
	if s, out := token(c, refreshForm(before["refresh_token"]), "app", "app-secret-0123456789"); s != 200 {
		t.Fatalf("refresh token after a restart: %d %v", s, out)
	}

	// Redis goes away: 503s and not ready, no panic; it comes back: so does
	// the service, without restarting portcullis.
	_, fresh := token(a, url.Values{"grant_type": {"client_credentials"}}, "machine", "machine-secret-0123456789")
	stopRedis()
	if s, out := token(a, url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, "machine", "machine-secret-0123456789"); s != 200 {
		// client_credentials needs no state; it still works.
		t.Logf("client_credentials without Redis: %d %v", s, out)
	}
	if s, out := token(b, refreshForm("x"), "app", "app-secret-0123456789"); s != 503 || out["error"] != "temporarily_unavailable" {
		t.Fatalf("refresh without Redis: %d %v", s, out)
	}
	if s := call(a, fresh["access_token"]); s != 503 {
		t.Fatalf("gateway without Redis: %d, want 503 (revocations cannot be checked)", s)
	}
	if a.gw.Ready() {
		t.Fatal("ready without Redis")
	}
	admin := httptest.NewRecorder()
	a.gw.AdminHandler().ServeHTTP(admin, httptest.NewRequest("GET", "/readyz", nil))
	if admin.Code != 503 {
		t.Fatalf("/readyz without Redis: %d", admin.Code)
	}
	restartRedis()
	if s := call(a, fresh["access_token"]); s != 200 {
		t.Fatalf("after Redis returned: %d", s)
	}
	if !a.gw.Ready() || !b.gw.Ready() {
		t.Fatal("not ready after Redis returned")
	}
}

// fetch sends one request with optional header pairs.
func fetch(t *testing.T, c *http.Client, method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return testgw.Send(t, c, method, u, form, h)
}
