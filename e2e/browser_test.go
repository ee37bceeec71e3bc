package e2e_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestLoginFlow walks the login as a user does: a protected page, the
// issuer's login form, back to the page; the session survives a reload, and
// sign-out ends it.
func TestLoginFlow(t *testing.T) {
	start := time.Now()
	g := startGateway(t)
	b := newBrowser(t)
	tab := b.root

	// A page navigation without a session lands on the issuer's login form.
	b.do(tab, "open /orders?id=7", chromedp.Navigate(g.base+"/orders?id=7"))
	b.loginPage(tab)
	b.screenshot(tab, "login")

	// Logging in comes back to the page asked for, with the identity.
	b.logIn(tab)
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q after login, want %q", got, username)
	}
	if loc := b.location(tab); loc != g.base+"/orders?id=7" {
		t.Fatalf("after login at %s, want %s/orders?id=7", loc, g.base)
	}
	b.screenshot(tab, "upstream")

	// A reload keeps the session: no new login.
	mark := g.log.mark()
	b.do(tab, "reload", chromedp.Reload())
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q after reload, want %q", got, username)
	}
	if n := g.log.loginPages(mark); n != 0 {
		t.Fatalf("reload showed the login page %d times: %q", n, g.log.since(mark))
	}
	if w := g.log.sessionWrites(mark); w != nil {
		t.Fatalf("reload rewrote the session (%q); its access token is still valid", w)
	}

	// Sign-out goes through the issuer's logout, which ends its session
	// too, to the gateway's signed-out page; "Sign in again" asks for the
	// password.
	mark = g.log.mark()
	b.do(tab, "sign out", chromedp.Navigate(g.base+"/oauth2/sign_out"))
	b.do(tab, "wait for the signed-out page", chromedp.WaitVisible(chromedp.CSS(`p.ok`)))
	if msg := get(b, tab, "read the signed-out page", chromedp.Text(chromedp.CSS(`p.ok`))); msg != "You are signed out." {
		t.Fatalf("signed-out page says %q", msg)
	}
	b.screenshot(tab, "signed-out")
	reqs := g.log.since(mark)
	if !inOrder(reqs, "GET /oauth2/sign_out", "GET /idp/logout", "GET /oauth2/signed_out") {
		t.Fatalf("sign-out requests: %q", reqs)
	}
	b.do(tab, "sign in again", chromedp.Click(chromedp.CSS(`a.button`)))
	b.loginPage(tab)

	// The session is gone: the page asks for a login again.
	mark = g.log.mark()
	b.do(tab, "open /orders after sign-out", chromedp.Navigate(g.base+"/orders"))
	b.loginPage(tab)
	if n := g.log.loginPages(mark); n != 1 {
		t.Fatalf("after sign-out: %d login pages, want 1: %q", n, g.log.since(mark))
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// TestTwoTabs opens the login form in two tabs before either logs in. Each
// login attempt has its own state, so both complete, each on its own page.
func TestTwoTabs(t *testing.T) {
	start := time.Now()
	g := startGateway(t)
	b := newBrowser(t)
	tab1, tab2 := b.root, b.tab()

	b.do(tab1, "tab 1: open /one", chromedp.Navigate(g.base+"/one"))
	b.loginPage(tab1)
	b.do(tab2, "tab 2: open /two", chromedp.Navigate(g.base+"/two"))
	b.loginPage(tab2)

	for _, tc := range []struct {
		name string
		tab  context.Context
		path string
	}{
		{"tab 1", tab1, "/one"},
		{"tab 2", tab2, "/two"},
	} {
		b.logIn(tc.tab)
		if got := b.user(tc.tab); got != username {
			t.Fatalf("%s: #user = %q, want %q", tc.name, got, username)
		}
		if loc := b.location(tc.tab); loc != g.base+tc.path {
			t.Fatalf("%s: at %s, want %s%s", tc.name, loc, g.base, tc.path)
		}
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// TestExpiredAccessToken reloads the page after the access token expired:
// the session refreshes without showing the login page.
func TestExpiredAccessToken(t *testing.T) {
	start := time.Now()
	g := startGateway(t)
	b := newBrowser(t)
	tab := b.root

	b.do(tab, "open /orders", chromedp.Navigate(g.base+"/orders"))
	b.logIn(tab)
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q after login, want %q", got, username)
	}

	// Access tokens live 15 minutes by default. The reload refreshes the
	// session and writes it back, with no login page in between.
	g.clock.Advance(20 * time.Minute)
	mark := g.log.mark()
	b.do(tab, "reload", chromedp.Reload())
	if got := b.user(tab); got != username {
		t.Fatalf("reload: #user = %q, want %q", got, username)
	}
	if w := g.log.sessionWrites(mark); !slices.Equal(w, []string{"GET /orders"}) {
		t.Fatalf("session written by %q, want by the reload; requests %q", w, g.log.since(mark))
	}

	// The browser kept the refreshed session.
	b.do(tab, "reload again", chromedp.Reload())
	if got := b.user(tab); got != username {
		t.Fatalf("second reload: #user = %q, want %q", got, username)
	}
	if n := g.log.loginPages(mark); n != 0 {
		t.Fatalf("the login page was shown %d times: %q", n, g.log.since(mark))
	}
	if loc := b.location(tab); loc != g.base+"/orders" {
		t.Fatalf("at %s, want %s/orders", loc, g.base)
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// inOrder reports whether want appear in got in this order, not
// necessarily next to each other.
func inOrder(got []string, want ...string) bool {
	for _, w := range want {
		i := slices.Index(got, w)
		if i < 0 {
			return false
		}
		got = got[i+1:]
	}
	return true
}
