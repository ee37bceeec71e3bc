package attack_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOpenRedirectAfterLogin(t *testing.T) {
	// Payloads of CVE-2020-5233 (tabs and control characters),
	// CVE-2020-11053 (slash and backslash forms) and CVE-2021-21291
	// (look-alike suffix domains), plus schemes, userinfo and Unicode dots.
	e := newLoginEnv(t)
	host := strings.TrimPrefix(e.url, "http://")
	payloads := []string{
		"//evil.example/", "///evil.example/", "////evil.example/", "/\\evil.example", "\\\\evil.example", "\\/evil.example",
		"/\\/evil.example", "/\t/evil.example", "/%09/evil.example", "/\n/evil.example", "/%0a/evil.example",
		"/\r\n/evil.example", "/%0d%0a/evil.example", " //evil.example", "%2f%2fevil.example", "/%2f%2fevil.example",
		"/%2F%2Fevil.example", "/%5cevil.example", "%5c%5cevil.example", "/%255c%255cevil.example",
		"https://evil.example/", "http://evil.example/", "https:evil.example", "http:/\\evil.example", "HTTP://evil.example",
		"http://" + host + "@evil.example/", "http://user:pass@evil.example/", "http://" + host + ":pw@evil.example/",
		"http://evil.example\\@" + host + "/", "http://evil.example#@" + host + "/", "http://evil.example?@" + host + "/",
		"http://127.0.0.1.evil.example/", "http://" + host + ".evil.example/", "http://evil127.0.0.1/",
		"javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
		"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)",
		"http://evil。example/", "http://evil．example/", "//evil%E3%80%82example", "http://evil%2eexample/",
		"https://localhost/", "ftp://evil.example/", "evil.example",
	}
	for _, rd := range payloads {
		t.Run(strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`).Replace(rd), func(t *testing.T) {
			b := newBrowser(t)
			res, body := b.loginUntilCallback(e.url, e.url+"/oauth2/start?rd="+url.QueryEscape(rd))
			if res.StatusCode != http.StatusFound {
				t.Fatalf("callback answered %d: %.200q", res.StatusCode, body)
			}
			loc, err := url.Parse(res.Header.Get("Location"))
			if err != nil {
				t.Fatalf("Location %q: %v", res.Header.Get("Location"), err)
			}
			if loc.IsAbs() && (loc.Scheme != "http" || loc.Host != host) || loc.User != nil || loc.Opaque != "" ||
				strings.HasPrefix(loc.Path, "//") || strings.ContainsAny(res.Header.Get("Location"), "\\\t\r\n") {
				t.Fatalf("sent off the gateway to %q", res.Header.Get("Location"))
			}
			if strings.Contains(strings.ToLower(loc.Host), "evil") {
				t.Fatalf("Location %q", loc)
			}
		})
	}
	t.Run("a relative path is kept", func(t *testing.T) {
		res, _ := newBrowser(t).loginUntilCallback(e.url, e.url+"/oauth2/start?rd="+url.QueryEscape("/orders?id=7"))
		if loc := res.Header.Get("Location"); loc != e.url+"/orders?id=7" {
			t.Errorf("Location %q", loc)
		}
	})
}

func TestLoginState(t *testing.T) {
	e := newLoginEnv(t)
	page := func(t *testing.T, res *http.Response, body string, status int) {
		t.Helper()
		if res.StatusCode != status {
			t.Fatalf("status %d, want %d: %.200q", res.StatusCode, status, body)
		}
		if res.Header.Get("Location") != "" {
			t.Errorf("redirected to %q", res.Header.Get("Location"))
		}
		noLeak(t, res, body, "")
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	}
	with := func(u *url.URL, k, v string) string {
		c := *u
		q := c.Query()
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		c.RawQuery = q.Encode()
		return c.String()
	}
	t.Run("state missing", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.callbackURL(e.url, "/x")
		res, body := b.do("GET", with(cb, "state", ""), nil, nil)
		page(t, res, body, 400)
	})
	t.Run("state wrong", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.callbackURL(e.url, "/x")
		res, body := b.do("GET", with(cb, "state", "forged-state-value"), nil, nil)
		page(t, res, body, 400)
	})
	t.Run("state too long", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.callbackURL(e.url, "/x")
		res, body := b.do("GET", with(cb, "state", strings.Repeat("s", 200)), nil, nil)
		page(t, res, body, 400)
	})
	t.Run("state of another attempt in the same browser", func(t *testing.T) {
		b := newBrowser(t)
		cb1 := b.callbackURL(e.url, "/one")
		cb2 := b.callbackURL(e.url, "/two")
		res, body := b.do("GET", with(cb1, "state", cb2.Query().Get("state")), nil, nil)
		// cb2's state with cb1's code: the state is genuine, the code is
		// bound to another PKCE verifier, so the exchange fails.
		if res.StatusCode == http.StatusFound {
			t.Fatalf("a code finished another attempt's login: %q", res.Header.Get("Location"))
		}
		noLeak(t, res, body, "")
	})
	t.Run("callback replayed", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.callbackURL(e.url, "/x")
		if res, body := b.do("GET", cb.String(), nil, nil); res.StatusCode != http.StatusFound {
			t.Fatalf("genuine callback: %d %.200q", res.StatusCode, body)
		}
		// Back onto it while signed in: on to the page; the code is never
		// redeemed again and no session is written.
		res, _ := b.do("GET", cb.String(), nil, nil)
		if loc, _ := res.Location(); res.StatusCode != http.StatusFound || loc == nil || loc.Path != "/x" {
			t.Fatalf("replay while signed in: %d %v, want a redirect to /x", res.StatusCode, loc)
		}
		if h := res.Header.Values("Set-Cookie"); len(h) > 0 {
			t.Errorf("replay set cookies: %q", h)
		}
		// Without the session (copied to another browser with only the
		// finished attempt's cookie) it is a page, not a sign-in.
		c := newBrowser(t)
		u, _ := url.Parse(e.url)
		for _, ck := range b.Client.Jar.Cookies(u) {
			if strings.Contains(ck.Name, "_login_") {
				c.Client.Jar.SetCookies(u, []*http.Cookie{ck})
			}
		}
		res, body := c.do("GET", cb.String(), nil, nil)
		page(t, res, body, 200)
		if !strings.Contains(body, "already finished") {
			t.Errorf("replay without a session: %q", body)
		}
	})
	t.Run("callback in another browser (login CSRF)", func(t *testing.T) {
		cb := newBrowser(t).callbackURL(e.url, "/x")
		res, body := newBrowser(t).do("GET", cb.String(), nil, nil)
		page(t, res, body, 400)
	})
	t.Run("error response with a forged state", func(t *testing.T) {
		res, body := newBrowser(t).do("GET", e.url+"/oauth2/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E&state=x", nil, nil)
		page(t, res, body, 400)
		if strings.Contains(body, "<script>") {
			t.Error("error_description reflected unescaped")
		}
	})
	t.Run("issuer mix-up (RFC 9207)", func(t *testing.T) {
		b := newBrowser(t)
		cb := b.callbackURL(e.url, "/x")
		res, body := b.do("GET", with(cb, "iss", "https://evil.example"), nil, nil)
		page(t, res, body, 400)
	})
}

func TestTamperedSessionCookies(t *testing.T) {
	e := newLoginEnv(t)
	b := newBrowser(t)
	res, body := b.loginUntilCallback(e.url, e.url+"/oauth2/start?rd=/orders")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login: %d %s", res.StatusCode, body)
	}
	good := b.sessionCookie(e.url)
	if good == "" {
		t.Fatal("no session cookie after login")
	}
	if res, _ := send(t, "GET", e.url+"/orders", http.Header{"Cookie": {"_portcullis=" + good}}); res.StatusCode != 200 {
		t.Fatalf("genuine session: %d", res.StatusCode)
	}
	state := newBrowser(t)
	sres, _ := state.do("GET", e.url+"/oauth2/start?rd=/", nil, nil)
	var stateValue string
	for _, c := range sres.Cookies() {
		if strings.HasPrefix(c.Name, "_portcullis_login_") {
			stateValue = c.Value
		}
	}
	dec, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatalf("session cookie is not base64url: %v", err)
	}
	reenc := func(mod func([]byte)) string {
		c := append([]byte(nil), dec...)
		mod(c)
		return base64.RawURLEncoding.EncodeToString(c)
	}
	flip := func(s string, i int) string {
		r := []byte(s)
		if r[i] == 'A' {
			r[i] = 'B'
		} else {
			r[i] = 'A'
		}
		return string(r)
	}
	tampered := []struct{ name, value string }{
		{"one character flipped", flip(good, len(good)/2)},
		{"first character flipped", flip(good, 0)},
		{"last character flipped", flip(good, len(good)-1)},
		{"truncated by one", good[:len(good)-1]},
		{"truncated to half", good[:len(good)/2]},
		{"truncated to 10", good[:10]},
		{"one character appended", good + "A"},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "=="},
		{"version byte changed", reenc(func(b []byte) { b[0] ^= 0xff })},
		{"nonce byte changed", reenc(func(b []byte) { b[3] ^= 1 })},
		{"tag byte changed", reenc(func(b []byte) { b[len(b)-1] ^= 1 })},
		{"login-state cookie moved to the session name", stateValue},
		{"garbage", "garbage"},
		{"500 A", strings.Repeat("A", 500)},
		{"5000 A", strings.Repeat("A", 5000)},
		{"plain JSON in base64url", b64(`{"sub":"alice","access_token":"x"}`)},
		{"unsigned JWT", b64(`{"alg":"none"}`) + "." + b64(`{"sub":"admin"}`) + "."},
	}
	type shape struct {
		status   int
		location string
		headers  string
		bodyLen  int
	}
	var shapes []shape
	for _, tc := range tampered {
		t.Run(tc.name, func(t *testing.T) {
			before := e.up.count()
			res, body := send(t, "GET", e.url+"/orders", http.Header{"Cookie": {"_portcullis=" + tc.value}, "Accept": {"text/html"}})
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/oauth2/start?rd=%2Forders" {
				t.Fatalf("navigation: %d %q, want a login redirect", res.StatusCode, res.Header.Get("Location"))
			}
			noLeak(t, res, body, tc.value)
			var names []string
			for h := range res.Header {
				if h != "Date" {
					names = append(names, h)
				}
			}
			slices.Sort(names)
			shapes = append(shapes, shape{res.StatusCode, res.Header.Get("Location"), strings.Join(names, ","), len(body)})
			if !strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), ";"), "_portcullis=;") {
				t.Errorf("the bad cookie was not cleared: %q", res.Header.Values("Set-Cookie"))
			}
			res, body = send(t, "GET", e.url+"/orders", http.Header{"Cookie": {"_portcullis=" + tc.value}, "Accept": {"application/json"}})
			expectDenied(t, res, body, 401, "", tc.value)
			if e.up.count() != before {
				t.Error("a tampered session reached the upstream")
			}
		})
	}
	t.Run("every kind of tampering looks the same", func(t *testing.T) {
		for i, s := range shapes {
			if s != shapes[0] {
				t.Errorf("%s answers %+v, %s answers %+v", tampered[i].name, s, tampered[0].name, shapes[0])
			}
		}
	})
	t.Run("expired session", func(t *testing.T) {
		e.clk.Advance(13 * time.Hour)
		defer e.clk.Advance(-13 * time.Hour)
		res, _ := send(t, "GET", e.url+"/orders", http.Header{"Cookie": {"_portcullis=" + good}, "Accept": {"text/html"}})
		if res.StatusCode != http.StatusFound {
			t.Errorf("expired session: %d", res.StatusCode)
		}
	})
}

func TestCookieAttributes(t *testing.T) {
	e := newLoginEnv(t)
	check := func(t *testing.T, c *http.Cookie, secure bool) {
		t.Helper()
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.Secure != secure {
			t.Errorf("cookie %s: HttpOnly %v SameSite %v Path %q Domain %q Secure %v", c.Name, c.HttpOnly, c.SameSite, c.Path, c.Domain, c.Secure)
		}
	}
	b := newBrowser(t)
	t.Run("login-state cookie", func(t *testing.T) {
		res, _ := b.do("GET", e.url+"/oauth2/start?rd=/", nil, http.Header{"X-Forwarded-Proto": {"https"}})
		if len(res.Cookies()) == 0 {
			t.Fatal("no cookie")
		}
		for _, c := range res.Cookies() {
			check(t, c, false)
			if c.MaxAge <= 0 || c.MaxAge > 600 {
				t.Errorf("login-state cookie lives %ds", c.MaxAge)
			}
		}
	})
	t.Run("session cookie", func(t *testing.T) {
		res, _ := b.loginUntilCallback(e.url, e.url+"/oauth2/start?rd=/")
		var found bool
		for _, c := range res.Cookies() {
			if c.Name == "_portcullis" && c.Value != "" {
				found = true
				check(t, c, false)
			}
		}
		if !found {
			t.Fatalf("no session cookie: %v", res.Header.Values("Set-Cookie"))
		}
	})
	t.Run("session cookie never reaches the upstream", func(t *testing.T) {
		res, body := b.do("GET", e.url+"/orders", nil, http.Header{"Cookie": {"app=1"}})
		if res.StatusCode != 200 || strings.Contains(body, "_portcullis") {
			t.Errorf("%d %.300s", res.StatusCode, body)
		}
	})

	// With an https public_url the cookies are __Host- and Secure, whatever
	// an untrusted client claims about the scheme.
	he := startGateway(t, newClock(time.Now()), func(string) string {
		return strings.NewReplacer(`cookie: {secret: "cookie-secret-0123456789-0123456789-abc", secure: false}`,
			`cookie: {secret: "cookie-secret-0123456789-0123456789-abc"}`).Replace(fmt.Sprintf(loginConfig, "https://gw.example.com", e.up.URL, aliceHash))
	})
	for _, hdr := range []http.Header{nil, {"X-Forwarded-Proto": {"http"}}, {"X-Forwarded-Host": {"evil.example"}}, {"Forwarded": {"proto=http;host=evil.example"}}} {
		t.Run(fmt.Sprintf("https public_url %v", hdr), func(t *testing.T) {
			res, _ := send(t, "GET", he.url+"/oauth2/start?rd=/", hdr)
			if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "https://gw.example.com/idp/authorize?") {
				t.Fatalf("start: %d %q", res.StatusCode, res.Header.Get("Location"))
			}
			if loc, _ := url.Parse(res.Header.Get("Location")); loc.Query().Get("redirect_uri") != "https://gw.example.com/oauth2/callback" {
				t.Errorf("redirect_uri %q", loc.Query().Get("redirect_uri"))
			}
			if len(res.Cookies()) == 0 {
				t.Fatal("no cookie")
			}
			for _, c := range res.Cookies() {
				if !strings.HasPrefix(c.Name, "__Host-") {
					t.Errorf("cookie %s lacks __Host-", c.Name)
				}
				check(t, c, true)
			}
		})
	}
}

func TestSessionFixation(t *testing.T) {
	e := newLoginEnv(t)
	attacker := newBrowser(t)
	attacker.loginUntilCallback(e.url, e.url+"/oauth2/start?rd=/")
	planted := attacker.sessionCookie(e.url)
	if planted == "" {
		t.Fatal("attacker has no session")
	}
	for _, c := range []struct{ name, value string }{
		{"another user's valid session", planted},
		{"an invalid session", "fixated-session-value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			victim := newBrowser(t)
			u, _ := url.Parse(e.url)
			victim.c.Jar.SetCookies(u, []*http.Cookie{{Name: "_portcullis", Value: c.value, Path: "/"}})
			res, _ := victim.loginUntilCallback(e.url, e.url+"/oauth2/start?rd=/")
			var issued string
			for _, ck := range res.Cookies() {
				if ck.Name == "_portcullis" {
					issued = ck.Value
				}
			}
			if issued == "" || issued == c.value {
				t.Fatalf("login did not replace the planted session cookie: %v", res.Header.Values("Set-Cookie"))
			}
			if victim.sessionCookie(e.url) == c.value {
				t.Error("the planted session survived the login")
			}
		})
	}
}

func TestUntrustedForwardedHeadersOnLogin(t *testing.T) {
	e := newLoginEnv(t)
	for _, hdr := range []http.Header{
		{"X-Forwarded-Host": {"evil.example"}},
		{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"}},
		{"Forwarded": {"host=evil.example;proto=https"}},
		{"X-Original-Url": {"https://evil.example/x"}},
	} {
		name := fmt.Sprint(hdr)
		t.Run("login redirect "+name, func(t *testing.T) {
			res, body := newBrowser(t).do("GET", e.url+"/orders", nil, hdr)
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/oauth2/start?rd=%2Forders" {
				t.Fatalf("%d %q %.100q", res.StatusCode, res.Header.Get("Location"), body)
			}
		})
		t.Run("start redirect "+name, func(t *testing.T) {
			res, _ := newBrowser(t).do("GET", e.url+"/oauth2/start?rd=/x", nil, hdr)
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, e.url+"/idp/authorize?") || strings.Contains(loc, "evil") {
				t.Fatalf("%d %q", res.StatusCode, loc)
			}
		})
	}
	for _, hdr := range []http.Header{
		{"X-Forwarded-Uri": {"/public/x"}},
		{"X-Original-Url": {e.url + "/public/x"}},
		{"X-Forwarded-Uri": {"/public/x"}, "X-Forwarded-Host": {"public.example"}},
	} {
		t.Run("forward-auth "+fmt.Sprint(hdr), func(t *testing.T) {
			res, body := send(t, "GET", e.url+"/oauth2/auth", hdr)
			expectDenied(t, res, body, 401, "", "")
			if res.Header.Get("Location") != "" {
				t.Errorf("forward-auth redirected to %q", res.Header.Get("Location"))
			}
		})
	}
}

func TestPagesCarrySecurityHeaders(t *testing.T) {
	e := newLoginEnv(t)
	badRedirect, _ := e.authURL(func(v url.Values) { v.Set("redirect_uri", "https://evil.example/") })
	login, _ := e.authURL(nil)
	for _, p := range []struct {
		name, url string
		status    int
	}{
		{"issuer login page", login, 200},
		{"issuer error page", badRedirect, 400},
		{"callback error page", e.url + "/oauth2/callback?state=x&code=y", 400},
		{"gateway not-found page", e.url + "/oauth2/nope", 404},
		{"gateway 401 answer", e.url + "/api/x", 401},
		{"gateway 400 answer", e.url + "/public/..%2Fapi", 400},
		{"gateway 502 answer", e.url + "/dead/x", 502},
	} {
		t.Run(p.name, func(t *testing.T) {
			res, body := newBrowser(t).do("GET", p.url, nil, nil)
			if res.StatusCode != p.status {
				t.Fatalf("status %d, want %d", res.StatusCode, p.status)
			}
			noLeak(t, res, body, "")
			if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
				res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("Cache-Control") != "no-store" ||
				res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v", res.Header)
			}
		})
	}
}
