package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ringClock is a settable clock for KeyRingConfig.Now.
type ringClock struct {
	mu sync.Mutex
	t  time.Time
}

func newRingClock() *ringClock {
	return &ringClock{t: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *ringClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ringClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openRing(t *testing.T, cfg KeyRingConfig) *KeyRing {
	t.Helper()
	k, err := OpenKeyRing(cfg)
	if err != nil {
		t.Fatalf("OpenKeyRing: %v", err)
	}
	return k
}

func kidsOf(keys []Key) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

// pemFiles lists the *.pem files in dir, sorted.
func pemFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// signToken signs a token with sk the way the issuer does.
func signToken(t *testing.T, sk SigningKey) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(sk.Algorithm), jwt.MapClaims{"sub": "alice"})
	tok.Header["kid"] = sk.ID
	s, err := tok.SignedString(sk.Signer)
	if err != nil {
		t.Fatalf("sign %s: %v", sk.Algorithm, err)
	}
	return s
}

// verifyToken verifies raw with the key ks returns for its kid, insisting
// on the key's algorithm.
func verifyToken(ks interface {
	Keys(context.Context, string) ([]Key, error)
}, raw string) error {
	_, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		keys, err := ks.Keys(context.Background(), kid)
		if err != nil {
			return nil, err
		}
		if keys[0].Algorithm != tok.Method.Alg() {
			return nil, errors.New("algorithm mismatch")
		}
		return keys[0].Public, nil
	}, jwt.WithValidMethods([]string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}))
	return err
}

func TestKeyRingFirstStart(t *testing.T) {
	clock := newRingClock()
	dir := filepath.Join(t.TempDir(), "keys") // missing: OpenKeyRing creates it
	k := openRing(t, KeyRingConfig{KeyDir: dir, RotateEvery: 24 * time.Hour, Now: clock.Now})

	checkMode(t, dir, 0o700)
	files := pemFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("key files %v, want 2 (active and next)", files)
	}
	for _, f := range append(files, stateFileName) {
		checkMode(t, filepath.Join(dir, f), 0o600)
	}
	pub := k.Public()
	if len(pub) != 2 {
		t.Fatalf("published %v, want active and next", kidsOf(pub))
	}
	a := k.Active()
	if a.Algorithm != "ES256" || a.ID != pub[0].ID || a.ID == pub[1].ID {
		t.Errorf("active %s %s, published %v", a.ID, a.Algorithm, kidsOf(pub))
	}
	if want := a.ID + ".pem"; !slices.Contains(files, want) {
		t.Errorf("no file %s in %v", want, files)
	}
	if got, want := k.NextRotation(), clock.Now().Add(24*time.Hour); !got.Equal(want) {
		t.Errorf("NextRotation = %v, want %v", got, want)
	}
	if !k.Updated().Equal(clock.Now()) || !k.Ready() {
		t.Errorf("Updated = %v, Ready = %v", k.Updated(), k.Ready())
	}
}

func TestKeyRingReopen(t *testing.T) {
	clock := newRingClock()
	dir := t.TempDir()
	cfg := KeyRingConfig{KeyDir: dir, RotateEvery: time.Hour, Now: clock.Now}
	first := openRing(t, cfg)
	clock.Advance(time.Hour)
	if changed, err := first.Rotate(); err != nil || !changed {
		t.Fatalf("Rotate = %v, %v", changed, err)
	}
	wantActive, wantPub, wantNext := first.Active().ID, kidsOf(first.Public()), first.NextRotation()
	files := pemFiles(t, dir)

	clock.Advance(time.Minute)
	cfg.Algorithm = "EdDSA" // applies to new keys only
	second := openRing(t, cfg)
	if got := second.Active(); got.ID != wantActive || got.Algorithm != "ES256" {
		t.Errorf("active after reopen %s %s, want %s ES256", got.ID, got.Algorithm, wantActive)
	}
	if got := kidsOf(second.Public()); !slices.Equal(got, wantPub) {
		t.Errorf("published after reopen %v, want %v", got, wantPub)
	}
	if got := second.NextRotation(); !got.Equal(wantNext) {
		t.Errorf("NextRotation after reopen %v, want %v", got, wantNext)
	}
	if got := pemFiles(t, dir); !slices.Equal(got, files) {
		t.Errorf("files after reopen %v, want %v", got, files)
	}
}

func TestKeyRingRefusesBadKeyFiles(t *testing.T) {
	good, err := MarshalPrivateKey(newEC(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want []string
	}{
		{"world readable", good, 0o644, []string{"chmod 600", "mode 0644"}},
		{"group readable", good, 0o640, []string{"chmod 600"}},
		{"others writable", good, 0o602, []string{"chmod 600"}},
		{"not pem", []byte("hello"), 0o600, []string{"no PEM block"}},
		{"not pkcs8", []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), 0o600, []string{"PKCS#8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "operator.pem")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeyRing(KeyRingConfig{KeyDir: dir})
			if err == nil {
				t.Fatal("OpenKeyRing accepted the file")
			}
			msg := err.Error()
			for _, w := range append(tt.want, "jwks: ", path) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "BEGIN") || strings.Contains(msg, "AAAA") {
				t.Errorf("error %q quotes the file", msg)
			}
		})
	}
}

func TestKeyRingAdoptsKeyFile(t *testing.T) {
	dir := t.TempDir()
	s, err := GenerateKey("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	data, err := MarshalPrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	k := openRing(t, KeyRingConfig{KeyDir: dir, Algorithm: "ES256", RotateEvery: 24 * time.Hour})
	want, err := thumbprintID(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if a := k.Active(); a.ID != want || a.Algorithm != "EdDSA" {
		t.Errorf("active %s %s, want the operator's key %s EdDSA", a.ID, a.Algorithm, want)
	}
	if pub := k.Public(); len(pub) != 2 || pub[1].Algorithm != "ES256" {
		t.Errorf("published %+v, want the operator's key and an ES256 next key", pub)
	}
}

func TestKeyRingConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  KeyRingConfig
		want string
	}{
		{"algorithm", KeyRingConfig{Algorithm: "HS256"}, "unsupported signing algorithm"},
		{"short period", KeyRingConfig{RotateEvery: 30 * time.Second}, "rotation period"},
		{"negative period", KeyRingConfig{RotateEvery: -time.Hour}, "rotation period"},
		{"negative retention", KeyRingConfig{RetainFor: -time.Hour}, "retention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenKeyRing(tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), "jwks: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestKeyRingRotate(t *testing.T) {
	clock := newRingClock()
	dir := t.TempDir()
	k := openRing(t, KeyRingConfig{KeyDir: dir, RotateEvery: 24 * time.Hour, RetainFor: 30 * time.Hour, Now: clock.Now})
	a := k.Active().ID
	b := k.Public()[1].ID
	oldToken := signToken(t, k.Active())

	clock.Advance(24*time.Hour - time.Second)
	if changed, err := k.Rotate(); err != nil || changed {
		t.Fatalf("Rotate before the period = %v, %v; want no change", changed, err)
	}
	if got := kidsOf(k.Public()); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("published %v, want %v", got, []string{a, b})
	}

	clock.Advance(time.Second) // 24h: B takes over, A retires, C is new
	if changed, err := k.Rotate(); err != nil || !changed {
		t.Fatalf("Rotate after the period = %v, %v", changed, err)
	}
	pub := kidsOf(k.Public())
	if len(pub) != 3 || pub[0] != b || pub[2] != a || slices.Contains([]string{a, b}, pub[1]) {
		t.Fatalf("published %v, want [%s <new next> %s]", pub, b, a)
	}
	if k.Active().ID != b || !k.Updated().Equal(clock.Now()) {
		t.Errorf("active %s updated %v, want %s at %v", k.Active().ID, k.Updated(), b, clock.Now())
	}
	if want := clock.Now().Add(24 * time.Hour); !k.NextRotation().Equal(want) {
		t.Errorf("NextRotation = %v, want %v", k.NextRotation(), want)
	}
	if err := verifyToken(k, oldToken); err != nil {
		t.Errorf("token of the retired key: %v", err)
	}
	if len(pemFiles(t, dir)) != 3 {
		t.Errorf("files %v, want 3", pemFiles(t, dir))
	}

	clock.Advance(24 * time.Hour) // 48h: A is still retained until 54h
	if changed, err := k.Rotate(); err != nil || !changed {
		t.Fatalf("second rotation = %v, %v", changed, err)
	}
	if !slices.Contains(kidsOf(k.Public()), a) {
		t.Errorf("A dropped before RetainFor: %v", kidsOf(k.Public()))
	}

	clock.Advance(6 * time.Hour) // 54h: A goes, no rotation
	next := k.NextRotation()
	if changed, err := k.Rotate(); err != nil || !changed {
		t.Fatalf("Rotate at A's expiry = %v, %v", changed, err)
	}
	if slices.Contains(kidsOf(k.Public()), a) || len(k.Public()) != 3 {
		t.Errorf("published %v, want 3 keys without %s", kidsOf(k.Public()), a)
	}
	if _, err := os.Stat(filepath.Join(dir, a+".pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file of dropped key: %v", err)
	}
	if !k.NextRotation().Equal(next) {
		t.Errorf("dropping a key moved NextRotation to %v", k.NextRotation())
	}
	if _, err := k.Keys(context.Background(), a); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Keys(dropped) err = %v, want ErrKeyNotFound", err)
	}
	if err := verifyToken(k, oldToken); err == nil {
		t.Error("token of a dropped key verified")
	}
}

// TestKeyRingPublishedBeforeSigning walks a ring through irregular Rotate
// calls and checks at every step that the active key was published a
// whole period before it signed, and that retired keys stay published for
// RetainFor.
func TestKeyRingPublishedBeforeSigning(t *testing.T) {
	const every = 10 * time.Hour
	steps := []time.Duration{time.Hour, 9 * time.Hour, time.Hour, 23 * time.Hour, 5 * time.Minute,
		10 * time.Hour, 47 * time.Hour, 10 * time.Hour, 30 * time.Minute, 9*time.Hour + 30*time.Minute, 10 * time.Hour}
	for _, retain := range []time.Duration{0, every / 2, 3 * every} {
		t.Run("retain "+retain.String(), func(t *testing.T) {
			clock := newRingClock()
			k := openRing(t, KeyRingConfig{RotateEvery: every, RetainFor: retain, Now: clock.Now})
			if retain == 0 {
				retain = every
			}
			firstSeen := map[string]time.Time{}
			retiredAt := map[string]time.Time{}
			prevPub := k.Public()
			prevActive := k.Active().ID
			for _, p := range prevPub {
				firstSeen[p.ID] = clock.Now()
			}
			for i, d := range steps {
				clock.Advance(d)
				if _, err := k.Rotate(); err != nil {
					t.Fatal(err)
				}
				now, active, pub := clock.Now(), k.Active().ID, kidsOf(k.Public())
				if !slices.Contains(kidsOf(prevPub), active) {
					t.Errorf("step %d: active %s was not published before", i, active)
				}
				if active != prevActive {
					if since := now.Sub(firstSeen[active]); since < every {
						t.Errorf("step %d: %s signs after being published only %v", i, active, since)
					}
					retiredAt[prevActive] = now
				}
				for kid, r := range retiredAt {
					if now.Before(r.Add(retain)) && !slices.Contains(pub, kid) {
						t.Errorf("step %d: %s dropped %v after retiring, RetainFor %v", i, kid, now.Sub(r), retain)
					}
				}
				for _, id := range pub {
					if _, ok := firstSeen[id]; !ok {
						firstSeen[id] = now
					}
				}
				prevPub, prevActive = k.Public(), active
			}
		})
	}
}

// TestKeyRingWithoutRotation: with rotation off the ring holds the one key
// that signs, and no next key that never would.
func TestKeyRingWithoutRotation(t *testing.T) {
	dir := t.TempDir()
	k := openRing(t, KeyRingConfig{KeyDir: dir})
	if pub := k.Public(); len(pub) != 1 || pub[0].ID != k.Active().ID {
		t.Errorf("published %d keys, want the active one only", len(pub))
	}
	if !k.NextRotation().IsZero() {
		t.Errorf("next rotation %v with rotation off", k.NextRotation())
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.pem")); len(files) != 1 {
		t.Errorf("%d key files, want 1", len(files))
	}
	// Opened again, it keeps that key.
	if again := openRing(t, KeyRingConfig{KeyDir: dir}); again.Active().ID != k.Active().ID || len(again.Public()) != 1 {
		t.Errorf("reopened: active %s, %d published", again.Active().ID, len(again.Public()))
	}
}

func TestKeyRingSignVerify(t *testing.T) {
	k := openRing(t, KeyRingConfig{RotateEvery: 24 * time.Hour})
	raw := signToken(t, k.Active())
	if err := verifyToken(k, raw); err != nil {
		t.Fatalf("verify: %v", err)
	}
	all, err := k.Keys(context.Background(), "")
	if err != nil || len(all) != 2 {
		t.Errorf("Keys(\"\") = %v, %v; want both published keys", kidsOf(all), err)
	}
	if _, err := k.Keys(context.Background(), "nope"); !errors.Is(err, ErrKeyNotFound) ||
		!strings.HasPrefix(err.Error(), "jwks: ") {
		t.Errorf("Keys(unknown) err = %v", err)
	}
}

func TestKeyRingInMemory(t *testing.T) {
	clock := newRingClock()
	k := openRing(t, KeyRingConfig{RotateEvery: time.Hour, Now: clock.Now})
	before := k.Public()
	clock.Advance(time.Hour)
	if changed, err := k.Rotate(); err != nil || !changed {
		t.Fatalf("Rotate = %v, %v", changed, err)
	}
	if k.Active().ID != before[1].ID || len(k.Public()) != 3 {
		t.Errorf("after rotation active %s published %v; before %v", k.Active().ID, kidsOf(k.Public()), kidsOf(before))
	}
	if err := verifyToken(k, signToken(t, k.Active())); err != nil {
		t.Error(err)
	}
}

func TestJWKSHandler(t *testing.T) {
	tests := []struct {
		name    string
		every   time.Duration
		advance time.Duration
		alg     string
		maxAge  string
	}{
		{"long period capped", 48 * time.Hour, 0, "ES256", "86400"},
		{"until rotation", 2 * time.Hour, 30 * time.Minute, "RS256", "5400"},
		{"floor", 2 * time.Hour, 2*time.Hour - 10*time.Second, "EdDSA", "60"},
		{"overdue", 2 * time.Hour, 3 * time.Hour, "ES384", "60"},
		{"no rotation", 0, 0, "PS256", "3600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newRingClock()
			k := openRing(t, KeyRingConfig{Algorithm: tt.alg, RotateEvery: tt.every, Now: clock.Now})
			clock.Advance(tt.advance)
			h := k.JWKSHandler()

			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
			res := rec.Result()
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/jwk-set+json" {
				t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			if got, want := res.Header.Get("Cache-Control"), "public, max-age="+tt.maxAge; got != want {
				t.Errorf("Cache-Control %q, want %q", got, want)
			}
			body := rec.Body.Bytes()
			set, err := Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := kidsOf(set.Lookup("")), kidsOf(k.Public()); !slices.Equal(got, want) || len(set.skipped) != 0 {
				t.Errorf("served %v (skipped %v), want %v", got, set.skipped, want)
			}
			assertNoPrivateMembers(t, body)

			etag := res.Header.Get("ETag")
			rec = httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/jwks", nil)
			req.Header.Set("If-None-Match", `"other", `+etag)
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotModified || etag == "" || rec.Body.Len() != 0 {
				t.Errorf("revalidation: status %d, etag %q", rec.Code, etag)
			}

			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/jwks", nil))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("POST: status %d", rec.Code)
			}
		})
	}
}

// assertNoPrivateMembers fails when any JWK in a served key set carries a
// private or symmetric key member (RFC 7518 §6).
func assertNoPrivateMembers(t *testing.T, body []byte) {
	t.Helper()
	var doc struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) == 0 {
		t.Fatal("no keys served")
	}
	for _, jk := range doc.Keys {
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := jk[m]; ok {
				t.Errorf("served key %s carries private member %q", jk["kid"], m)
			}
		}
	}
}

func TestKeyRingRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := openRing(t, KeyRingConfig{RotateEvery: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { k.Run(ctx); close(done) }()
		synctest.Wait() // Run is waiting for the rotation
		cancel()
		<-done
	})
}

// TestKeyRingRunRotates runs Run on synctest's fake clock, which also
// drives time.Now, the ring's clock.
func TestKeyRingRunRotates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := openRing(t, KeyRingConfig{RotateEvery: time.Hour, RetainFor: 90 * time.Minute})
		first, second := k.Active().ID, k.Public()[1].ID
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() { k.Run(ctx); close(done) }()

		<-time.After(time.Hour - time.Second)
		synctest.Wait()
		if k.Active().ID != first {
			t.Fatal("rotated early")
		}
		<-time.After(time.Second)
		synctest.Wait()
		if k.Active().ID != second {
			t.Fatalf("active %s after one period, want %s", k.Active().ID, second)
		}
		<-time.After(90 * time.Minute) // first retired at 1h, retained until 2h30m
		synctest.Wait()
		if slices.Contains(kidsOf(k.Public()), first) {
			t.Errorf("retired key still published: %v", kidsOf(k.Public()))
		}
		cancel()
		<-done
	})
}
