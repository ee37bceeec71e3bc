package oidcclient

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	s := &MemoryStore{Max: 2, Now: func() time.Time { return now }}

	if _, err := s.LoadSession(ctx, "a"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("unknown id: %v, want ErrNoSession", err)
	}
	data := []byte("session a")
	_ = s.SaveSession(ctx, "a", data, time.Minute, SessionOwner{})
	data[0] = 'X' // the store keeps its own copy
	if got, err := s.LoadSession(ctx, "a"); err != nil || string(got) != "session a" {
		t.Fatalf("load: %q, %v", got, err)
	}
	now = now.Add(time.Minute)
	if _, err := s.LoadSession(ctx, "a"); !errors.Is(err, ErrNoSession) || s.Len() != 0 {
		t.Fatalf("at its expiry: %v, %d kept; want ErrNoSession and dropped", err, s.Len())
	}

	// Full: an expired session makes room first, then the one closest to
	// its expiry.
	_ = s.SaveSession(ctx, "soon", []byte("1"), time.Second, SessionOwner{})
	_ = s.SaveSession(ctx, "later", []byte("2"), time.Hour, SessionOwner{})
	_ = s.SaveSession(ctx, "later", []byte("2b"), time.Hour, SessionOwner{}) // an update needs no room
	if s.Len() != 2 {
		t.Fatalf("%d sessions, want 2", s.Len())
	}
	_ = s.SaveSession(ctx, "new", []byte("3"), time.Hour, SessionOwner{})
	if _, err := s.LoadSession(ctx, "soon"); !errors.Is(err, ErrNoSession) {
		t.Fatal("full: the session closest to its expiry was kept")
	}
	if got, _ := s.LoadSession(ctx, "later"); string(got) != "2b" {
		t.Fatalf("later: %q", got)
	}
	now = now.Add(2 * time.Hour)
	_ = s.SaveSession(ctx, "next", []byte("4"), time.Hour, SessionOwner{})
	if s.Len() != 1 {
		t.Fatalf("after both expired: %d sessions, want only the new one", s.Len())
	}
	_ = s.DeleteSession(ctx, "next")
	if _, err := s.LoadSession(ctx, "next"); !errors.Is(err, ErrNoSession) {
		t.Fatal("deleted session still loads")
	}
}

// A session kept in memory travels as one small cookie, whatever its
// tokens' size.
func TestMemoryStoreSessionIsOneCookie(t *testing.T) {
	store := &MemoryStore{}
	e := newSessionTestEnv(t, [][]byte{cookieTestSecretA}, func(c *Config) { c.Sessions = store })
	s := e.session("alice")
	s.IDToken = e.idToken("alice", map[string]any{"groups": strings.Fields(strings.Repeat("a-rather-long-group-name ", 400))})
	cks := e.seal(s)
	if len(cks) != 1 || len(cks[0].Value) > 200 {
		t.Fatalf("%d cookies, first %d bytes; want one small cookie", len(cks), len(cks[0].Value))
	}
	if store.Len() != 1 {
		t.Fatalf("store holds %d sessions", store.Len())
	}
	if got, _ := e.get(cks...); got == nil || got.IDToken != s.IDToken {
		t.Fatal("the session does not come back from the store")
	}
}

// SessionOneCookie does not refresh a session that spans several cookies:
// a proxy that passes one Set-Cookie would cut it, and the spent refresh
// token would be lost with it.
func TestSessionOneCookie(t *testing.T) {
	e, p := newRefreshTestEnv(t)

	big := e.session("alice")
	big.IDToken = e.idToken("alice", map[string]any{"groups": strings.Fields(strings.Repeat("a-rather-long-group-name ", 400))})
	bigCookies := e.seal(big)
	if len(bigCookies) < 2 {
		t.Fatalf("the big session fits %d cookie", len(bigCookies))
	}
	small := e.session("alice")
	smallCookies := e.seal(small)
	if len(smallCookies) != 1 {
		t.Fatalf("the small session takes %d cookies", len(smallCookies))
	}

	// Near expiry: the split session is used as it is, the small one is
	// refreshed.
	e.clock.now = big.Expiry.Add(-30 * time.Second)
	rec := httptest.NewRecorder()
	got, err := e.c.SessionOneCookie(rec, cookieTestRequest(bigCookies...))
	if err != nil || got == nil || got.AccessToken != big.AccessToken || p.calls != 0 || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("split session near expiry: %v, %v, %d refreshes, %d cookies set; want it used unrefreshed",
			got, err, p.calls, len(rec.Result().Cookies()))
	}
	rec = httptest.NewRecorder()
	got, err = e.c.SessionOneCookie(rec, cookieTestRequest(smallCookies...))
	if err != nil || got == nil || got.AccessToken != "at-refreshed-1" || len(cookieTestLive(rec.Result().Cookies())) != 1 {
		t.Fatalf("one-cookie session near expiry: %v, %v; want it refreshed into one cookie", got, err)
	}
	// Past expiry the split session is over; Session would have refreshed.
	e.clock.now = big.Expiry.Add(time.Second)
	if got, _ := e.c.SessionOneCookie(httptest.NewRecorder(), cookieTestRequest(bigCookies...)); got != nil {
		t.Fatal("split session used past its access token's expiry")
	}
}
