package e2e_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// startGatewayWith is startGateway with the configuration text edited by
// mod.
func startGatewayWith(t *testing.T, mod func(string) string) *gateway {
	t.Helper()
	up := testgw.Serve(t, http.HandlerFunc(userPage))
	g := &gateway{clock: testclock.New(time.Now()), log: &requestLog{}}
	s := testgw.Start(t, testgw.Options{Now: g.clock.Now, Logger: testgw.Logger(t, slog.LevelInfo, nil), Wrap: g.log.wrap,
		Config: func(base string) string { return mod(fmt.Sprintf(gatewayConfig, base, up, testgw.AliceHash())) }})
	g.base = s.URL
	return g
}

// pageText waits for the message page in tab and returns its first
// paragraph.
func (b *browser) pageText(tab context.Context) string {
	b.t.Helper()
	b.do(tab, "wait for the message page", chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	return get(b, tab, "read the message", chromedp.Text(chromedp.CSS(`main p`)))
}

// TestSignOutExternalProvider: the gateway signs in at another OpenID
// provider (a second portcullis, issuer only) that has an
// end_session_endpoint. Signing out ends the provider's session too: the
// next visit asks for the password.
func TestSignOutExternalProvider(t *testing.T) {
	lnG, gw := testgw.Listen(t)
	_, provider := startProvider(t, gw)
	up := testgw.Serve(t, http.HandlerFunc(userPage))
	g := &gateway{clock: testclock.New(time.Now()), log: &requestLog{}}
	testgw.Start(t, testgw.Options{Listener: lnG, Now: g.clock.Now, Logger: testgw.Logger(t, slog.LevelInfo, nil), Wrap: g.log.wrap,
		Config: func(base string) string {
			return testgw.ServerSection("127.0.0.1:0", base, "") + testgw.IssuersSection(provider+"/idp", "demo-api", "") +
				testgw.LoginSection(provider+"/idp", "portcullis") +
				fmt.Sprintf("routes:\n  - name: app\n    path_prefix: /\n    upstream: %q\n    forward_headers: {X-Auth-Request-User: sub}\n", up)
		}})
	g.base = gw
	b := newBrowser(t)
	tab := b.root
	b.do(tab, "open /orders", chromedp.Navigate(g.base+"/orders"))
	b.loginPage(tab)
	if loc := b.location(tab); !strings.HasPrefix(loc, provider+"/idp/authorize") {
		t.Fatalf("login at %s, want the provider %s", loc, provider)
	}
	b.logIn(tab)
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q", got)
	}
	b.do(tab, "sign out", chromedp.Navigate(g.base+"/oauth2/sign_out"))
	b.loginPage(tab) // back at the site's root, which sends to the provider
	b.screenshot(tab, "provider-login-after-sign-out")
	b.do(tab, "the provider's own sign-out page", chromedp.Navigate(provider+"/idp/logout"))
	if msg := b.pageText(tab); msg != "You are signed out." {
		t.Fatalf("provider's signed-out page says %q", msg)
	}
	b.screenshot(tab, "issuer-signed-out")
}

// startProvider runs a portcullis with only the built-in issuer, whose
// client portcullis belongs to the gateway at gw.
func startProvider(t *testing.T, gw string) (*testgw.Gateway, string) {
	t.Helper()
	ln, base := testgw.Listen(t)
	p := testgw.Start(t, testgw.Options{Listener: ln, Logger: testgw.Logger(t, slog.LevelInfo, nil), Config: func(string) string {
		s := testgw.ServerSection("127.0.0.1:0", base, "") + testgw.IssuerSection{Base: base, Client: "portcullis", ClientName: "Orders",
			Gateway: gw, Audience: "demo-api", PasswordHash: fmt.Sprintf("%q", testgw.AliceHash()), Scopes: `{read: "Read your data"}`}.YAML()
		// An external provider knows nothing of the gateway's defaults:
		// the post-logout address is registered like any other.
		return strings.Replace(s, "      first_party: true\n", "      first_party: true\n      post_logout_redirect_uris: [\""+gw+"/\"]\n", 1)
	}})
	return p, base
}

// TestConsentDenied: declining consent at the issuer ends on the gateway's
// page naming the application, whose "Try again" asks again.
func TestConsentDenied(t *testing.T) {
	g := startGatewayWith(t, func(s string) string { return strings.Replace(s, "first_party: true", "first_party: false", 1) })
	b := newBrowser(t)
	tab := b.root
	b.do(tab, "open /orders", chromedp.Navigate(g.base+"/orders"))
	b.logIn(tab)
	b.do(tab, "wait for the consent page", chromedp.WaitVisible(chromedp.CSS(`button[value=deny]`)))
	b.screenshot(tab, "consent")
	b.do(tab, "deny", chromedp.Click(chromedp.CSS(`button[value=deny]`)))
	if msg := b.pageText(tab); msg != "You declined access for Orders." {
		t.Fatalf("after denying: %q", msg)
	}
	b.screenshot(tab, "access-declined")
	b.do(tab, "try again", chromedp.Click(chromedp.CSS(`a.button`)))
	b.do(tab, "wait for the consent page again", chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)))
	b.do(tab, "allow", chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q after allowing", got)
	}
}

// TestBackOntoCallback: after signing in, Back returns to the sign-in's
// pages; the browser ends on its page again, signed in, not on an error.
func TestBackOntoCallback(t *testing.T) {
	g := startGateway(t)
	b := newBrowser(t)
	tab := b.root
	b.do(tab, "open /orders", chromedp.Navigate(g.base+"/orders"))
	b.logIn(tab)
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q", got)
	}
	mark := g.log.mark()
	b.do(tab, "back", chromedp.NavigateBack())
	if got := b.user(tab); got != username {
		t.Fatalf("after Back: #user = %q at %s", got, b.location(tab))
	}
	if loc := b.location(tab); loc != g.base+"/orders" {
		t.Fatalf("after Back at %s, want %s/orders", loc, g.base)
	}
	if reqs := g.log.since(mark); !inOrder(reqs, "GET /oauth2/callback", "GET /orders") {
		t.Fatalf("Back went through %q, want the callback and on to /orders", reqs)
	}
	for _, r := range g.log.since(mark) {
		if r == "POST /idp/authorize" {
			t.Errorf("Back asked for the password again: %q", g.log.since(mark))
		}
	}
}

// TestMessagePages shows the pages a browser meets when a sign-in cannot
// go on: each says what happened and offers the next step.
func TestMessagePages(t *testing.T) {
	g := startGatewayWith(t, func(s string) string {
		return strings.Replace(s, "routes:\n", "routes:\n  - name: ops\n    path_prefix: /ops\n    upstream: \"http://127.0.0.1:1\"\n    require_claims: {department: [ops]}\n", 1)
	})
	b := newBrowser(t)
	tab := b.root
	other := base64.RawURLEncoding.EncodeToString([]byte("localhost:1"))
	for _, c := range []struct {
		name, path, text, link string
	}{
		{"sign-in-failed", "/oauth2/callback?code=x&state=expired", "This sign-in has expired, was already finished, or was started in another browser.", "Sign in again"},
		{"other-address", "/oauth2/callback?code=x&state=abcdefghijkl~" + other, "The sign-in was started at localhost:1, but this site's address is " + strings.TrimPrefix(g.base, "http://") + ".", "Sign in at " + strings.TrimPrefix(g.base, "http://")},
		{"not-found", "/oauth2/nope", "There is no page at this address.", "Go to "},
		{"signed-out", "/oauth2/signed_out", "You are signed out.", "Sign in again"},
	} {
		b.do(tab, c.name, chromedp.Navigate(g.base+c.path))
		if got := b.pageText(tab); !strings.HasPrefix(got, c.text) {
			t.Errorf("%s: %q, want %q", c.name, got, c.text)
		}
		if link := get(b, tab, "read the link", chromedp.Text(chromedp.CSS(`a.button`))); !strings.HasPrefix(link, c.link) {
			t.Errorf("%s: link %q, want %q", c.name, link, c.link)
		}
		b.screenshot(tab, c.name)
	}
	// Signed in without the claim the route wants.
	b.do(tab, "sign in", chromedp.Navigate(g.base+"/orders"))
	b.logIn(tab)
	b.user(tab)
	b.do(tab, "open /ops", chromedp.Navigate(g.base+"/ops/"))
	if got, want := b.pageText(tab), "You are signed in, but this page needs your account's department to be ops."; got != want {
		t.Errorf("forbidden: %q, want %q", got, want)
	}
	b.screenshot(tab, "access-denied")
	b.do(tab, "sign out from there", chromedp.Click(chromedp.CSS(`a.button`)))
	if msg := b.pageText(tab); msg != "You are signed out." {
		t.Errorf("after Sign out: %q", msg)
	}
}
