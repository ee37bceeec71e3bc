package oidcclient

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Redirect limits.
const (
	// maxRedirectLen bounds the rd parameter, in bytes.
	maxRedirectLen = 2048

	// maxRedirectDecodes bounds how many layers of percent-encoding are
	// peeled off while looking for hidden slashes, backslashes and control
	// characters; a value still changing after that is refused.
	maxRedirectDecodes = 4
)

// SafeRedirect returns the URL to send the browser to after login, taken
// from the rd parameter of a login request, or ok false when rd is not
// provably a place on the gateway or on an allowed host. It is the guard
// against open redirects: when in doubt, it refuses.
//
// Accepted are:
//   - a path starting with exactly one "/", made absolute against public
//     (its scheme and host; public's own path is not prefixed);
//   - an absolute http or https URL whose host, compared case-insensitively,
//     is public's host, or matches an entry of allowed: "example.com"
//     matches that host only, ".example.com" any subdomain of example.com
//     but not example.com itself. The port, explicit or implied by the
//     scheme, must equal public's port (for public's host) or the entry's
//     port ("app.example.com:8443"; none means the scheme's default). When
//     public is https, so must the URL be.
//
// Refused, among others: protocol-relative and backslash forms ("//evil",
// "/\evil"), other schemes and scheme-relative forms ("javascript:",
// "https:evil", "http:/evil"), userinfo ("https://good.com@evil.com"),
// control characters, spaces, tabs and newlines raw or percent-encoded
// (browsers strip tabs and newlines, which turns "/\t/evil" into "//evil"),
// any backslash even percent-encoded, any non-ASCII byte, percent-encoding
// in the host, paths that decode to "//…", IPv6 literals other than one
// that is exactly public's host, a trailing dot or empty port, and anything
// empty or over 2048 bytes.
func SafeRedirect(rd string, public *url.URL, allowed []string) (string, bool) {
	if public == nil || (public.Scheme != "http" && public.Scheme != "https") || public.Hostname() == "" {
		return "", false
	}
	if len(rd) == 0 || len(rd) > maxRedirectLen || !redirectBytesValid(rd) || !redirectLayersValid(rd) {
		return "", false
	}

	var target *url.URL
	switch {
	case rd[0] == '/':
		// A path, never "//host" (protocol-relative); the backslash form
		// "/\host", which browsers read the same way, is already refused.
		if len(rd) > 1 && rd[1] == '/' {
			return "", false
		}
		ref, err := url.Parse(rd)
		if err != nil || ref.Scheme != "" || ref.Host != "" || ref.User != nil || ref.Opaque != "" {
			return "", false
		}
		target = public.ResolveReference(ref)
	case redirectHasPrefixFold(rd, "https://") || redirectHasPrefixFold(rd, "http://"):
		u, err := url.Parse(rd)
		if err != nil || u.Opaque != "" || u.User != nil {
			return "", false
		}
		// Read the authority from rd itself as well as from the parse, so
		// a parser disagreement cannot slip a host past the check.
		rest := rd[strings.Index(rd, "//")+2:]
		authority := rest[:redirectAuthorityEnd(rest)]
		host, port, ok := redirectSplitAuthority(authority)
		if !ok || !strings.EqualFold(host, u.Hostname()) || port != u.Port() {
			return "", false
		}
		target = u
	default:
		return "", false
	}

	// Check the result as the browser will see it.
	out := target.String()
	if !redirectTargetValid(out, public, allowed) {
		return "", false
	}
	return out, true
}

// redirectTargetValid parses the absolute URL s and reports whether it
// goes to public's origin or an allowed host, without userinfo, and with
// a path that does not decode to "//…".
func redirectTargetValid(s string, public *url.URL, allowed []string) bool {
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Opaque != "" {
		return false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	if public.Scheme == "https" && u.Scheme != "https" {
		return false
	}
	host, port, ok := redirectSplitAuthority(u.Host)
	if !ok {
		return false
	}
	// Some applications decode a path before redirecting to it, which
	// would turn "/%2F%2Fevil" into "//evil".
	p := u.EscapedPath()
	for range maxRedirectDecodes + 1 {
		if strings.HasPrefix(p, "//") {
			return false
		}
		p = redirectPercentDecode(p)
	}
	return redirectHostAllowed(strings.ToLower(host), redirectEffectivePort(u.Scheme, port), public, allowed)
}

// redirectHostAllowed reports whether host (lower case) on port is
// public's host and port or matches an entry of allowed.
func redirectHostAllowed(host string, port int, public *url.URL, allowed []string) bool {
	if host == strings.ToLower(public.Hostname()) && port == redirectEffectivePort(public.Scheme, public.Port()) {
		return true
	}
	for _, entry := range allowed {
		entry = strings.ToLower(strings.TrimSpace(entry))
		subdomains := strings.HasPrefix(entry, ".")
		eHost, ePort, ok := redirectSplitAuthority(strings.TrimPrefix(entry, "."))
		if !ok || eHost == "" {
			continue // a malformed entry matches nothing
		}
		if ePort != "" && port != redirectEffectivePort("", ePort) {
			continue
		}
		if ePort == "" && port != 80 && port != 443 {
			continue
		}
		if subdomains && strings.HasSuffix(host, "."+eHost) && !strings.Contains(eHost, ":") {
			return true
		}
		if !subdomains && host == eHost {
			return true
		}
	}
	return false
}

// redirectEffectivePort returns the explicit port, or the default of scheme; 0
// when neither is known.
func redirectEffectivePort(scheme, port string) int {
	if port != "" {
		n, _ := strconv.Atoi(port)
		return n
	}
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// redirectSplitAuthority splits an authority without userinfo into host
// and port, and reports whether both are strictly well formed: a DNS name
// of ASCII letters, digits and hyphens without a trailing dot, or a
// bracketed IPv6 address without a zone; a port of 1 to 65535 without
// leading zeros. An IPv6 host is returned without its brackets, as
// [url.URL.Hostname] does.
func redirectSplitAuthority(a string) (host, port string, ok bool) {
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", "", false
		}
		addr, err := netip.ParseAddr(a[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", false
		}
		host, a = a[1:end], a[end+1:]
		if a == "" {
			return host, "", true
		}
		if a[0] != ':' {
			return "", "", false
		}
		port = a[1:]
	} else {
		host, port, _ = strings.Cut(a, ":")
		if !redirectDNSNameValid(host) || (strings.Contains(a, ":") && port == "") {
			return "", "", false
		}
		if !strings.Contains(a, ":") {
			return host, "", true
		}
	}
	if !redirectPortValid(port) {
		return "", "", false
	}
	return host, port, true
}

// redirectDNSNameValid reports whether s is a host name of dot-separated labels of
// ASCII letters, digits and inner hyphens (an IPv4 address qualifies).
func redirectDNSNameValid(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}

// redirectPortValid reports whether s is a decimal port 1–65535 without a leading
// zero.
func redirectPortValid(s string) bool {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, _ := strconv.Atoi(s)
	return n <= 65535
}

// redirectBytesValid reports whether every byte of s is printable ASCII
// other than space, backslash, and the characters browsers escape
// themselves (`"<>` and backtick).
func redirectBytesValid(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte("\\\"<>`", b) >= 0 {
			return false
		}
	}
	return true
}

// redirectLayersValid peels off percent-encoding layer by layer and reports
// whether no layer holds a control character or a backslash, and the
// value stops changing within [maxRedirectDecodes] layers.
func redirectLayersValid(s string) bool {
	for range maxRedirectDecodes {
		d := redirectPercentDecode(s)
		if d == s {
			return true
		}
		for i := 0; i < len(d); i++ {
			if b := d[i]; b < ' ' || b == 0x7f || b == '\\' {
				return false
			}
		}
		s = d
	}
	return false
}

// redirectPercentDecode decodes every well-formed %XX in s and keeps anything else
// as it is, as a lenient server would.
func redirectPercentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && redirectIsHex(s[i+1]) && redirectIsHex(s[i+2]) {
			b.WriteByte(redirectUnhex(s[i+1])<<4 | redirectUnhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func redirectIsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func redirectUnhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// redirectAuthorityEnd returns the length of the authority at the start of
// s, which ends at the first "/", "?" or "#".
func redirectAuthorityEnd(s string) int {
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		return i
	}
	return len(s)
}

func redirectHasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
