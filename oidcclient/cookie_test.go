package oidcclient

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	cookieTestSecretA = []byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	cookieTestSecretB = []byte("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	cookieTestStart   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// cookieTestClock is a clock tests move by hand.
type cookieTestClock struct{ now time.Time }

func (c *cookieTestClock) Now() time.Time { return c.now }

// cookieTestCodec returns a codec with secrets and a clock at
// cookieTestStart, not Secure unless the test sets it up itself.
func cookieTestCodec(t testing.TB, secrets ...[]byte) (*CookieCodec, *cookieTestClock) {
	t.Helper()
	clock := &cookieTestClock{now: cookieTestStart}
	c, err := NewCookieCodec(CookieConfig{Secrets: secrets, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c, clock
}

// cookieTestSeal seals value as base and returns the cookies set.
func cookieTestSeal(t testing.TB, c *CookieCodec, r *http.Request, base string, value []byte) []*http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := c.Seal(rec, r, base, value, time.Hour); err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies()
}

// cookieTestRequest returns a request carrying cookies.
func cookieTestRequest(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range cookies {
		r.AddCookie(ck)
	}
	return r
}

// cookieTestLive returns the cookies of cks that are not deletions.
func cookieTestLive(cks []*http.Cookie) []*http.Cookie {
	var live []*http.Cookie
	for _, ck := range cks {
		if ck.MaxAge >= 0 {
			live = append(live, ck)
		}
	}
	return live
}

func TestCookieRoundTrip(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	for _, value := range [][]byte{{}, []byte("session"), bytes.Repeat([]byte{0, 0xff}, 1000)} {
		cks := cookieTestSeal(t, c, nil, "sess", value)
		if len(cks) != 1 || cks[0].Name != "sess" {
			t.Fatalf("cookies = %v, want one named sess", cks)
		}
		got, err := c.Open(cookieTestRequest(cks...), "sess")
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Open = %q, %v; want %q", got, err, value)
		}
	}
}

func TestCookieSealIsRandomised(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	a := cookieTestSeal(t, c, nil, "sess", []byte("v"))
	b := cookieTestSeal(t, c, nil, "sess", []byte("v"))
	if a[0].Value == b[0].Value {
		t.Fatal("two seals of one value are equal")
	}
}

func TestCookieChunks(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	value := bytes.Repeat([]byte("0123456789abcdef"), 12*1024/16)
	rec := httptest.NewRecorder()
	if err := c.Seal(rec, nil, "sess", value, time.Hour); err != nil {
		t.Fatal(err)
	}
	headers := rec.Result().Header.Values("Set-Cookie")
	if len(headers) < 4 {
		t.Fatalf("%d Set-Cookie headers, want several", len(headers))
	}
	for i, h := range headers {
		if len(h) > 4000 {
			t.Errorf("Set-Cookie %d is %d bytes", i, len(h))
		}
		want := cookieChunkName("sess", i) + "="
		if !strings.HasPrefix(h, want) {
			t.Errorf("Set-Cookie %d = %.20q…, want name %q", i, h, want)
		}
	}
	cks := rec.Result().Cookies()
	got, err := c.Open(cookieTestRequest(cks...), "sess")
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Open = %d bytes, %v; want %d bytes", len(got), err, len(value))
	}

	// Chunks in another order in the Cookie header still join by name.
	reversed := make([]*http.Cookie, len(cks))
	for i, ck := range cks {
		reversed[len(cks)-1-i] = ck
	}
	if got, err := c.Open(cookieTestRequest(reversed...), "sess"); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Open reversed = %d bytes, %v", len(got), err)
	}
}

func TestCookieSealTooLarge(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	rec := httptest.NewRecorder()
	if err := c.Seal(rec, nil, "sess", make([]byte, 40*1024), time.Hour); err == nil {
		t.Fatal("Seal of 40 KB succeeded")
	}
	if n := len(rec.Result().Cookies()); n != 0 {
		t.Fatalf("failed Seal set %d cookies", n)
	}
	// The largest value that fits is accepted.
	largest := cookieMaxEncoded*3/4 - cookieExtra - cookieExpirySize
	cks := cookieTestSeal(t, c, nil, "sess", make([]byte, largest))
	if len(cks) != cookieMaxChunks {
		t.Fatalf("%d chunks, want %d", len(cks), cookieMaxChunks)
	}
	if _, err := c.Open(cookieTestRequest(cks...), "sess"); err != nil {
		t.Fatal(err)
	}
}

func TestCookieLeftoverChunks(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	big := cookieTestSeal(t, c, nil, "sess", bytes.Repeat([]byte("x"), 12*1024))
	if len(big) < 3 {
		t.Fatalf("%d chunks", len(big))
	}

	// A smaller value sealed on a request that carries the big one
	// expires every chunk it does not overwrite.
	small := cookieTestSeal(t, c, cookieTestRequest(big...), "sess", []byte("small"))
	set := map[string]int{}
	for _, ck := range small {
		set[ck.Name] = ck.MaxAge
	}
	if set["sess"] <= 0 {
		t.Errorf("sess not set: %v", set)
	}
	for _, ck := range big[1:] {
		if age, ok := set[ck.Name]; !ok || age >= 0 {
			t.Errorf("leftover %s not expired: %v", ck.Name, set)
		}
	}
	got, err := c.Open(cookieTestRequest(cookieTestLive(small)...), "sess")
	if err != nil || string(got) != "small" {
		t.Fatalf("Open = %q, %v", got, err)
	}

	// Without the request, leftovers stay and the joined value is refused.
	stale := append(cookieTestLive(small), big[1:]...)
	if _, err := c.Open(cookieTestRequest(stale...), "sess"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("Open with leftovers: %v, want ErrInvalidCookie", err)
	}
}

func TestCookieClear(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	big := cookieTestSeal(t, c, nil, "sess", bytes.Repeat([]byte("x"), 12*1024))
	other := &http.Cookie{Name: "sess_other", Value: "keep"}
	rec := httptest.NewRecorder()
	c.Clear(rec, cookieTestRequest(append(big, other)...), "sess")
	cleared := rec.Result().Cookies()
	if len(cleared) != len(big) {
		t.Fatalf("cleared %d cookies, want %d", len(cleared), len(big))
	}
	for i, ck := range cleared {
		if ck.Name != big[i].Name || ck.MaxAge >= 0 || ck.Value != "" {
			t.Errorf("cleared %d = %v", i, ck)
		}
	}

	rec = httptest.NewRecorder()
	c.Clear(rec, nil, "sess")
	if cks := rec.Result().Cookies(); len(cks) != 1 || cks[0].Name != "sess" || cks[0].MaxAge >= 0 {
		t.Fatalf("Clear without request = %v", cks)
	}
}

func TestCookieRotation(t *testing.T) {
	old, _ := cookieTestCodec(t, cookieTestSecretA)
	cks := cookieTestSeal(t, old, nil, "sess", []byte("v"))

	rotated, _ := cookieTestCodec(t, cookieTestSecretB, cookieTestSecretA)
	if got, err := rotated.Open(cookieTestRequest(cks...), "sess"); err != nil || string(got) != "v" {
		t.Fatalf("rotated Open = %q, %v", got, err)
	}
	// The new secret seals.
	fresh := cookieTestSeal(t, rotated, nil, "sess", []byte("w"))
	if _, err := old.Open(cookieTestRequest(fresh...), "sess"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("old codec opened a value sealed with the new secret: %v", err)
	}

	retired, _ := cookieTestCodec(t, cookieTestSecretB)
	if _, err := retired.Open(cookieTestRequest(cks...), "sess"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("Open after the old secret was dropped: %v, want ErrInvalidCookie", err)
	}
}

func TestCookieNameBinding(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	a := cookieTestSeal(t, c, nil, "a", []byte("for a"))
	b := &http.Cookie{Name: "b", Value: a[0].Value}
	if _, err := c.Open(cookieTestRequest(b), "b"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("value of a opened as b: %v", err)
	}
	// The prefix is part of the name: a codec with the same secret but
	// another prefix does not open it either.
	secure, err := NewCookieCodec(CookieConfig{Secrets: [][]byte{cookieTestSecretA}, Secure: true, Now: func() time.Time { return cookieTestStart }})
	if err != nil {
		t.Fatal(err)
	}
	renamed := &http.Cookie{Name: secure.Name("a"), Value: a[0].Value}
	if _, err := secure.Open(cookieTestRequest(renamed), "a"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("value of a opened as %s: %v", renamed.Name, err)
	}
}

func TestCookieInvalid(t *testing.T) {
	c, clock := cookieTestCodec(t, cookieTestSecretA)
	one := cookieTestSeal(t, c, nil, "sess", []byte("value"))[0].Value
	chunks := cookieTestSeal(t, c, nil, "sess", bytes.Repeat([]byte("x"), 12*1024))
	if len(chunks) < 4 {
		t.Fatalf("%d chunks", len(chunks))
	}
	raw, err := base64.RawURLEncoding.DecodeString(one)
	if err != nil {
		t.Fatal(err)
	}
	reencode := func(edit func([]byte) []byte) string {
		b := edit(bytes.Clone(raw))
		return base64.RawURLEncoding.EncodeToString(b)
	}
	sess := func(v string) []*http.Cookie { return []*http.Cookie{{Name: "sess", Value: v}} }

	cases := []struct {
		name    string
		reason  string
		cookies []*http.Cookie
		advance time.Duration
	}{
		{name: "tampered ciphertext", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { b[len(b)/2] ^= 1; return b }))},
		{name: "tampered tag", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }))},
		{name: "tampered nonce", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { b[1] ^= 1; return b }))},
		{name: "truncated bytes", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { return b[:len(b)-1] }))},
		{name: "truncated text", reason: "cannot decrypt", cookies: sess(one[:len(one)-4])},
		{name: "header only", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { return b[:1+cookieNonceSize] }))},
		{name: "empty", reason: "cannot decrypt", cookies: sess("")},
		{name: "bad base64", reason: "cannot decrypt", cookies: sess("####" + one[4:])},
		{name: "padded base64", reason: "cannot decrypt", cookies: sess(base64.URLEncoding.EncodeToString(raw[:len(raw)-1]))},
		{name: "standard base64", reason: "cannot decrypt", cookies: sess(strings.NewReplacer("-", "+", "_", "/").Replace(one) + "+")},
		{name: "wrong version", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { b[0] = 2; return b }))},
		{name: "version zero", reason: "cannot decrypt", cookies: sess(reencode(func(b []byte) []byte { b[0] = 0; return b }))},
		{name: "expired", reason: "expired", cookies: sess(one), advance: time.Hour},
		{name: "expired long ago", reason: "expired", cookies: sess(one), advance: 1000 * time.Hour},
		{name: "missing middle chunk", reason: "missing chunk", cookies: append(append([]*http.Cookie{}, chunks[:2]...), chunks[3:]...)},
		{name: "missing first chunk", reason: "missing chunk", cookies: chunks[1:]},
		{name: "missing last chunk", reason: "cannot decrypt", cookies: chunks[:len(chunks)-1]},
		{name: "swapped chunks", reason: "cannot decrypt", cookies: []*http.Cookie{
			{Name: "sess", Value: chunks[1].Value}, {Name: "sess_1", Value: chunks[0].Value}, chunks[2], chunks[3], chunks[4],
		}},
		{name: "eleven chunks", reason: "too many chunks", cookies: cookieTestChunks("sess", 11, "AAAA")},
		{name: "chunk index 10 only", reason: "too many chunks", cookies: append(sess(one), &http.Cookie{Name: "sess_10", Value: "AAAA"})},
		{name: "oversized chunk", reason: "too large", cookies: sess(strings.Repeat("A", cookieChunkSize+1))},
		{name: "duplicates that both open", reason: "ambiguous duplicate cookies", cookies: []*http.Cookie{
			{Name: "sess", Value: one}, cookieTestSeal(t, c, nil, "sess", []byte("attacker"))[0],
		}},
		{name: "duplicates that do not open", reason: "cannot decrypt", cookies: cookieTestDuplicates("sess", 2, "AAAA")},
		{name: "too many duplicates", reason: "too many duplicate cookies", cookies: cookieTestDuplicates("sess", 17, one)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock.now = cookieTestStart.Add(tc.advance)
			defer func() { clock.now = cookieTestStart }()
			got, err := c.Open(cookieTestRequest(tc.cookies...), "sess")
			if !errors.Is(err, ErrInvalidCookie) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrInvalidCookie", got, err)
			}
			if want := "oidcclient: invalid cookie: " + tc.reason; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

// TestCookieOpaqueErrors checks that decoding failures and authentication
// failures are told apart by nothing in the error.
func TestCookieOpaqueErrors(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	other, _ := cookieTestCodec(t, cookieTestSecretB)
	foreign := cookieTestSeal(t, other, nil, "sess", []byte("v"))[0].Value
	var msgs []string
	for _, v := range []string{"####", "AAAA", foreign, foreign[:len(foreign)-1], "AQ" + foreign[2:]} {
		_, err := c.Open(cookieTestRequest(&http.Cookie{Name: "sess", Value: v}), "sess")
		msgs = append(msgs, fmt.Sprint(err))
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("errors differ: %q", msgs)
		}
	}
}

func TestCookieDuplicates(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	good := cookieTestSeal(t, c, nil, "sess", []byte("mine"))[0]
	tossed := &http.Cookie{Name: "sess", Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	for _, order := range [][]*http.Cookie{{good, tossed}, {tossed, good}} {
		if got, err := c.Open(cookieTestRequest(order...), "sess"); err != nil || string(got) != "mine" {
			t.Fatalf("Open = %q, %v; want the one that opens", got, err)
		}
	}

	// With chunks: a tossed first chunk next to the real set.
	big := cookieTestSeal(t, c, nil, "sess", bytes.Repeat([]byte("y"), 9000))
	withToss := append([]*http.Cookie{tossed}, big...)
	if got, err := c.Open(cookieTestRequest(withToss...), "sess"); err != nil || len(got) != 9000 {
		t.Fatalf("Open chunked with a tossed chunk = %d bytes, %v", len(got), err)
	}
	// Two full sets that both open are refused.
	big2 := cookieTestSeal(t, c, nil, "sess", bytes.Repeat([]byte("z"), 9000))
	if _, err := c.Open(cookieTestRequest(append(big, big2...)...), "sess"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("Open of two chunked sets = %v, want ErrInvalidCookie", err)
	}
}

func TestCookieExpiredDuplicate(t *testing.T) {
	c, clock := cookieTestCodec(t, cookieTestSecretA)
	clock.now = cookieTestStart.Add(-2 * time.Hour)
	old := cookieTestSeal(t, c, nil, "sess", []byte("old"))[0]
	clock.now = cookieTestStart
	current := cookieTestSeal(t, c, nil, "sess", []byte("current"))[0]
	if got, err := c.Open(cookieTestRequest(old, current), "sess"); err != nil || string(got) != "current" {
		t.Fatalf("Open = %q, %v; an expired duplicate must not count", got, err)
	}
}

func TestCookieNoCookie(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	for _, r := range []*http.Request{
		nil,
		cookieTestRequest(),
		cookieTestRequest(&http.Cookie{Name: "other", Value: "x"}, &http.Cookie{Name: "sess_x", Value: "x"}, &http.Cookie{Name: "sess_01", Value: "x"}),
	} {
		if _, err := c.Open(r, "sess"); err != ErrNoCookie {
			t.Fatalf("Open = %v, want ErrNoCookie", err)
		}
	}
}

func TestCookieExpiryBoundary(t *testing.T) {
	c, clock := cookieTestCodec(t, cookieTestSecretA)
	cks := cookieTestSeal(t, c, nil, "sess", []byte("v"))
	if cks[0].MaxAge != 3600 || !cks[0].Expires.Equal(cookieTestStart.Add(time.Hour)) {
		t.Fatalf("Max-Age %d, Expires %v", cks[0].MaxAge, cks[0].Expires)
	}
	clock.now = cookieTestStart.Add(time.Hour - time.Second)
	if _, err := c.Open(cookieTestRequest(cks...), "sess"); err != nil {
		t.Fatalf("Open a second before expiry: %v", err)
	}
	clock.now = cookieTestStart.Add(time.Hour)
	if _, err := c.Open(cookieTestRequest(cks...), "sess"); !errors.Is(err, ErrInvalidCookie) {
		t.Fatalf("Open at expiry: %v", err)
	}
}

func TestCookieAttributes(t *testing.T) {
	cases := []struct {
		name                 string
		cfg                  CookieConfig
		wantName             string
		wantAttrs, wantNotIn []string
	}{
		{
			name:      "host prefix",
			cfg:       CookieConfig{Secure: true, Path: "/app"},
			wantName:  "__Host-sess",
			wantAttrs: []string{"Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=3600"},
			wantNotIn: []string{"Domain=", "Path=/app"},
		},
		{
			name:      "secure prefix",
			cfg:       CookieConfig{Secure: true, Domain: "example.com", SameSite: http.SameSiteStrictMode},
			wantName:  "__Secure-sess",
			wantAttrs: []string{"Path=/", "Domain=example.com", "Secure", "HttpOnly", "SameSite=Strict"},
		},
		{
			name:      "plain",
			cfg:       CookieConfig{Path: "/app"},
			wantName:  "sess",
			wantAttrs: []string{"Path=/app", "HttpOnly", "SameSite=Lax"},
			wantNotIn: []string{"Secure", "Domain="},
		},
		{
			name:      "same site none",
			cfg:       CookieConfig{Secure: true, SameSite: http.SameSiteNoneMode},
			wantName:  "__Host-sess",
			wantAttrs: []string{"Secure", "SameSite=None"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secrets = [][]byte{cookieTestSecretA}
			c, err := NewCookieCodec(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Name("sess"); got != tc.wantName {
				t.Errorf("Name = %q, want %q", got, tc.wantName)
			}
			rec := httptest.NewRecorder()
			if err := c.Seal(rec, nil, "sess", bytes.Repeat([]byte("v"), 5000), time.Hour); err != nil {
				t.Fatal(err)
			}
			r := cookieTestRequest(rec.Result().Cookies()...)
			if got, err := c.Open(r, "sess"); err != nil || len(got) != 5000 {
				t.Fatalf("Open = %d bytes, %v", len(got), err)
			}
			headers := rec.Result().Header.Values("Set-Cookie")
			rec = httptest.NewRecorder()
			c.Clear(rec, r, "sess")
			headers = append(headers, rec.Result().Header.Values("Set-Cookie")...)
			if len(headers) != 4 {
				t.Fatalf("%d Set-Cookie headers, want 2 set and 2 cleared", len(headers))
			}
			for i, h := range headers {
				if !strings.HasPrefix(h, cookieChunkName(tc.wantName, i%2)+"=") {
					t.Errorf("header %d names the wrong cookie: %.40q", i, h)
				}
				attrs := strings.Split(h, "; ")[1:]
				for _, want := range tc.wantAttrs {
					if i >= 2 && strings.HasPrefix(want, "Max-Age=") {
						want = "Max-Age=0"
					}
					if !cookieTestHasAttr(attrs, want) {
						t.Errorf("header %d lacks %s: %q", i, want, attrs)
					}
				}
				for _, bad := range tc.wantNotIn {
					if cookieTestHasAttr(attrs, bad) {
						t.Errorf("header %d has %s: %q", i, bad, attrs)
					}
				}
			}
		})
	}
}

func cookieTestHasAttr(attrs []string, want string) bool {
	for _, a := range attrs {
		if a == want || strings.HasSuffix(want, "=") && strings.HasPrefix(a, want) {
			return true
		}
	}
	return false
}

func TestNewCookieCodecErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  CookieConfig
	}{
		{name: "no secrets", cfg: CookieConfig{}},
		{name: "short secret", cfg: CookieConfig{Secrets: [][]byte{cookieTestSecretA[:31]}}},
		{name: "short second secret", cfg: CookieConfig{Secrets: [][]byte{cookieTestSecretA, []byte("short")}}},
		{name: "empty secret", cfg: CookieConfig{Secrets: [][]byte{nil}}},
		{name: "relative path", cfg: CookieConfig{Secrets: [][]byte{cookieTestSecretA}, Path: "app"}},
		{name: "path with semicolon", cfg: CookieConfig{Secrets: [][]byte{cookieTestSecretA}, Path: "/a;Domain=evil"}},
		{name: "domain with semicolon", cfg: CookieConfig{Secrets: [][]byte{cookieTestSecretA}, Domain: "a.com;x"}},
		{name: "same site none without secure", cfg: CookieConfig{Secrets: [][]byte{cookieTestSecretA}, SameSite: http.SameSiteNoneMode}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewCookieCodec(tc.cfg); err == nil {
				t.Fatal("NewCookieCodec succeeded")
			} else if strings.Contains(err.Error(), string(cookieTestSecretA)) {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}

func TestCookieSealErrors(t *testing.T) {
	c, _ := cookieTestCodec(t, cookieTestSecretA)
	for _, tc := range []struct {
		name   string
		base   string
		maxAge time.Duration
	}{
		{name: "empty name", base: "", maxAge: time.Hour},
		{name: "name with space", base: "a b", maxAge: time.Hour},
		{name: "name with semicolon", base: "a;b", maxAge: time.Hour},
		{name: "zero max age", base: "sess", maxAge: 0},
		{name: "negative max age", base: "sess", maxAge: -time.Hour},
		{name: "sub-second max age", base: "sess", maxAge: time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := c.Seal(rec, nil, tc.base, []byte("v"), tc.maxAge); err == nil {
				t.Fatal("Seal succeeded")
			}
			if len(rec.Result().Cookies()) != 0 {
				t.Fatal("failed Seal set a cookie")
			}
		})
	}
}

// cookieTestChunks returns n chunk cookies of name, each holding value.
func cookieTestChunks(name string, n int, value string) []*http.Cookie {
	var cks []*http.Cookie
	for i := range n {
		cks = append(cks, &http.Cookie{Name: cookieChunkName(name, i), Value: value})
	}
	return cks
}

// cookieTestDuplicates returns n cookies named name, each holding value.
func cookieTestDuplicates(name string, n int, value string) []*http.Cookie {
	var cks []*http.Cookie
	for range n {
		cks = append(cks, &http.Cookie{Name: name, Value: value})
	}
	return cks
}

func FuzzOpen(f *testing.F) {
	// Seeds are sealed with secret B; the codec under test holds secret A
	// only, so nothing may ever open.
	sealer, _ := cookieTestCodec(f, cookieTestSecretB)
	opener, _ := cookieTestCodec(f, cookieTestSecretA)
	small := cookieTestSeal(f, sealer, nil, "sess", []byte("value"))
	big := cookieTestSeal(f, sealer, nil, "sess", bytes.Repeat([]byte("v"), 9000))
	header := func(cks []*http.Cookie) string {
		return cookieTestRequest(cks...).Header.Get("Cookie")
	}
	for _, seed := range []string{
		"",
		"sess=",
		"sess=AAAA",
		"sess=" + small[0].Value,
		header(big),
		header(append(small, big...)),
		"sess=a; sess=b; sess_1=c; sess_2=d",
		"sess_10=AAAA; sess=AAAA",
		"sess=\"" + small[0].Value + "\"",
		"sess=" + strings.Repeat("A", cookieChunkSize+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", cookie)
		if got, err := opener.Open(r, "sess"); err == nil {
			t.Fatalf("opened %q without the key: %q", cookie, got)
		} else if err != ErrNoCookie && !errors.Is(err, ErrInvalidCookie) {
			t.Fatalf("Open error %v is neither ErrNoCookie nor ErrInvalidCookie", err)
		}
		// The codec holding the key may open it, but must not panic and
		// must return one of the two errors otherwise.
		if _, err := sealer.Open(r, "sess"); err != nil && err != ErrNoCookie && !errors.Is(err, ErrInvalidCookie) {
			t.Fatalf("Open error %v is neither ErrNoCookie nor ErrInvalidCookie", err)
		}
	})
}

func ExampleCookieCodec() {
	codec, err := NewCookieCodec(CookieConfig{
		Secrets: [][]byte{[]byte("a secret of at least thirty-two bytes")},
		Secure:  true,
	})
	if err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	if err := codec.Seal(rec, nil, "session", []byte("alice"), 12*time.Hour); err != nil {
		panic(err)
	}

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range rec.Result().Cookies() {
		fmt.Println(ck.Name, ck.Secure, ck.HttpOnly, ck.Path)
		r.AddCookie(ck)
	}
	value, err := codec.Open(r, "session")
	fmt.Println(string(value), err)
	// Output:
	// __Host-session true true /
	// alice <nil>
}
