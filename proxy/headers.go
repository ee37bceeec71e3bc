package proxy

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/portcullis-dev/portcullis/authn"
)

// alwaysProtected are inbound headers that upstreams commonly trust as
// identity or as the original request, whatever the configuration names.
// portcullis deletes them (in every case and "_" spelling) from requests
// before forwarding, so a client can never speak for the gateway.
var alwaysProtected = []string{
	"Forwarded",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Forwarded-Prefix", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Server",
	"X-Real-Ip", "X-Original-Url", "X-Original-Uri", "X-Rewrite-Url", "X-Original-Method",
	"X-Forwarded-Access-Token", "X-Forwarded-User", "X-Forwarded-Email",
	"X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
	"X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups",
	"X-Auth-Request-Preferred-Username", "X-Auth-Request-Access-Token",
	"X-Remote-User", "Remote-User", "X-Portcullis-Route",
}

// headerSet is a set of header names compared the way lenient upstreams do:
// case-insensitively and with "_" equal to "-" (CVE-2025-64484 class).
type headerSet map[string]struct{}

func newHeaderSet(names ...[]string) headerSet {
	s := headerSet{}
	for _, list := range names {
		for _, n := range list {
			s[foldHeader(n)] = struct{}{}
		}
	}
	return s
}

// foldHeader lower-cases name and turns "_" into "-".
func foldHeader(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_':
			b[i] = '-'
		}
	}
	return string(b)
}

// has reports whether name folds to a member, without allocating for names
// up to 64 bytes.
func (s headerSet) has(name string) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		_, ok := s[foldHeader(name)]
		return ok
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		b[i] = c
	}
	_, ok := s[string(b)]
	return ok
}

// strip deletes every header of h that is in s.
func (s headerSet) strip(h http.Header) {
	for k := range h {
		if s.has(k) {
			delete(h, k)
		}
	}
}

// identityHeader is one configured header and the claim it carries.
type identityHeader struct {
	name  string // canonical
	claim string
}

func identityHeaders(m map[string]string) []identityHeader {
	out := make([]identityHeader, 0, len(m))
	for name, claim := range m {
		out = append(out, identityHeader{name: textproto.CanonicalMIMEHeaderKey(name), claim: claim})
	}
	return out
}

// setIdentity writes the identity headers; a missing claim sends no header
// and a value with control characters (which no header may carry) is
// dropped rather than sent mangled.
func setIdentity(h http.Header, hs []identityHeader, id *authn.Identity) {
	vals := make([]string, len(hs)) // one backing array for every header
	for i, ih := range hs {
		v, ok := id.ClaimString(ih.claim)
		if !ok || !validHeaderValue(v) {
			continue
		}
		vals[i] = v
		h[ih.name] = vals[i : i+1 : i+1]
	}
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// removeCookie deletes one cookie by name from a Cookie header, keeping the
// others in their original order.
func removeCookie(h http.Header, name string) {
	filterCookies(h, func(n string) bool { return n == name })
}

// removeCookiesWithPrefix deletes every cookie whose name starts with prefix.
func removeCookiesWithPrefix(h http.Header, prefix string) {
	filterCookies(h, func(n string) bool { return strings.HasPrefix(n, prefix) })
}

// filterCookies deletes the cookies whose name drop reports.
func filterCookies(h http.Header, drop func(string) bool) {
	vals := h["Cookie"]
	if len(vals) == 0 {
		return
	}
	if kept := keptCookies(vals, drop); kept != "" {
		h["Cookie"] = []string{kept}
	} else {
		delete(h, "Cookie")
	}
}

// keptCookies is the Cookie header of the cookie lines vals without the
// cookies whose name drop reports; "" when none is left.
func keptCookies(vals []string, drop func(string) bool) string {
	var b strings.Builder
	for _, line := range vals {
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			if n, _, _ := strings.Cut(p, "="); drop(strings.TrimSpace(n)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p)
		}
	}
	return b.String()
}
