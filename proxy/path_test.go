package proxy

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	cases := []struct{ in, raw, key string }{
		{"/", "/", "/"},
		{"", "/", "/"},
		{"/a/b", "/a/b", "/a/b"},
		{"/a/b/", "/a/b/", "/a/b/"},
		{"//a///b", "/a/b", "/a/b"},
		{"/a/./b", "/a/b", "/a/b"},
		{"/a/../b", "/b", "/b"},
		{"/../../b", "/b", "/b"},
		{"/a/b/..", "/a/", "/a/"},
		{"/a/%2e%2e/b", "/b", "/b"},
		{"/a/%2E/b", "/a/b", "/a/b"},
		{"/a/.%2e/b", "/b", "/b"},
		{"/a%2Fb/c", "/a%2Fb/c", "/a%2Fb/c"},
		{"/a/%2F..%2F/b", "/a/%2F..%2F/b", "/a/%2F..%2F/b"},
		{"/a/%7Euser", "/a/%7Euser", "/a/~user"},
		{"/a/..%2fb", "/a/..%2fb", "/a/..%2fb"},
		{"/a/...", "/a/...", "/a/..."},
		{"/a/.hidden", "/a/.hidden", "/a/.hidden"},
	}
	for _, c := range cases {
		raw, key, ok := cleanPath(c.in)
		if !ok || raw != c.raw || key != c.key {
			t.Errorf("cleanPath(%q) = %q, %q, %v; want %q, %q", c.in, raw, key, ok, c.raw, c.key)
		}
	}
	for _, bad := range []string{"/a%zz", "/a%2", "/%"} {
		if _, _, ok := cleanPath(bad); ok {
			t.Errorf("cleanPath(%q) accepted invalid escaping", bad)
		}
	}
}

func TestSuspiciousKey(t *testing.T) {
	cases := map[string]string{
		"/public/..%2Fadmin":  "/admin",
		"/public/..%5Cadmin":  "/admin",
		"/public/..\\admin":   "/admin",
		"/public/..;/admin":   "/admin",
		"/ADMIN":              "/admin",
		"/admin;jsessionid=1": "/admin",
		"/a%2Fb":              "/a/b",
	}
	for in, want := range cases {
		if got := suspiciousKey(in); got != want {
			t.Errorf("suspiciousKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLenientReading: a path is refused when a lenient upstream (letters
// folded, as IIS does) could read it as another route's, judged with that
// upstream folding the routes' prefixes too. Mixed-case prefixes, as gRPC
// services have, serve their own paths; "/ADMIN" against "/admin", and
// "/reports" against "/Reports", are refused.
func TestLenientReading(t *testing.T) {
	var rs []*route
	for _, p := range []struct{ name, prefix string }{
		{"root", "/"}, {"health", "/grpc.health.v1.Health"}, {"admin", "/admin"}, {"Reports", "/Reports"},
	} {
		rs = append(rs, newRoute(&Route{Name: p.name, PathPrefix: p.prefix}))
	}
	tbl := newRouteTable(rs)
	for raw, ok := range map[string]bool{
		"/grpc.health.v1.Health/Check": true, "/Reports/2026": true, "/admin/x": true, "/x/Y": true,
		"/ADMIN/x": false, "/Admin": false, "/reports/2026": false, "/grpc.health.v1.health/Check": false,
	} {
		_, key, _ := cleanPath(raw)
		rt := tbl.match("", key)
		if same := !tbl.ambiguous("", raw, key, rt); same != ok {
			t.Errorf("%s (route %s): served %v, want %v", raw, rt.name, same, ok)
		}
	}
}

func TestRouteTable(t *testing.T) {
	rs := []*route{
		{name: "root", prefix: "/"},
		{name: "api", prefix: "/api"},
		{name: "api-v2", prefix: "/api/v2"},
		{name: "host-root", host: "a.example", prefix: "/"},
		{name: "host-api", host: "a.example", prefix: "/api"},
	}
	tbl := newRouteTable(rs)
	cases := []struct{ host, path, want string }{
		{"b.example", "/", "root"},
		{"b.example", "/api", "api"},
		{"b.example", "/api/", "api"},
		{"b.example", "/apix", "root"},
		{"b.example", "/api/v2/x", "api-v2"},
		{"b.example", "/api/v20", "api"},
		{"a.example", "/x", "host-root"},
		{"a.example", "/api/x", "host-api"},
		{"a.example", "/api/v2/x", "host-api"}, // the host first, then the longest prefix
		{"A.example", "/api/v2/x", "api-v2"},   // match takes requestHost's lower case
	}
	for _, c := range cases {
		if got := tbl.match(c.host, c.path); got == nil || got.name != c.want {
			t.Errorf("match(%q, %q) = %v, want %s", c.host, c.path, got, c.want)
		}
	}
	for in, want := range map[string]string{
		"A.Example:8443": "a.example", "a.example.": "a.example", "A.EXAMPLE.:80": "a.example",
		"[::1]:8080": "::1", "[::1]": "::1", "a.example..": "a.example.", "": "",
	} {
		if got := requestHost(in); got != want {
			t.Errorf("requestHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderSet(t *testing.T) {
	s := newHeaderSet([]string{"X-Auth-Request-User"})
	for _, n := range []string{"X-Auth-Request-User", "x_auth_request_user", "X-AUTH-REQUEST_USER"} {
		if !s.has(n) {
			t.Errorf("has(%q) = false", n)
		}
	}
	if s.has("X-Auth-Request-Users") || s.has(strings.Repeat("x", 100)) {
		t.Error("false positive")
	}
}

// FuzzCleanPath checks the path invariants on arbitrary input: the
// forwarded path starts with "/", has no empty or dot segments in any
// encoding, and cleaning is idempotent.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x", "/%2e%2e/", "/a%2Fb", "/.%2E/x", "/a/./b/", "\\..\\", "/;x/..;/y", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		raw, key, ok := cleanPath(in)
		if !ok {
			return
		}
		if raw == "" || raw[0] != '/' || key == "" || key[0] != '/' {
			t.Fatalf("cleanPath(%q) = %q, %q: not absolute", in, raw, key)
		}
		for _, seg := range strings.Split(key[1:], "/")[:max(0, strings.Count(key[1:], "/"))] {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("cleanPath(%q) key %q keeps segment %q", in, key, seg)
			}
		}
		raw2, key2, ok2 := cleanPath(raw)
		if !ok2 || raw2 != raw || key2 != key {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, raw, raw2)
		}
		sk := suspiciousKey(raw)
		lb := []byte(key)
		for i, c := range lb {
			if 'A' <= c && c <= 'Z' {
				lb[i] = c + 'a' - 'A'
			}
		}
		lower := string(lb)
		if len(lower) > 1 {
			lower = strings.TrimSuffix(lower, "/") // the same to every prefix (none ends in "/")
		}
		if !strings.ContainsAny(raw, `%\;`) && sk != lower {
			// ambiguous compares key, folded as it goes, in place of sk.
			t.Fatalf("%q: suspiciousKey %q is not the cleaned path %q in lower case", raw, sk, key)
		}
	})
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	cases := []struct{ remote, xff, want string }{
		{"203.0.113.9:1234", "1.2.3.4", "203.0.113.9"},                       // untrusted peer: its own address
		{"10.1.2.3:1234", "", "10.1.2.3"},                                    // trusted peer, no header
		{"10.1.2.3:1234", "198.51.100.7", "198.51.100.7"},                    // one proxy
		{"10.1.2.3:1234", "6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7"}, // spoofed left part ignored
		{"127.0.0.1:1", "garbage, 198.51.100.7", "198.51.100.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientAddr(trusted, r); got != c.want {
			t.Errorf("ClientAddr(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// FuzzRequestHost checks the host routes are chosen on: no upper case, no
// port, no trailing dot left on a name, and normalising twice changes
// nothing; a host that names a route's host exactly is matched by it.
func FuzzRequestHost(f *testing.F) {
	for _, s := range []string{"Admin.Example.:80", "[::1]:8080", "a.b.example.com", "x.", ":80", "[", "A..", "*.example.com", "[[]]"} {
		f.Add(s)
	}
	tbl := newRouteTable([]*route{
		{name: "exact", host: "a.example.com", prefix: "/"},
		{name: "wild", host: "*.example.com", prefix: "/"},
		{name: "any", prefix: "/"},
	})
	f.Fuzz(func(t *testing.T, in string) {
		h := requestHost(in)
		if strings.ContainsFunc(h, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
			t.Fatalf("requestHost(%q) = %q: upper case left", in, h)
		}
		if requestHost(h) != h && !strings.Contains(h, ":") && !strings.HasSuffix(h, ".") {
			t.Fatalf("requestHost not idempotent: %q -> %q -> %q", in, h, requestHost(h))
		}
		rt := tbl.match(h, "/")
		switch {
		case rt == nil:
			t.Fatalf("no route for %q although one names no host", h)
		case h == "a.example.com" && rt.name != "exact",
			strings.HasSuffix(h, ".example.com") && h != "a.example.com" && !strings.Contains(strings.TrimSuffix(h, ".example.com"), ".") &&
				strings.TrimSuffix(h, ".example.com") != "" && rt.name != "wild":
			t.Fatalf("host %q routed to %s", h, rt.name)
		case rt.name == "wild" && (!strings.HasSuffix(h, ".example.com") || strings.Contains(strings.TrimSuffix(h, ".example.com"), ".")):
			t.Fatalf("host %q matched the wildcard", h)
		}
	})
}
