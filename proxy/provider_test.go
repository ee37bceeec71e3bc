package proxy_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/proxy"
)

// providerConfig runs only the built-in issuer: the "external" provider.
// %[1]s its base URL, %[2]s the relying gateway's base URL, %[3]s a hash.
const providerConfig = `
server: {listen: "127.0.0.1:18097", public_url: "%[1]s"}
admin: {listen: off}
issuer:
  url: "%[1]s/idp"
  clients:
    - id: gateway
      secret: gateway-secret-0123456789
      first_party: true
      redirect_uris: ["%[2]s/oauth2/callback"]
      post_logout_redirect_uris: ["%[2]s/"]
      scopes: [openid, profile, email, offline_access, read]
      audiences: [another-api]
  users:
    - username: alice
      password_hash: %[3]q
      claims: {email: alice@example.com, groups: [admin]}
  scopes: {read: Read}
`

// relyingConfig is a gateway that logs browsers in at that provider, found
// by discovery over HTTP. Its access tokens are meant for another audience,
// so the gateway must take the identity from the id_token.
const relyingConfig = `
server: {listen: "127.0.0.1:18098", public_url: "%[2]s"}
admin: {listen: off}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [orders-api]
    algorithms: [ES256]
login:
  issuer: "%[1]s/idp"
  client_id: gateway
  client_secret: gateway-secret-0123456789
  scopes: [openid, profile, email, offline_access, read]
  cookie: {secret: "cookie-secret-0123456789-0123456789-abc", secure: false}
routes:
  - name: app
    path_prefix: /
    upstream: %[3]q
    require_claims: {groups: admin}
    forward_headers: {X-Auth-Request-User: sub, X-Auth-Request-Email: email}
`

func TestLoginAtAProviderFoundByDiscovery(t *testing.T) {
	up := upstream(t)
	lnP, _ := net.Listen("tcp", "127.0.0.1:0")
	lnR, _ := net.Listen("tcp", "127.0.0.1:0")
	provider, relying := "http://"+lnP.Addr().String(), "http://"+lnR.Addr().String()
	clk := newClock()
	clk.ns.Store(time.Now().UnixNano())
	serve := func(yml string, ln net.Listener) func() {
		cfg, err := config.Parse("t.yaml", []byte(yml), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		gw, err := proxy.New(ctx, proxy.Config{Config: cfg, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- gw.Serve(ctx, ln, nil) }()
		var once sync.Once
		stop := func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		return stop
	}
	stopProvider := serve(fmt.Sprintf(providerConfig, provider, relying, aliceHash()), lnP)
	serve(fmt.Sprintf(relyingConfig, provider, relying, up), lnR)

	b := newBrowser(t)
	res, body := b.visit(provider, relying+"/orders")
	if res.StatusCode != 200 || !strings.Contains(body, `"X-Auth-Request-User":["alice"]`) ||
		!strings.Contains(body, `"X-Auth-Request-Email":["alice@example.com"]`) {
		t.Fatalf("login through a discovered provider: %d %s", res.StatusCode, body)
	}

	// The access token expires: many requests at once share one refresh (a
	// second refresh would present a rotated token, and the provider would
	// revoke the whole session as reuse).
	clk.Advance(20 * time.Minute)
	var wg sync.WaitGroup
	statuses := make([]int, 10)
	for i := range statuses {
		wg.Go(func() {
			r, _ := b.do("GET", relying+fmt.Sprintf("/page/%d", i), nil, nil)
			statuses[i] = r.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Fatalf("concurrent request %d after expiry: %d", i, s)
		}
	}
	res, _ = b.do("GET", relying+"/after", nil, nil)
	if res.StatusCode != 200 {
		t.Fatalf("after the concurrent refresh: %d", res.StatusCode)
	}

	// Sign out ends the session here and at the provider.
	res, _ = b.do("GET", relying+"/oauth2/sign_out", nil, nil)
	loc, _ := res.Location()
	if loc == nil || !strings.HasPrefix(loc.String(), provider+"/idp/logout") {
		t.Fatalf("sign out: %d %v", res.StatusCode, loc)
	}
	res, _ = b.do("GET", relying+"/orders", nil, nil)
	if loc, _ := res.Location(); res.StatusCode != 302 || !strings.Contains(loc.String(), "/oauth2/start") {
		t.Fatalf("after sign out: %d %v", res.StatusCode, loc)
	}

	// Log in again, then the provider goes away: when the access token
	// expires the refresh fails, and the browser is sent to log in again
	// rather than kept on a stale session.
	res, body = b.visit(provider, relying+"/orders")
	if res.StatusCode != 200 || !strings.Contains(body, "alice") {
		t.Fatalf("second login: %d", res.StatusCode)
	}
	stopProvider()
	clk.Advance(20 * time.Minute)
	res, _ = b.do("GET", relying+"/orders", nil, nil)
	if loc, _ := res.Location(); res.StatusCode != 302 || !strings.Contains(loc.String(), "/oauth2/start") {
		t.Fatalf("after a failed refresh: %d %v", res.StatusCode, loc)
	}
}
