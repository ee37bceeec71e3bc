package issuer_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/internal/testclock"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testredis"
	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
)

// throttled is a set of issuer replicas sharing keys (and, when given one,
// a store) behind which the test plays the trusted proxy: the client
// address of each attempt is the X-Test-Client header. The clock is
// injected and the address delay is recorded, not slept.
type throttled struct {
	replicas []*idp
	clock    *testclock.Clock
	mu       sync.Mutex
	slept    []time.Duration
}

func newThrottled(t *testing.T, stores ...issuer.Store) *throttled {
	t.Helper()
	return newThrottledWith(t, testgw.AliceHash(), stores...)
}

// newThrottledCost is newThrottled with alice's hash at bcrypt cost.
func newThrottledCost(t *testing.T, cost int) *throttled {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testgw.Password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return newThrottledWith(t, string(h))
}

func newThrottledWith(t *testing.T, aliceHash string, stores ...issuer.Store) *throttled {
	t.Helper()
	th := &throttled{clock: testclock.New(time.Now())}
	keys, err := jwks.OpenKeyRing(jwks.KeyRingConfig{Now: th.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(stores) == 0 {
		stores = []issuer.Store{issuer.NewMemoryStore(issuer.MemoryConfig{Now: th.clock.Now})}
	}
	for _, store := range stores {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// Every replica has the same URL, as behind a load balancer; the
		// test sends each request to the replica it picks.
		base := "http://issuer.test"
		iss, err := issuer.New(issuer.Config{
			URL: base + "/idp", Keys: keys, Store: store, Now: th.clock.Now,
			ClientAddr: func(r *http.Request) string { return r.Header.Get("X-Test-Client") },
			Sleep: func(_ context.Context, d time.Duration) {
				th.mu.Lock()
				th.slept = append(th.slept, d)
				th.mu.Unlock()
			},
			Clients: []issuer.Client{{ID: "webapp", Name: "Web App", Secret: webSecret, RedirectURIs: []string{appRedirect},
				GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "email", "offline_access"}}},
			Users: []issuer.User{{Username: "alice", PasswordHash: aliceHash}},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(iss)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		th.replicas = append(th.replicas, &idp{url: "http://" + ln.Addr().String() + "/idp", iss: iss, clock: th.clock, keys: keys})
	}
	return th
}

// attempt signs in at replica n from browser b and client address addr,
// and reports whether it succeeded and how long its answer was held.
func (th *throttled) attempt(t *testing.T, n int, b *http.Client, addr, username, password string) (bool, time.Duration) {
	t.Helper()
	p := th.replicas[n]
	u, _ := p.authURL(nil)
	_, page := get(t, b, u)
	f := form(t, page)
	f.Set("username", username)
	f.Set("password", password)
	th.mu.Lock()
	before := len(th.slept)
	th.mu.Unlock()
	res, _ := testgw.Send(t, b, "POST", p.url+"/authorize", f, http.Header{"X-Test-Client": {addr}})
	th.mu.Lock()
	var held time.Duration
	for _, d := range th.slept[before:] {
		held += d
	}
	th.mu.Unlock()
	return res.StatusCode == http.StatusSeeOther, held
}

// signOut ends the browser's session at replica n; its device cookie stays.
func (th *throttled) signOut(t *testing.T, n int, b *http.Client) {
	t.Helper()
	if res, page := get(t, b, th.replicas[n].url+"/logout"); res.StatusCode != 200 || !strings.Contains(page, "You are signed out.") {
		t.Fatalf("sign-out: %d", res.StatusCode)
	}
}

// TestThrottleAddressSlowsNeverRefuses: a thousand failed sign-ins under
// random usernames from one address make its answers wait, at most 30s,
// and the real user with the right password from that address still gets
// in.
func TestThrottleAddressSlowsNeverRefuses(t *testing.T) {
	th := newThrottled(t)
	attacker := browser()
	var maxHeld time.Duration
	for i := range 1000 {
		ok, held := th.attempt(t, 0, attacker, "198.51.100.7", fmt.Sprintf("user%04d", i), "guess")
		if ok {
			t.Fatalf("attempt %d signed in", i)
		}
		if i < 10 && held != 0 {
			t.Fatalf("attempt %d waited %s; the first 10 failures of an address are answered at once", i, held)
		}
		maxHeld = max(maxHeld, held)
	}
	if maxHeld != 30*time.Second {
		t.Errorf("longest wait %s, want the 30s bound", maxHeld)
	}
	ok, held := th.attempt(t, 0, browser(), "198.51.100.7", "alice", testgw.Password)
	if !ok || held > 30*time.Second {
		t.Errorf("alice from the busy address: signed in %v after %s; want in, after at most 30s", ok, held)
	}
	t.Logf("1000 failures: waits up to %s; alice from the same address: in after %s", maxHeld, held)
}

// TestThrottleUserKnownBrowser: a hundred wrong passwords for alice from a
// hundred addresses lock out browsers that never signed in as alice, but
// not hers; the lock ends with the window.
func TestThrottleUserKnownBrowser(t *testing.T) {
	th := newThrottled(t)
	hers := browser()
	if ok, _ := th.attempt(t, 0, hers, "203.0.113.1", "alice", testgw.Password); !ok {
		t.Fatal("alice's first sign-in failed")
	}
	th.signOut(t, 0, hers)
	attacker := browser()
	for i := range 100 {
		if ok, _ := th.attempt(t, 0, attacker, fmt.Sprintf("192.0.2.%d", i+1), "alice", "guess"); ok {
			t.Fatalf("attempt %d signed in", i)
		}
	}
	if ok, held := th.attempt(t, 0, hers, "203.0.113.1", "alice", testgw.Password); !ok || held != 0 {
		t.Errorf("alice in her known browser: signed in %v after %s; want at once", ok, held)
	}
	th.signOut(t, 0, hers)
	fresh := browser()
	if ok, _ := th.attempt(t, 0, fresh, "203.0.113.50", "alice", testgw.Password); ok {
		t.Error("a fresh browser with the right password got in while alice is locked for unknown browsers")
	}
	// Her known browser's own mistakes lock no one.
	for range 20 {
		th.attempt(t, 0, hers, "203.0.113.1", "alice", "typo")
	}
	th.clock.Advance(16 * time.Minute)
	if ok, _ := th.attempt(t, 0, fresh, "203.0.113.50", "alice", testgw.Password); !ok {
		t.Error("a fresh browser after the window: still refused")
	}
	if ok, _ := th.attempt(t, 0, hers, "203.0.113.1", "alice", testgw.Password); !ok {
		t.Error("alice's browser after its own typos: refused")
	}
}

// TestThrottleReplicasShareCounters: with a Redis store, failures at one
// replica lock the user at the other, and a device cookie from one is
// known to the other.
func TestThrottleReplicasShareCounters(t *testing.T) {
	url, _, _ := testredis.Start(t)
	var stores []issuer.Store
	for range 2 {
		s, err := issuer.NewRedisStore(issuer.RedisConfig{URL: url, Prefix: "throttle:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	th := newThrottled(t, stores...)
	hers := browser()
	if ok, _ := th.attempt(t, 0, hers, "203.0.113.1", "alice", testgw.Password); !ok {
		t.Fatal("alice's first sign-in failed")
	}
	th.signOut(t, 0, hers)
	attacker := browser()
	for i := range 10 {
		th.attempt(t, i%2, attacker, fmt.Sprintf("192.0.2.%d", i+1), "alice", "guess")
	}
	if ok, _ := th.attempt(t, 1, browser(), "203.0.113.50", "alice", testgw.Password); ok {
		t.Error("replica 1 let a fresh browser in after 10 failures spread over both replicas")
	}
	if ok, _ := th.attempt(t, 1, hers, "203.0.113.1", "alice", testgw.Password); !ok {
		t.Error("replica 1 does not know the device cookie replica 0 gave")
	}
	// An address's failures at replica 0 slow it at replica 1.
	for i := range 12 {
		th.attempt(t, 0, attacker, "198.51.100.9", fmt.Sprintf("u%d", i), "guess")
	}
	if _, held := th.attempt(t, 1, attacker, "198.51.100.9", "u-next", "guess"); held == 0 {
		t.Error("replica 1 did not slow an address that failed 12 times at replica 0")
	}
}

// TestThrottleUnknownUserTiming: a sign-in for a username that does not
// exist takes as long as one with a wrong password for one that does
// (medians within 20%), with production-cost hashes.
func TestThrottleUnknownUserTiming(t *testing.T) {
	th := newThrottledCost(t, 10)
	var known, unknown []time.Duration
	for i := range 9 { // interleaved, so the machine's drift hits both alike
		for _, c := range []struct {
			user string
			into *[]time.Duration
		}{{"alice", &known}, {"nobody-here", &unknown}} {
			start := time.Now()
			th.attempt(t, 0, browser(), fmt.Sprintf("10.0.%d.%d", len(c.user), i), c.user, "wrong-password")
			*c.into = append(*c.into, time.Since(start))
		}
	}
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	k, u := median(known), median(unknown)
	ratio := float64(u) / float64(k)
	t.Logf("median sign-in: known %s, unknown %s (×%.2f)", k, u, ratio)
	if ratio < 0.8 || ratio > 1.2 {
		t.Errorf("unknown usernames take ×%.2f the time of known ones; want within 20%%", ratio)
	}
}
