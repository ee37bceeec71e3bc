package proxy_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// providerConfig runs only the built-in issuer: the "external" provider.
// %[1]s its base URL, %[2]s the relying gateway's base URL, %[3]s a hash.
var providerConfig = testgw.ServerSection("127.0.0.1:18097", "%[1]s", "") +
	testgw.IssuerSection{Base: "%[1]s", Client: "gateway", Gateway: "%[2]s", Audience: "another-api",
		PasswordHash: "%[3]q", Scopes: "{read: Read}"}.YAML()

// relyingConfig is a gateway that logs browsers in at that provider, found
// by discovery over HTTP. Its access tokens are meant for another audience,
// so the gateway must take the identity from the id_token.
var relyingConfig = testgw.ServerSection("127.0.0.1:18098", "%[2]s", "") +
	testgw.IssuersSection("%[1]s/idp", "orders-api", "") +
	testgw.LoginSection("%[1]s/idp", "gateway") + `routes:
  - name: app
    path_prefix: /
    upstream: %[3]q
    require_claims: {groups: admin}
    forward_headers: {X-Auth-Request-User: sub, X-Auth-Request-Email: email}
`

func TestLoginAtAProviderFoundByDiscovery(t *testing.T) {
	up := upstream(t)
	lnP, provider := testgw.Listen(t)
	lnR, relying := testgw.Listen(t)
	clk := testclock.New(time.Now())
	serve := func(yml string, ln net.Listener) *testgw.Gateway {
		return testgw.Start(t, testgw.Options{Listener: ln, Now: clk.Now, Config: func(string) string { return yml }})
	}
	providerGW := serve(fmt.Sprintf(providerConfig, provider, relying, testgw.AliceHash()), lnP)
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
	providerGW.Cancel()
	if err := providerGW.Wait(); err != nil {
		t.Fatalf("provider: %v", err)
	}
	clk.Advance(20 * time.Minute)
	res, _ = b.do("GET", relying+"/orders", nil, nil)
	if loc, _ := res.Location(); res.StatusCode != 302 || !strings.Contains(loc.String(), "/oauth2/start") {
		t.Fatalf("after a failed refresh: %d %v", res.StatusCode, loc)
	}
}
