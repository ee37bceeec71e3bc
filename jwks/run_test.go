package jwks

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunSchedule drives Run on synctest's fake clock: timers fire as soon
// as every goroutine in the bubble is blocked, so nothing sleeps.
func TestRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{t: t, keys: []any{jwkMap(t, newEC(t).Public(), "k1", "ES256")}, cacheControl: "max-age=300"}
		type event struct {
			result string
			at     time.Time
		}
		events := make(chan event, 16)
		ctx, cancel := context.WithCancel(context.Background())
		r := NewRemote(ctx, RemoteConfig{
			JWKSURI: "http://idp.test/keys",
			Client:  &http.Client{Transport: handlerTransport{p.handler()}},
			OnFetch: func(s string) { events <- event{s, time.Now()} },
		})
		start := time.Now()
		done := make(chan struct{})
		go func() { r.Run(); close(done) }()

		// next waits for Run's next fetch and checks its result and when it
		// happened, as an offset from start within [lo, hi].
		next := func(want string, lo, hi time.Duration) time.Duration {
			t.Helper()
			e := <-events
			at := e.at.Sub(start)
			if e.result != want || at < lo || at > hi {
				t.Fatalf("fetch %q at %v, want %q in [%v, %v]", e.result, at, want, lo, hi)
			}
			return at
		}
		next("ok", 0, 0)                             // the first load, at once
		next("ok", 300*time.Second, 300*time.Second) // when max-age runs out

		p.set(func(p *provider) { p.jwksStatus = http.StatusInternalServerError })
		at := next("error", 600*time.Second, 600*time.Second)
		for n := 1; n <= 8; n++ { // backoff: 1s, 2s, 4s … capped at 1m, each with jitter
			d := backoff(n, 1)
			at = next("error", at+d/2, at+d)
		}
		if !r.Ready() {
			t.Fatal("failed refreshes dropped the set")
		}

		p.set(func(p *provider) { p.jwksStatus = 0 })
		d := backoff(9, 1)
		at = next("ok", at+d/2, at+d)
		next("ok", at+300*time.Second, at+300*time.Second) // backoff reset, max-age again

		cancel()
		<-done
		if got := p.jwksHits.Load(); got != 13 {
			t.Errorf("hits = %d, want 13", got)
		}
	})
}

// TestRunFirstLoadRetries checks that a Remote started while its issuer is
// down retries with backoff, that requests meanwhile fail fast with
// ErrNotLoaded, and that it becomes ready once the issuer is back.
func TestRunFirstLoadRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{t: t, keys: []any{jwkMap(t, newEC(t).Public(), "k1", "ES256")}, jwksStatus: http.StatusBadGateway}
		type event struct {
			result string
			at     time.Time
		}
		events := make(chan event, 16)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := NewRemote(ctx, RemoteConfig{
			JWKSURI: "http://idp.test/keys",
			Client:  &http.Client{Transport: handlerTransport{p.handler()}},
			OnFetch: func(s string) { events <- event{s, time.Now()} },
		})
		go r.Run()
		var last event
		for range 3 {
			if last = <-events; last.result != "error" {
				t.Fatalf("fetch = %q, want error", last.result)
			}
		}
		// Within RefetchInterval of Run's last attempt: no fetch of its own.
		// (OnFetch runs before the attempt releases its waiters, so Keys
		// may still join it and carry its error along.)
		if _, err := r.Keys(t.Context(), "k1"); !errors.Is(err, ErrNotLoaded) || p.jwksHits.Load() != 3 {
			t.Fatalf("Keys = %v after %d hits, want ErrNotLoaded after 3", err, p.jwksHits.Load())
		}

		p.set(func(p *provider) { p.jwksStatus = 0 })
		d := backoff(3, 1)
		ok := <-events
		if at := ok.at.Sub(last.at); ok.result != "ok" || at < d/2 || at > d {
			t.Fatalf("fetch %q after %v, want ok in [%v, %v]", ok.result, at, d/2, d)
		}
		if keys, err := r.Keys(t.Context(), "k1"); err != nil || len(keys) != 1 {
			t.Fatalf("Keys = %v, %v", keys, err)
		}
		// No Cache-Control from the issuer: the default MaxAge.
		if e := <-events; e.result != "ok" || e.at.Sub(ok.at) != time.Hour {
			t.Fatalf("next fetch %q after %v, want ok after 1h", e.result, e.at.Sub(ok.at))
		}
	})
}

// TestRunFollowsKeysFetches checks that a fetch made by Keys reschedules
// Run: after a failed refetch for an unknown kid, Run retries with backoff
// instead of waiting for the set's max-age.
func TestRunFollowsKeysFetches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &provider{t: t, keys: []any{jwkMap(t, newEC(t).Public(), "k1", "ES256")}, cacheControl: "max-age=300"}
		type event struct {
			result string
			at     time.Time
		}
		events := make(chan event, 16)
		ctx, cancel := context.WithCancel(context.Background())
		r := NewRemote(ctx, RemoteConfig{
			JWKSURI: "http://idp.test/keys",
			Client:  &http.Client{Transport: handlerTransport{p.handler()}},
			OnFetch: func(s string) { events <- event{s, time.Now()} },
		})
		done := make(chan struct{})
		go func() { r.Run(); close(done) }()
		if e := <-events; e.result != "ok" {
			t.Fatalf("first fetch %q", e.result)
		}

		// Let the bubble's fake clock pass RefetchInterval; Run stays
		// asleep until the max-age at 300s.
		<-time.After(20 * time.Second)
		p.set(func(p *provider) { p.jwksStatus = http.StatusInternalServerError })
		if _, err := r.Keys(t.Context(), "k2"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("Keys(k2) = %v, want ErrKeyNotFound", err)
		}
		failed := <-events
		if failed.result != "error" {
			t.Fatalf("Keys' fetch %q, want error", failed.result)
		}
		d := backoff(1, 1)
		if e := <-events; e.result != "error" || e.at.Sub(failed.at) < d/2 || e.at.Sub(failed.at) > d {
			t.Fatalf("Run's fetch %q after %v, want error within [%v, %v]", e.result, e.at.Sub(failed.at), d/2, d)
		}
		cancel()
		<-done
	})
}
