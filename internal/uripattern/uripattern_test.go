package uripattern

import (
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	for s, want := range map[string]string{
		"":                                "is not an absolute URL",
		"app.example.com/cb":              "is not an absolute URL",
		"ftp://example.com/cb":            `scheme "ftp" is not http or https`,
		"https://u:p@example.com/cb":      "must not hold a user name or password",
		"https://example.com/cb#x":        "must not have a #fragment",
		"https:///cb":                     "has no host",
		"https://example.com:/cb":         "has a colon without a port",
		"https://example.com:99999/cb":    `port "99999" is not a number`,
		"https://example.com:8x/cb":       `port "8x" is not a number`,
		"https://example.com:8*/cb":       "a wildcard port is written :* alone",
		"https://*example.com/cb":         "a wildcard stands for the whole first label only",
		"https://a.*.example.com/cb":      "a wildcard stands for the whole first label only",
		"https://*.*.example.com/cb":      `after "*." want a domain name`,
		"https://*.com/cb":                "at least two labels",
		"https://*./cb":                   `after "*." want a domain name`,
		"https://example.com/*":           `holds "*" in its path or query`,
		"https://example.com/cb?x=*":      `holds "*" in its path or query`,
		"https://[::1/cb":                 "without its closing ]",
		"https://[::1]x/cb":               `has "x" after its host`,
		"https://exa%41mple.com/cb":       "holds % or :",
		"https://example.com/a\x7fb":      "is not a URL",
		"https://example.com/c b\x00":     "is not a URL",
		"https://example.com:*:80/cb":     "holds % or :",
		"HTTPS://*.Example.COM:*/cb?a=1#": "must not have a #fragment",
	} {
		_, err := Parse(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", s, err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
	}{
		{"https://*.example.com/cb",
			[]string{"https://app.example.com/cb", "HTTPS://APP.Example.com/cb", "https://a-1.example.com/cb"},
			[]string{"https://example.com/cb", "https://a.b.example.com/cb", "https://.example.com/cb", "https://*.example.com/cb",
				"https://app.example.com:443/cb", "https://app.example.com/cb/", "https://app.example.com/CB", "https://app.example.com/cb?x",
				"http://app.example.com/cb", "https://app.example.com/cb#f", "https://u@app.example.com/cb", "https://appexample.com/cb",
				"https://-a.example.com/cb", "https://app.example.com.evil.com/cb"}},
		{"https://app.example.com:*/cb?x=1",
			[]string{"https://app.example.com/cb?x=1", "https://app.example.com:8443/cb?x=1", "https://app.example.com:0/cb?x=1"},
			[]string{"https://app.example.com/cb?x=2", "https://app.example.com/cb", "https://app.example.com:/cb?x=1", "https://app.example.com:x/cb?x=1"}},
		{"https://app.example.com/cb",
			[]string{"https://app.example.com/cb", "HTTPS://App.Example.Com/cb"},
			[]string{"https://app.example.com:443/cb", "https://app.example.com/cb%2F", "https://app.example.com", "app.example.com/cb", "", "https://app.example.com/c%62"}},
		{"https://*.example.com:*",
			[]string{"https://a.example.com", "https://a.example.com:1"},
			[]string{"https://a.example.com/", "https://example.com"}},
		{"http://[::1]:8080/cb",
			[]string{"http://[::1]:8080/cb"},
			[]string{"http://[::1]:8081/cb", "http://[0:0::1]:8080/cb"}},
	}
	for _, tt := range tests {
		p, err := Parse(tt.pattern)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.pattern, err)
		}
		for _, u := range tt.match {
			if !p.Match(u) {
				t.Errorf("%q does not match %q", tt.pattern, u)
			}
		}
		for _, u := range tt.noMatch {
			if p.Match(u) {
				t.Errorf("%q matches %q", tt.pattern, u)
			}
		}
	}
	if (Pattern{}).Match("https://example.com/") {
		t.Error("the zero Pattern matches")
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://*.Example.COM:*/Cb?A=1": "https://*.example.com:*/Cb?A=1",
		"http://127.0.0.1:8080":          "http://127.0.0.1:8080",
		"https://[::1]/x":                "https://[::1]/x",
	} {
		if got := MustParse(in).String(); got != want {
			t.Errorf("String() of %q = %q, want %q", in, got, want)
		}
		if got := MustParse(want).String(); got != want {
			t.Errorf("String() is not a fixed point for %q: %q", want, got)
		}
	}
	if (Pattern{}).String() != "" {
		t.Error("zero Pattern String() is not empty")
	}
}

func TestLoopback(t *testing.T) {
	for uri, want := range map[string]bool{
		"http://127.0.0.1/cb":       true,
		"http://127.0.0.1:51234/cb": true,
		"http://[::1]:8080/cb?x=1":  true,
		"HTTP://127.0.0.1:1":        true,
		"http://localhost:8080/cb":  false,
		"https://127.0.0.1:8080/cb": false,
		"http://127.0.0.2:8080/cb":  false,
		"http://[::1]:8080/cb#x":    false,
		"http://u@127.0.0.1/cb":     false,
		"http://127.0.0.1:x/cb":     false,
		"127.0.0.1:8080/cb":         false,
		"http://127.0.0.1.evil/cb":  false,
	} {
		if got := Loopback(uri); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestSameLoopback(t *testing.T) {
	tests := []struct {
		registered, got string
		want            bool
	}{
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1:9090/cb", true},
		{"http://[::1]:8080/cb?a=1", "http://[::1]/cb?a=1", true},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb2", false},
		{"http://127.0.0.1:8080/cb", "http://[::1]:8080/cb", false},
		{"http://localhost:8080/cb", "http://localhost:9090/cb", false},
		{"https://127.0.0.1:8080/cb", "https://127.0.0.1:9090/cb", false},
		{"http://127.0.0.1:8080/cb?a=1", "http://127.0.0.1:8080/cb?a=2", false},
	}
	for _, tt := range tests {
		if got := SameLoopback(tt.registered, tt.got); got != tt.want {
			t.Errorf("SameLoopback(%q, %q) = %v, want %v", tt.registered, tt.got, got, tt.want)
		}
	}
}

// canon lower-cases what a URI compares case-insensitively: everything up
// to the end of its authority.
func canon(s string) string {
	scheme, after, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	i := strings.IndexAny(after, "/?#")
	if i < 0 {
		i = len(after)
	}
	return strings.ToLower(scheme+"://"+after[:i]) + after[i:]
}

func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"https://*.example.com/cb", "https://app.example.com/cb"},
		{"https://app.example.com:*/cb?x=1", "https://app.example.com:8443/cb?x=1"},
		{"https://App.Example.com/cb", "https://app.example.com/cb"},
		{"http://[::1]:8080/cb", "http://[::1]:8080/cb"},
		{"http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"},
		{"https://example.com:/x", "https://example.com/x"},
		{"https://x.example.com/%zz", "https://x.example.com/%zz"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, uri string) {
		Loopback(uri)
		SameLoopback(pattern, uri)
		p, err := Parse(pattern)
		if err != nil {
			if p != (Pattern{}) {
				t.Fatalf("Parse(%q) returned a Pattern with its error", pattern)
			}
			return
		}
		got := p.Match(uri)
		if q, err := Parse(p.String()); err != nil || q != p {
			t.Fatalf("String() %q of %q does not parse back the same: %v", p.String(), pattern, err)
		}
		if strings.Contains(pattern, "*") {
			if got && strings.Contains(uri, "*") {
				t.Fatalf("%q matches %q, which holds a *", pattern, uri)
			}
			return
		}
		// A pattern without wildcards matches exactly the URIs equal to it.
		if !p.Match(pattern) {
			t.Fatalf("%q does not match itself", pattern)
		}
		if want := canon(uri) == canon(pattern); got != want {
			t.Fatalf("Parse(%q).Match(%q) = %v, want %v", pattern, uri, got, want)
		}
	})
}
