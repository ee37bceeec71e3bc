package e2e_test

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-dev/portcullis/internal/peers"
	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// TestLoginThroughNginx logs in with a real Chromium through a real nginx
// that runs deploy/forward-auth/nginx.conf word for word, with portcullis
// (deploy/forward-auth/portcullis.yaml) as its forward-auth service and
// built-in issuer: the protected page, the issuer's login form, back to the
// page with the identity, and no loop on the way.
func TestLoginThroughNginx(t *testing.T) {
	nginx := peers.Find(t, false, "nginx")
	b := newBrowser(t)

	up := strings.TrimPrefix(testgw.Serve(t, http.HandlerFunc(userPage)), "http://")
	ln, _ := testgw.Listen(t)
	listen := peers.FreeAddr(t)
	base := "http://" + listen
	dir := peers.Render(t, filepath.Join("..", "deploy", "forward-auth"), peers.Vars(listen, ln.Addr().String(), up))
	cfg, err := os.ReadFile(filepath.Join(dir, "portcullis.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	log := &testgw.LogBuffer{}
	testgw.Start(t, testgw.Options{
		Listener: ln, Now: testclock.New(time.Now()).Now, Logger: testgw.Logger(t, slog.LevelInfo, log),
		Config: func(string) string { return string(cfg) },
		Env: map[string]string{
			"PORTCULLIS_CLIENT_SECRET": "forward-auth-client-secret",
			"PORTCULLIS_COOKIE_SECRET": "forward-auth-cookie-secret-0123456789abcdef",
			"ALICE_PASSWORD_HASH":      testgw.AliceHash(),
		},
	})
	peers.Start(t, dir, listen, nginx, "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))

	tab := b.root
	b.do(tab, "open /orders?id=7 through nginx", chromedp.Navigate(base+"/orders?id=7"))
	b.loginPage(tab)
	b.screenshot(tab, "nginx-login")
	b.logIn(tab)
	if got := b.user(tab); got != username {
		t.Fatalf("#user = %q after login through nginx, want %q", got, username)
	}
	if loc := b.location(tab); loc != base+"/orders?id=7" {
		t.Fatalf("after login at %s, want %s/orders?id=7", loc, base)
	}
	b.screenshot(tab, "nginx-upstream")
	// One login page, one authorize round, no loop.
	if n := strings.Count(log.String(), "path=/idp/authorize route=issuer status=200"); n != 1 {
		t.Errorf("the login page was served %d times, want 1", n)
	}
	// The page's favicon fetch, a sub-resource, never started a login.
	if n := strings.Count(log.String(), "path=/oauth2/start"); n != 1 {
		t.Errorf("%d logins started, want 1:\n%s", n, log.String())
	}
}
