package jwks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestRemote returns a Remote on a fake clock, recording OnFetch results.
func newTestRemote(t *testing.T, cfg RemoteConfig) (*Remote, *fakeClock, *fetchLog) {
	t.Helper()
	clock, log := newClock(), &fetchLog{}
	cfg.Now = clock.Now
	cfg.OnFetch = log.add
	return NewRemote(t.Context(), cfg), clock, log
}

func TestRemoteLoad(t *testing.T) {
	ec := newEC(t)
	tests := []struct {
		name          string
		cfg           func(p *provider) RemoteConfig
		discoveryHits int64
	}{
		{"discovery", func(p *provider) RemoteConfig { return RemoteConfig{Issuer: p.URL()} }, 1},
		{"discovery, issuer with trailing slash", func(p *provider) RemoteConfig {
			p.issuer = p.URL() + "/"
			return RemoteConfig{Issuer: p.URL() + "/"}
		}, 1},
		{"explicit jwks uri", func(p *provider) RemoteConfig {
			return RemoteConfig{Issuer: p.URL(), JWKSURI: p.KeysURL()}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, jwkMap(t, ec.Public(), "k1", "ES256"))
			r, clock, log := newTestRemote(t, tt.cfg(p))
			if r.Ready() || !r.Updated().IsZero() {
				t.Fatal("ready before any fetch")
			}
			if err := r.Refresh(); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			keys, err := r.Keys(t.Context(), "k1")
			if err != nil || len(keys) != 1 || !ec.PublicKey.Equal(keys[0].Public) {
				t.Fatalf("Keys = %v, %v; want the served key", keys, err)
			}
			if !r.Ready() || !r.Updated().Equal(clock.Now()) {
				t.Errorf("Ready() = %v, Updated() = %v; want true, %v", r.Ready(), r.Updated(), clock.Now())
			}
			if got := p.discoveryHits.Load(); got != tt.discoveryHits {
				t.Errorf("discovery hits = %d, want %d", got, tt.discoveryHits)
			}
			if got := p.jwksHits.Load(); got != 1 {
				t.Errorf("key set hits = %d, want 1", got)
			}
			h := p.lastRequest()
			if h.Get("Accept") != "application/json" || h.Get("Cache-Control") != "" {
				t.Errorf("first load sent Accept %q, Cache-Control %q", h.Get("Accept"), h.Get("Cache-Control"))
			}
			if r.Issuer() != tt.cfg(p).Issuer {
				t.Errorf("Issuer() = %q", r.Issuer())
			}
			if got := log.get(); len(got) != 1 || got[0] != "ok" {
				t.Errorf("OnFetch saw %v, want [ok]", got)
			}
		})
	}
}

func TestRemoteFetchErrors(t *testing.T) {
	ec := newEC(t)
	tests := []struct {
		name    string
		setup   func(p *provider) RemoteConfig
		wantErr string
	}{
		{"issuer mismatch", func(p *provider) RemoteConfig {
			p.issuer = "https://evil.example"
			return RemoteConfig{Issuer: p.URL()}
		}, "does not match"},
		{"issuer differs by trailing slash", func(p *provider) RemoteConfig {
			p.issuer = p.URL() + "/"
			return RemoteConfig{Issuer: p.URL()}
		}, "does not match"},
		{"relative jwks_uri", func(p *provider) RemoteConfig {
			p.jwksURI = "/keys"
			return RemoteConfig{Issuer: p.URL()}
		}, "not an absolute http(s) url"},
		{"ftp jwks_uri", func(p *provider) RemoteConfig {
			p.jwksURI = "ftp://example.com/keys"
			return RemoteConfig{Issuer: p.URL()}
		}, "not an absolute http(s) url"},
		{"discovery 404", func(p *provider) RemoteConfig {
			p.discoveryStatus = http.StatusNotFound
			return RemoteConfig{Issuer: p.URL()}
		}, "unexpected status 404 Not Found"},
		{"key set 503", func(p *provider) RemoteConfig {
			p.jwksStatus = http.StatusServiceUnavailable
			return RemoteConfig{JWKSURI: p.KeysURL()}
		}, "unexpected status 503 Service Unavailable"},
		{"not a key set", func(p *provider) RemoteConfig {
			p.rawBody = []byte(`{"kty":"EC"}`)
			return RemoteConfig{JWKSURI: p.KeysURL()}
		}, `no "keys" member`},
		{"not json", func(p *provider) RemoteConfig {
			p.rawBody = []byte(`<html>secret-body-text</html>`)
			return RemoteConfig{JWKSURI: p.KeysURL()}
		}, "parse key set from"},
		{"body over 1 MiB", func(p *provider) RemoteConfig {
			p.rawBody = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxBody) + `"}`)
			return RemoteConfig{JWKSURI: p.KeysURL()}
		}, "larger than 1048576 bytes"},
		{"nothing configured", func(p *provider) RemoteConfig { return RemoteConfig{} }, "neither issuer nor jwks uri"},
		{"invalid url", func(p *provider) RemoteConfig { return RemoteConfig{JWKSURI: "http://a b/"} }, "jwks: key set request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, jwkMap(t, ec.Public(), "k1", "ES256"))
			var cfg RemoteConfig
			p.set(func(p *provider) { cfg = tt.setup(p) })
			r, _, log := newTestRemote(t, cfg)
			err := r.Refresh()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Refresh error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "jwks: ") || strings.Contains(err.Error(), "secret-body-text") {
				t.Errorf("error %q: want a jwks: prefix and no response body", err)
			}
			if r.Ready() {
				t.Error("Ready after a failed fetch")
			}
			if got := log.get(); len(got) != 1 || got[0] != "error" {
				t.Errorf("OnFetch saw %v, want [error]", got)
			}
		})
	}
}

func TestRemoteDiscoveryRetry(t *testing.T) {
	p := newProvider(t, jwkMap(t, newEC(t).Public(), "k1", "ES256"))
	p.set(func(p *provider) { p.discoveryStatus = http.StatusNotFound })
	r, _, _ := newTestRemote(t, RemoteConfig{Issuer: p.URL()})
	if err := r.Refresh(); err == nil {
		t.Fatal("Refresh succeeded while discovery answers 404")
	}
	p.set(func(p *provider) { p.discoveryStatus = 0 })
	for i := range 3 {
		if err := r.Refresh(); err != nil {
			t.Fatalf("Refresh #%d: %v", i, err)
		}
	}
	// One failed and one successful discovery; afterwards it is remembered.
	if got := p.discoveryHits.Load(); got != 2 {
		t.Errorf("discovery hits = %d, want 2", got)
	}
	if got := p.jwksHits.Load(); got != 3 {
		t.Errorf("key set hits = %d, want 3", got)
	}
}

func TestRemoteUnknownKid(t *testing.T) {
	k1, k2 := jwkMap(t, newEC(t).Public(), "k1", "ES256"), jwkMap(t, newEd(t).Public(), "k2", "EdDSA")
	p := newProvider(t, k1)
	r, clock, _ := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL(), RefetchInterval: 10 * time.Second})
	ctx := t.Context()

	// Nothing loaded: the first Keys call loads the set.
	if keys, err := r.Keys(ctx, "k1"); err != nil || len(keys) != 1 {
		t.Fatalf("Keys(k1) = %v, %v", keys, err)
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Fatalf("hits = %d, want 1", got)
	}

	steps := []struct {
		name     string
		advance  time.Duration
		rotate   bool // serve k2 from now on
		kid      string
		wantErr  error
		wantHits int64
	}{
		{"known kid is served from the cache", 0, false, "k1", nil, 1},
		{"rotated key is found by one refetch", 11 * time.Second, true, "k2", nil, 2},
		{"unknown kid within the interval: no fetch", 0, false, "k3", ErrKeyNotFound, 2},
		{"still within the interval", 9 * time.Second, false, "k3", ErrKeyNotFound, 2},
		{"known kids still work", 0, false, "k1", nil, 2},
		{"interval over: refetch, still unknown", 2 * time.Second, false, "k3", ErrKeyNotFound, 3},
		{"right after that refetch: no fetch", time.Second, false, "k4", ErrKeyNotFound, 3},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		if st.rotate {
			p.set(func(p *provider) { p.keys = append(p.keys, k2) })
		}
		keys, err := r.Keys(ctx, st.kid)
		if !errors.Is(err, st.wantErr) || (err == nil && len(keys) != 1) {
			t.Fatalf("%s: Keys(%s) = %v, %v; want error %v", st.name, st.kid, keys, err, st.wantErr)
		}
		if errors.Is(err, ErrNotLoaded) {
			t.Fatalf("%s: ErrNotLoaded with a set loaded", st.name)
		}
		if got := p.jwksHits.Load(); got != st.wantHits {
			t.Fatalf("%s: hits = %d, want %d", st.name, got, st.wantHits)
		}
	}
	if cc := p.lastRequest().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("refetch sent Cache-Control %q, want no-cache", cc)
	}
	if all, _ := r.Keys(ctx, ""); len(all) != 2 {
		t.Errorf(`Keys("") returned %d keys, want 2`, len(all))
	}
}

func TestRemoteNotLoaded(t *testing.T) {
	p := newProvider(t)
	p.set(func(p *provider) { p.jwksStatus = http.StatusInternalServerError })
	fetched := make(chan string, 10)
	clock := newClock()
	r := NewRemote(t.Context(), RemoteConfig{JWKSURI: p.KeysURL(), Now: clock.Now, OnFetch: func(res string) { fetched <- res }})

	_, err := r.Keys(t.Context(), "k1")
	if !errors.Is(err, ErrNotLoaded) || errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Keys error = %v, want ErrNotLoaded wrapping the fetch error", err)
	}
	// A set that never loaded fails at once, with the last fetch's error,
	// and does not fetch again within the refetch interval.
	_, err = r.Keys(t.Context(), "")
	if !errors.Is(err, ErrNotLoaded) || !strings.Contains(err.Error(), "500") || p.jwksHits.Load() != 1 {
		t.Fatalf("second Keys = %v after %d hits, want ErrNotLoaded without a fetch", err, p.jwksHits.Load())
	}
	clock.Advance(10 * time.Second) // the default RefetchInterval
	p.set(func(p *provider) { p.jwksStatus = 0 })
	// Past it, a caller starts a fetch but does not wait for it: while
	// nothing ever loaded, nobody waits on a provider that failed before.
	entered, release := blockKeySet(t, p)
	_, err = r.Keys(t.Context(), "k1")
	if !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Keys past the interval = %v, want ErrNotLoaded at once", err)
	}
	<-entered
	release()
	if first, second := <-fetched, <-fetched; first != "error" || second != "ok" {
		t.Fatalf("fetches %s, %s", first, second)
	}
	_, err = r.Keys(t.Context(), "k1")
	if !errors.Is(err, ErrKeyNotFound) || p.jwksHits.Load() != 2 {
		t.Fatalf("Keys after recovery = %v after %d hits, want ErrKeyNotFound after 2", err, p.jwksHits.Load())
	}
}

// blockKeySet makes the provider hold key set responses until the returned
// release function is called; entered receives once per request.
func blockKeySet(t *testing.T, p *provider) (entered chan struct{}, release func()) {
	entered, rel := make(chan struct{}, 1000), make(chan struct{})
	p.set(func(p *provider) { p.entered, p.release = entered, rel })
	var once sync.Once
	release = func() { once.Do(func() { close(rel) }) }
	t.Cleanup(release) // before the server's Close, which waits for handlers
	return entered, release
}

func TestRemoteConcurrentMiss(t *testing.T) {
	const callers = 200
	k1 := jwkMap(t, newEC(t).Public(), "k1", "ES256")
	p := newProvider(t, k1)
	r, clock, _ := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL()})
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	p.set(func(p *provider) { p.keys = append(p.keys, jwkMap(t, newEd(t).Public(), "new", "EdDSA")) })
	entered, release := blockKeySet(t, p)

	var waiting sync.WaitGroup
	waiting.Add(callers)
	r.waitHook = waiting.Done // set before any Keys call; read under r.mu
	errs := make(chan error, callers)
	for range callers {
		go func() {
			keys, err := r.Keys(t.Context(), "new")
			if err == nil && len(keys) != 1 {
				err = errors.New("wrong keys")
			}
			errs <- err
		}()
	}
	<-entered      // the one fetch reached the server
	waiting.Wait() // and every caller waits on it
	release()
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("Keys: %v", err)
		}
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Errorf("key set hits = %d, want 2 (the load and one merged refetch)", got)
	}
}

func TestRemoteCallerGivesUp(t *testing.T) {
	p := newProvider(t, jwkMap(t, newEC(t).Public(), "k1", "ES256"))
	r, _, log := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL()})
	entered, release := blockKeySet(t, p)

	var waiting sync.WaitGroup
	waiting.Add(2)
	r.waitHook = waiting.Done
	impatient, cancel := context.WithCancel(t.Context())
	gaveUp, patient := make(chan error, 1), make(chan error, 1)
	go func() { _, err := r.Keys(impatient, "k1"); gaveUp <- err }()
	go func() { _, err := r.Keys(t.Context(), "k1"); patient <- err }()
	<-entered
	waiting.Wait()

	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	// The fetch is still blocked in the server: the caller returned on its own.
	release()
	if err := <-patient; err != nil {
		t.Fatalf("other caller got %v, want the key", err)
	}
	if got := log.get(); len(got) != 1 || got[0] != "ok" {
		t.Errorf("OnFetch saw %v, want [ok]: the fetch must outlive the cancelled caller", got)
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Errorf("hits = %d, want 1", got)
	}
}

func TestRemoteStaleIfError(t *testing.T) {
	tests := []struct {
		name   string
		outage func(p *provider)
	}{
		{"server closed", func(p *provider) { p.srv.Close() }},
		{"server answers 500", func(p *provider) {
			p.set(func(p *provider) { p.jwksStatus = http.StatusInternalServerError })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, jwkMap(t, newEC(t).Public(), "k1", "ES256"))
			r, clock, log := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL()})
			if err := r.Refresh(); err != nil {
				t.Fatal(err)
			}
			loadedAt := r.Updated()
			tt.outage(p)
			clock.Advance(time.Hour)

			err := r.Refresh()
			if err == nil || !strings.HasPrefix(err.Error(), "jwks: ") {
				t.Fatalf("Refresh = %v, want a jwks: error", err)
			}
			if keys, err := r.Keys(t.Context(), "k1"); err != nil || len(keys) != 1 {
				t.Fatalf("Keys(k1) = %v, %v; want the last good key", keys, err)
			}
			clock.Advance(10 * time.Second)
			_, err = r.Keys(t.Context(), "k2") // a refetch that fails
			if !errors.Is(err, ErrKeyNotFound) || errors.Is(err, ErrNotLoaded) || !strings.Contains(err.Error(), "jwks: key set") {
				t.Errorf("Keys(k2) = %v, want ErrKeyNotFound wrapping the fetch error", err)
			}
			if !r.Ready() || !r.Updated().Equal(loadedAt) {
				t.Errorf("Ready() = %v, Updated() = %v; want true, %v", r.Ready(), r.Updated(), loadedAt)
			}
			if got := log.get(); strings.Join(got, " ") != "ok error error" {
				t.Errorf("OnFetch saw %v, want [ok error error]", got)
			}
			r.mu.Lock()
			failures, next := r.failures, r.next
			r.mu.Unlock()
			if d := next.Sub(clock.Now()); failures != 2 || d < time.Second || d > 2*time.Second {
				t.Errorf("after two failures: failures = %d, next in %v; want 2, in [1s, 2s]", failures, d)
			}
		})
	}
}

func TestRemoteNotModified(t *testing.T) {
	p := newProvider(t, jwkMap(t, newEC(t).Public(), "k1", "ES256"))
	p.set(func(p *provider) { p.etag, p.cacheControl = `"v1"`, "max-age=300" })
	r, clock, log := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL()})
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	first := r.set.Load()
	clock.Advance(5 * time.Minute)
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	h := p.lastRequest()
	if h.Get("If-None-Match") != `"v1"` || h.Get("Cache-Control") != "no-cache" {
		t.Errorf("revalidation sent If-None-Match %q, Cache-Control %q", h.Get("If-None-Match"), h.Get("Cache-Control"))
	}
	if got := log.get(); len(got) != 2 || got[1] != "not_modified" {
		t.Fatalf("OnFetch saw %v, want [ok not_modified]", got)
	}
	if r.set.Load() != first {
		t.Error("a 304 replaced the set")
	}
	if !r.Updated().Equal(clock.Now()) {
		t.Errorf("Updated() = %v, want %v", r.Updated(), clock.Now())
	}
	r.mu.Lock()
	next := r.next
	r.mu.Unlock()
	if want := clock.Now().Add(5 * time.Minute); !next.Equal(want) {
		t.Errorf("next refresh = %v, want %v (the 304 renews the set's age)", next, want)
	}

	// A changed set (new ETag) is fetched in full.
	p.set(func(p *provider) { p.etag = `"v2"`; p.keys = append(p.keys, jwkMap(t, newEd(t).Public(), "k2", "")) })
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if r.set.Load().Len() != 2 || r.etag != `"v2"` {
		t.Errorf("after change: %d keys, etag %q", r.set.Load().Len(), r.etag)
	}
}

func TestRunStopsWhenContextDone(t *testing.T) {
	t.Run("cancelled before Run", func(t *testing.T) {
		p := newProvider(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := NewRemote(ctx, RemoteConfig{JWKSURI: p.KeysURL()})
		done := make(chan struct{})
		go func() { r.Run(); close(done) }()
		<-done
		if got := p.jwksHits.Load(); got != 0 {
			t.Errorf("hits = %d, want 0", got)
		}
	})
	t.Run("cancelled while waiting for the next refresh", func(t *testing.T) {
		p := newProvider(t, jwkMap(t, newEC(t).Public(), "k1", "ES256"))
		ctx, cancel := context.WithCancel(t.Context())
		fetched := make(chan string, 10)
		r := NewRemote(ctx, RemoteConfig{JWKSURI: p.KeysURL(), OnFetch: func(s string) { fetched <- s }})
		done := make(chan struct{})
		go func() { r.Run(); close(done) }()
		if got := <-fetched; got != "ok" {
			t.Fatalf("first fetch: %s", got)
		}
		if !r.Ready() {
			t.Error("not ready after the first fetch")
		}
		cancel()
		<-done
	})
	t.Run("cancelled during a fetch", func(t *testing.T) {
		p := newProvider(t)
		entered, _ := blockKeySet(t, p)
		ctx, cancel := context.WithCancel(t.Context())
		r := NewRemote(ctx, RemoteConfig{JWKSURI: p.KeysURL()})
		done := make(chan struct{})
		go func() { r.Run(); close(done) }()
		<-entered
		cancel() // aborts the request, which runs on ctx
		<-done
		if r.Ready() {
			t.Error("ready without a successful fetch")
		}
	})
}

// A key set endpoint that never answers costs each fetch Timeout, and once
// one failed, callers of a set that never loaded do not wait at all.
func TestRemoteFetchTimeout(t *testing.T) {
	p := newProvider(t)
	entered, _ := blockKeySet(t, p)
	r, _, _ := newTestRemote(t, RemoteConfig{JWKSURI: p.KeysURL(), Timeout: 100 * time.Millisecond})
	err := r.Refresh()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh of a black hole = %v, want its deadline", err)
	}
	<-entered
	_, err = r.Keys(t.Context(), "k1") // would block on the provider if it fetched
	if !errors.Is(err, ErrNotLoaded) || p.jwksHits.Load() != 1 {
		t.Fatalf("Keys = %v after %d hits, want ErrNotLoaded at once", err, p.jwksHits.Load())
	}
}
