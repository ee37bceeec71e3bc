package proxy_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testredis"
)

// TestServerSideSessions keeps browser sessions in Redis: the cookie holds
// only a sealed id, signing out makes a copied cookie worthless, and a
// Redis outage is a 503, not a login loop.
func TestServerSideSessions(t *testing.T) {
	redisURL, stop, restart := testredis.Start(t)
	e := newLoginEnvWith(t, func(y string) string {
		return strings.Replace(y, "  client_id: portcullis\n", "  client_id: portcullis\n  session_store: "+redisURL+"\n", 1)
	})
	b := newBrowser(t)
	res, body := b.visit(e.base, e.base+"/orders")
	if res.StatusCode != 200 || !strings.Contains(body, "alice") {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	u, _ := url.Parse(e.base)
	var cookie *http.Cookie
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "_portcullis" {
			cookie = c
		}
	}
	if cookie == nil || len(cookie.Value) > 200 {
		t.Fatalf("session cookie %v: want a small sealed id", cookie)
	}

	// Refresh keeps working with the session in Redis.
	e.clock.Advance(20 * 60e9)
	if res, _ := b.do("GET", e.base+"/later", nil, nil); res.StatusCode != 200 {
		t.Fatalf("after expiry: %d", res.StatusCode)
	}

	// Redis down: 503, not a redirect to login.
	stop()
	if res, _ := b.do("GET", e.base+"/orders", nil, nil); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Redis down: %d, want 503", res.StatusCode)
	}
	if e.gw.Ready() {
		t.Error("ready without the session store")
	}
	// The test's Redis keeps nothing across a restart, so the session is
	// gone: the browser logs in again and everything works.
	restart()
	if res, body := b.visit(e.base, e.base+"/orders"); res.StatusCode != 200 || !strings.Contains(body, "alice") {
		t.Fatalf("Redis back: %d", res.StatusCode)
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "_portcullis" {
			cookie = c
		}
	}

	// Sign out; a copy of the old cookie no longer signs anyone in.
	b.do("GET", e.base+"/oauth2/sign_out", nil, nil)
	thief := newBrowser(t)
	thief.c.Jar.SetCookies(u, []*http.Cookie{{Name: "_portcullis", Value: cookie.Value}})
	if res, _ := thief.do("GET", e.base+"/orders", nil, nil); res.StatusCode != 302 {
		t.Fatalf("copied cookie after sign-out: %d, want a login redirect", res.StatusCode)
	}
}
