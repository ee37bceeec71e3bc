package proxy

import (
	"net"
	"sort"
	"strings"
)

// routeTable finds the route for a host and a cleaned path the way nginx
// server blocks, Envoy virtual hosts and Gateway API hostnames do: the host
// first, then the longest path prefix among that host's routes.
//
// Routes naming the request's host exactly are the only candidates when
// there are any; otherwise routes naming a wildcard ("*.example.com", one
// label) that matches; otherwise routes naming no host. A host with routes
// of its own never falls through to another host's or the host-less
// routes, so protecting all of admin.example with one route at "/" cannot
// be undone by a public route elsewhere. The table is built once and never
// modified.
type routeTable struct {
	exact    map[string][]*route // by host; each longest prefix first
	wildcard map[string][]*route // by the suffix after "*."
	any      []*route            // routes naming no host
	all      []*route            // every route, as configured
	upper    bool                // some prefix has upper-case letters
}

func newRouteTable(rs []*route) *routeTable {
	t := &routeTable{exact: map[string][]*route{}, wildcard: map[string][]*route{}, all: rs}
	for _, r := range rs {
		t.upper = t.upper || r.folded != r.prefix
		switch {
		case r.host == "":
			t.any = append(t.any, r)
		case strings.HasPrefix(r.host, "*."):
			t.wildcard[r.host[2:]] = append(t.wildcard[r.host[2:]], r)
		default:
			t.exact[r.host] = append(t.exact[r.host], r)
		}
	}
	byPrefix := func(rs []*route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
	}
	byPrefix(t.any)
	for _, m := range []map[string][]*route{t.exact, t.wildcard} {
		for _, rs := range m {
			byPrefix(rs)
		}
	}
	return t
}

// Host rules, as [routeTable.candidates] reports which one chose a route.
const (
	hostRuleExact    = "exact"
	hostRuleWildcard = "wildcard"
	hostRuleAny      = "any"
)

// candidates returns the routes that may serve host (as [requestHost]
// returns it) and which host rule chose them.
func (t *routeTable) candidates(host string) ([]*route, string) {
	if rs, ok := t.exact[host]; ok {
		return rs, hostRuleExact
	}
	if i := strings.IndexByte(host, '.'); i > 0 && len(t.wildcard) > 0 {
		if rs, ok := t.wildcard[host[i+1:]]; ok {
			return rs, hostRuleWildcard
		}
	}
	return t.any, hostRuleAny
}

// match returns the route for host (as [requestHost] returns it) and path,
// or nil.
func (t *routeTable) match(host, path string) *route { return t.find(host, path, false, false) }

// matchLenient is match as a lenient upstream reads both the path and its
// own routes: path is a [suspiciousKey], and the prefixes have their
// letters folded too. "/Grpc.Health/Check" then reads as the route at
// "/Grpc.Health" did, while "/ADMIN" on a route table with "/admin" reads
// as that route.
func (t *routeTable) matchLenient(host, path string) *route { return t.find(host, path, true, false) }

// find is match, on the folded prefixes when folded is set, and then with
// the path's letters folded as it is compared when foldPath is set too.
func (t *routeTable) find(host, path string, folded, foldPath bool) *route {
	rs, _ := t.candidates(host)
	for _, r := range rs {
		prefix := r.prefix
		if folded {
			prefix = r.folded
		}
		if foldPath && prefixMatchFold(prefix, path) || !foldPath && prefixMatch(prefix, path) {
			return r
		}
	}
	return nil
}

// prefixMatchFold is prefixMatch with the path's ASCII letters folded to
// lower case, as suspiciousKey folds them; prefix is in lower case.
func prefixMatchFold(prefix, path string) bool {
	if prefix == "/" {
		return true
	}
	if len(path) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := path[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// ambiguous reports whether a lenient upstream could read the request's
// path (raw as sent, key cleaned) as another route's than rt: decoded,
// backslashes as slashes, ";params" dropped, letters folded (see
// suspiciousKey and matchLenient).
func (t *routeTable) ambiguous(host, raw, key string, rt *route) bool {
	switch {
	case strings.ContainsAny(raw, `%\;`):
		return t.matchLenient(host, suspiciousKey(raw)) != rt
	case t.upper || needsSuspicionCheck(raw):
		// Only letter case can differ: then suspiciousKey(raw) is key in
		// lower case, compared here without building it. (A lower-case
		// path may still fold onto a mixed-case prefix.)
		return t.find(host, key, true, true) != rt
	}
	return false
}

// prefixMatch matches whole segments: "/api" matches "/api" and "/api/x",
// not "/apix". A prefix given with a trailing slash behaves the same.
func prefixMatch(prefix, path string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// requestHost returns the host a request names, as routes are matched on:
// lower-case, without port, brackets or one trailing dot ("Admin.Example.:80"
// is "admin.example"). net/http has already put an absolute-form target's
// host in place of the Host header (RFC 9112 §3.2.2).
func requestHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(h, ".")
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' && !strings.ContainsAny(h[1:len(h)-1], "[]") {
		h = h[1 : len(h)-1]
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// cleanPath turns an escaped request path into the path portcullis routes on
// and forwards. Empty segments ("//") and dot segments, also percent-encoded
// ("%2e%2e"), are resolved as RFC 3986 §5.2.4 says; every other segment is
// kept exactly as the client encoded it, so an encoded slash ("%2F") stays
// inside its segment and never splits it.
//
// It returns the escaped path to forward and the match key: the same path
// with each segment decoded except for "%2F" and "%5C", which are left
// encoded. ok is false for invalid percent-encoding.
func cleanPath(escaped string) (raw, key string, ok bool) {
	if escaped == "" || escaped[0] != '/' {
		escaped = "/" + escaped
	}
	if simplePath(escaped) {
		return escaped, escaped, true
	}
	segs := strings.Split(escaped[1:], "/")
	out := make([]string, 0, len(segs))
	keys := make([]string, 0, len(segs))
	for _, s := range segs {
		dec, ok := decodeSegment(s)
		if !ok {
			return "", "", false
		}
		switch dec {
		case "", ".":
			continue
		case "..":
			if len(out) > 0 {
				out, keys = out[:len(out)-1], keys[:len(keys)-1]
			}
			continue
		}
		out = append(out, s)
		keys = append(keys, dec)
	}
	raw = "/" + strings.Join(out, "/")
	key = "/" + strings.Join(keys, "/")
	// RFC 3986 §5.2.4: a path ending in "/", "." or ".." keeps a final "/".
	last, _ := decodeSegment(segs[len(segs)-1])
	if len(out) > 0 && (last == "" || last == "." || last == "..") {
		raw += "/"
		key += "/"
	}
	return raw, key, true
}

// simplePath reports whether p needs no cleaning: no "%", no empty or dot
// segments.
func simplePath(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '%':
			return false
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
		case '.':
			if p[i-1] == '/' && (i+1 == len(p) || p[i+1] == '/' ||
				p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/')) {
				return false
			}
		}
	}
	return true
}

// decodeSegment percent-decodes s except for "%2F" and "%5C".
func decodeSegment(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if c == '/' || c == '\\' {
			b = append(b, s[i:i+3]...)
		} else {
			b = append(b, c)
		}
		i += 2
	}
	return string(b), true
}

// suspiciousKey is the most permissive reading an upstream could give the
// path: everything decoded, backslashes as slashes, ";params" dropped from
// segments (Tomcat, Jetty), dot segments resolved and letters folded (IIS).
// If it routes differently from the strict reading, the request is refused.
func suspiciousKey(raw string) string {
	dec := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if c == '\\' {
			c = '/'
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dec = append(dec, c)
	}
	segs := strings.Split(string(dec), "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// needsSuspicionCheck reports whether raw could read differently to a
// permissive upstream than it does to portcullis.
func needsSuspicionCheck(raw string) bool {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' || c == '\\' || c == ';' || 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
