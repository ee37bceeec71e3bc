package oidcclient

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// redirectTestAllowed is the allow-list the redirect tests run with.
var redirectTestAllowed = []string{".example.com", "exact.org", "app.other.net:8443", "  Upper.Case.IO  ", "bad entry", ""}

// redirectCases are rd values with the URL SafeRedirect must return, or ""
// when it must refuse. public is "https://good.com" unless a case says
// otherwise. CVE references are to the oauth2-proxy advisories whose
// payloads the cases replay.
var redirectCases = []struct {
	name   string
	rd     string
	public string
	want   string
}{
	// Accepted paths.
	{name: "path/root", rd: "/", want: "https://good.com/"},
	{name: "path/plain", rd: "/app/page", want: "https://good.com/app/page"},
	{name: "path/query", rd: "/app?x=1&y=2", want: "https://good.com/app?x=1&y=2"},
	{name: "path/fragment", rd: "/app#top", want: "https://good.com/app#top"},
	{name: "path/utf-8 encoded", rd: "/caf%C3%A9", want: "https://good.com/caf%C3%A9"},
	{name: "path/encoded space in query", rd: "/search?q=a%20b", want: "https://good.com/search?q=a%20b"},
	{name: "path/url in query", rd: "/cb?next=https://evil.com", want: "https://good.com/cb?next=https://evil.com"},
	{name: "path/at sign", rd: "/@evil.com", want: "https://good.com/@evil.com"},
	{name: "path/dot segments", rd: "/a/../b", want: "https://good.com/b"},
	{name: "path/encoded slash inside", rd: "/a%2Fb", want: "https://good.com/a%2Fb"},
	{name: "path/encoded percent", rd: "/100%25.txt", want: "https://good.com/100%25.txt"},
	{name: "path/public path not prefixed", rd: "/x", public: "https://good.com/base/", want: "https://good.com/x"},
	{name: "path/public with port", rd: "/x", public: "http://localhost:8080", want: "http://localhost:8080/x"},

	// Accepted absolute URLs.
	{name: "absolute/public host", rd: "https://good.com/app", want: "https://good.com/app"},
	{name: "absolute/no path", rd: "https://good.com", want: "https://good.com"},
	{name: "absolute/host case", rd: "https://GOOD.com/app", want: "https://GOOD.com/app"},
	{name: "absolute/scheme case", rd: "HTTPS://good.com/x", want: "https://good.com/x"},
	{name: "absolute/default port", rd: "https://good.com:443/x", want: "https://good.com:443/x"},
	{name: "absolute/subdomain", rd: "https://app.example.com/x", want: "https://app.example.com/x"},
	{name: "absolute/deep subdomain", rd: "https://a.b.example.com/", want: "https://a.b.example.com/"},
	{name: "absolute/exact entry", rd: "https://exact.org/x", want: "https://exact.org/x"},
	{name: "absolute/entry case and spaces", rd: "https://upper.case.io/", want: "https://upper.case.io/"},
	{name: "absolute/entry port", rd: "https://app.other.net:8443/x", want: "https://app.other.net:8443/x"},
	{name: "absolute/at in fragment", rd: "https://good.com#@evil.com", want: "https://good.com#@evil.com"},
	{name: "absolute/at in query", rd: "https://good.com?@evil.com", want: "https://good.com?@evil.com"},
	{name: "absolute/public port", rd: "http://localhost:8080/x", public: "http://localhost:8080", want: "http://localhost:8080/x"},
	{name: "absolute/http public allows http", rd: "http://app.example.com/", public: "http://localhost:8080", want: "http://app.example.com/"},
	{name: "absolute/ipv6 public", rd: "http://[::1]:8080/x", public: "http://[::1]:8080", want: "http://[::1]:8080/x"},

	// Protocol-relative and backslash forms (CVE-2020-11053).
	{name: "relative/double slash", rd: "//evil.com"},
	{name: "relative/triple slash", rd: "///evil.com"},
	{name: "relative/four slashes", rd: "////evil.com/"},
	{name: "relative/slash backslash", rd: "/\\evil.com"},
	{name: "relative/double backslash", rd: "\\\\evil.com"},
	{name: "relative/backslash slash", rd: "\\/evil.com"},
	{name: "relative/slash backslash slash", rd: "/\\/evil.com"},
	{name: "relative/backslash in path", rd: "/app\\evil"},
	{name: "relative/own host", rd: "//good.com/app"},
	{name: "relative/dot segments to double slash", rd: "/..//evil.com", want: "https://good.com/evil.com"},

	// Schemes.
	{name: "scheme/https without slashes", rd: "https:evil.com"},
	{name: "scheme/http one slash", rd: "http:/evil.com"},
	{name: "scheme/https slash backslash", rd: "https:/\\evil.com"},
	{name: "scheme/three slashes", rd: "https:///evil.com"},
	{name: "scheme/javascript", rd: "javascript:alert(1)"},
	{name: "scheme/javascript mixed case", rd: "JaVaScRiPt:alert(1)"},
	{name: "scheme/javascript after slash", rd: "/javascript:alert(1)", want: "https://good.com/javascript:alert(1)"},
	{name: "scheme/data", rd: "data:text/html,<script>alert(1)</script>"},
	{name: "scheme/data base64", rd: "data:text/html;base64,PHNjcmlwdD4="},
	{name: "scheme/vbscript", rd: "vbscript:msgbox(1)"},
	{name: "scheme/ftp", rd: "ftp://good.com/"},
	{name: "scheme/file", rd: "file:///etc/passwd"},
	{name: "scheme/downgrade to http", rd: "http://good.com/app"},
	{name: "scheme/downgrade allowed host", rd: "http://app.example.com/"},
	{name: "scheme/bare host", rd: "evil.com"},
	{name: "scheme/bare own host", rd: "good.com/app"},
	{name: "scheme/query only", rd: "?x=1"},
	{name: "scheme/encoded", rd: "https%3A%2F%2Fevil.com"},

	// Userinfo.
	{name: "userinfo/good at evil", rd: "https://good.com@evil.com"},
	{name: "userinfo/backslash at", rd: "https://evil.com\\@good.com"},
	{name: "userinfo/port at", rd: "https://good.com:443@evil.com"},
	{name: "userinfo/on own host", rd: "https://user:pass@good.com/"},
	{name: "userinfo/encoded at", rd: "https://good.com%40evil.com"},
	{name: "userinfo/evil with fragment", rd: "https://evil.com#@good.com"},
	{name: "userinfo/evil with query", rd: "https://evil.com?@good.com/"},
	{name: "userinfo/semicolon", rd: "https://good.com;@evil.com"},

	// Control characters, raw and encoded (CVE-2020-5233: browsers strip
	// tabs and newlines, so "/\t/evil.com" becomes "//evil.com").
	{name: "control/tab", rd: "/\t/evil.com"},
	{name: "control/newline", rd: "/\n/evil.com"},
	{name: "control/crlf", rd: "/\r\n/evil.com"},
	{name: "control/backslash tab", rd: "/\\\t/evil.com"},
	{name: "control/leading space", rd: " /app"},
	{name: "control/trailing space", rd: "/app "},
	{name: "control/nul", rd: "/app\x00"},
	{name: "control/leading c0", rd: "\x01/app"},
	{name: "control/del", rd: "/a\x7fb"},
	{name: "control/tab in scheme", rd: "htt\tps://good.com/"},
	{name: "control/tab in absolute host", rd: "https://go\tod.com/"},
	{name: "control/encoded tab", rd: "/%09/evil.com"},
	{name: "control/encoded newline", rd: "/%0a/evil.com"},
	{name: "control/encoded cr upper", rd: "/%0D/evil.com"},
	{name: "control/encoded nul", rd: "/app%00"},
	{name: "control/encoded newline in query", rd: "/app?x=%0aSet-Cookie:a=b"},
	{name: "control/encoded in absolute", rd: "https://good.com/%0a"},
	{name: "control/quote", rd: "/\"onmouseover=alert(1)"},
	{name: "control/angle bracket", rd: "/<script>"},

	// Encoded slashes and backslashes.
	{name: "encoded/slashes at start", rd: "%2f%2fevil.com"},
	{name: "encoded/slash after slash", rd: "/%2fevil.com"},
	{name: "encoded/slashes upper", rd: "/%2F%2Fevil.com"},
	{name: "encoded/backslash", rd: "/%5cevil.com"},
	{name: "encoded/slash backslash", rd: "%2F%5Cevil.com"},
	{name: "encoded/double encoded backslash", rd: "/%255cevil.com"},
	{name: "encoded/double encoded slash", rd: "/%252f%252fevil.com"},
	{name: "encoded/double encoded tab", rd: "/%2509/evil.com"},
	{name: "encoded/too deep", rd: "/%252525252fevil"},
	{name: "encoded/absolute path slashes", rd: "https://good.com/%2F%2Fevil.com"},
	{name: "encoded/backslash in query", rd: "/app?x=%5c"},

	// Look-alike hosts (CVE-2021-21291: suffix checks without a dot).
	{name: "lookalike/suffix", rd: "https://good.com.evil.com/"},
	{name: "lookalike/prefix", rd: "https://evilgood.com/"},
	{name: "lookalike/subdomain entry apex", rd: "https://example.com/"},
	{name: "lookalike/subdomain entry no dot", rd: "https://evilexample.com/"},
	{name: "lookalike/subdomain entry suffix", rd: "https://example.com.evil.com/"},
	{name: "lookalike/exact entry suffix", rd: "https://exact.org.evil.com/"},
	{name: "lookalike/exact entry subdomain", rd: "https://sub.exact.org/"},
	{name: "lookalike/trailing dot", rd: "https://good.com./"},
	{name: "lookalike/empty label", rd: "https://a..example.com/"},
	{name: "lookalike/underscore", rd: "https://a_b.example.com/"},
	{name: "lookalike/ideographic full stop", rd: "https://good。com/"},
	{name: "lookalike/full-width letter", rd: "https://ｅvil.com/"},
	{name: "lookalike/full-width in path", rd: "/ａpp"},
	{name: "lookalike/encoded full stop", rd: "https://good%E3%80%82com/"},
	{name: "lookalike/encoded dot", rd: "https://good%2ecom/"},
	{name: "lookalike/other host", rd: "https://evil.com/"},
	{name: "lookalike/malformed entry", rd: "https://bad entry/"},

	// Ports.
	{name: "port/other", rd: "https://good.com:8443/"},
	{name: "port/empty", rd: "https://good.com:/"},
	{name: "port/leading zero", rd: "https://good.com:0443/"},
	{name: "port/out of range", rd: "https://good.com:99999/"},
	{name: "port/not numeric", rd: "https://good.com:443x/"},
	{name: "port/on entry without port", rd: "https://app.example.com:8443/"},
	{name: "port/entry port missing", rd: "https://app.other.net/x"},
	{name: "port/default with public port", rd: "http://localhost/x", public: "http://localhost:8080"},

	// IPv6 and IP literals.
	{name: "ipv6/loopback", rd: "https://[::1]/"},
	{name: "ipv6/bracketed name", rd: "https://[good.com]/"},
	{name: "ipv6/mapped name", rd: "https://[::ffff:good.com]/"},
	{name: "ipv6/userinfo", rd: "http://[::1]@evil.com/"},
	{name: "ipv6/zone", rd: "https://[fe80::1%25eth0]/"},
	{name: "ipv6/unclosed", rd: "https://[::1/"},
	{name: "ipv6/other spelling of public", rd: "http://[0:0::1]:8080/", public: "http://[::1]:8080"},
	{name: "ipv4/literal", rd: "https://127.0.0.1/"},
	{name: "ipv4/decimal", rd: "https://2130706433/"},

	// Size.
	{name: "size/empty", rd: ""},
	{name: "size/too long", rd: "/" + strings.Repeat("a", maxRedirectLen)},
	{name: "size/longest", rd: "/" + strings.Repeat("a", maxRedirectLen-1), want: "https://good.com/" + strings.Repeat("a", maxRedirectLen-1)},
}

func TestSafeRedirect(t *testing.T) {
	for _, tc := range redirectCases {
		t.Run(tc.name, func(t *testing.T) {
			public := redirectTestURL(t, cmp.Or(tc.public, "https://good.com"))
			got, ok := SafeRedirect(tc.rd, public, redirectTestAllowed)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("SafeRedirect(%q) = %q, %v; want %q, %v", tc.rd, got, ok, tc.want, tc.want != "")
			}
			if !ok && got != "" {
				t.Errorf("refused with a non-empty URL %q", got)
			}
		})
	}
}

func TestSafeRedirectBadPublic(t *testing.T) {
	for _, public := range []*url.URL{nil, {}, {Scheme: "ftp", Host: "good.com"}, {Scheme: "https"}} {
		if got, ok := SafeRedirect("/app", public, nil); ok {
			t.Errorf("public %v: accepted %q", public, got)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, tc := range redirectCases {
		f.Add(tc.rd)
	}
	public := &url.URL{Scheme: "https", Host: "good.com"}
	f.Fuzz(func(t *testing.T, rd string) {
		got, ok := SafeRedirect(rd, public, redirectTestAllowed)
		if !ok {
			if got != "" {
				t.Fatalf("refused with %q", got)
			}
			return
		}
		if strings.ContainsFunc(rd, redirectControlOrBackslash) {
			t.Fatalf("accepted %q, which holds a control character or backslash", rd)
		}
		if dec, err := url.PathUnescape(rd); err == nil && strings.ContainsFunc(dec, redirectControlOrBackslash) {
			t.Fatalf("accepted %q, which decodes to a control character or backslash", rd)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q as %q, which does not parse: %v", rd, got, err)
		}
		if u.Scheme != "https" || u.User != nil || u.Opaque != "" {
			t.Fatalf("accepted %q as %q: scheme %q, userinfo %v, opaque %q", rd, got, u.Scheme, u.User, u.Opaque)
		}
		if !redirectFuzzHostAllowed(strings.ToLower(u.Hostname())) {
			t.Fatalf("accepted %q as %q: host %q not allowed", rd, got, u.Hostname())
		}
		if strings.HasPrefix(u.Path, "//") {
			t.Fatalf("accepted %q as %q: path %q", rd, got, u.Path)
		}
	})
}

// redirectFuzzHostAllowed is a second, simpler statement of the host rule for
// redirectTestAllowed and public https://good.com.
func redirectFuzzHostAllowed(host string) bool {
	switch host {
	case "good.com", "exact.org", "app.other.net", "upper.case.io":
		return true
	}
	return strings.HasSuffix(host, ".example.com") && len(host) > len(".example.com")
}

func redirectControlOrBackslash(r rune) bool {
	return r < ' ' || r == 0x7f || r == '\\'
}

func ExampleSafeRedirect() {
	public, _ := url.Parse("https://gateway.example.com")
	allowed := []string{".apps.example.com"}
	for _, rd := range []string{
		"/reports?year=2024",
		"https://wiki.apps.example.com/home",
		"//evil.example.net",
		"/\t/evil.example.net",
		"https://gateway.example.com@evil.example.net",
	} {
		fmt.Println(SafeRedirect(rd, public, allowed))
	}
	// Output:
	// https://gateway.example.com/reports?year=2024 true
	// https://wiki.apps.example.com/home true
	//  false
	//  false
	//  false
}

func redirectTestURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
