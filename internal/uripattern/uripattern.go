// Package uripattern matches redirect URIs against patterns, for clients
// that register themselves (RFC 7591): a pattern may let the first label of
// the host or the port vary, and nothing else. It also recognises the
// loopback redirect URIs of native apps (RFC 8252 §7.3), whose port is
// chosen at request time.
package uripattern

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Pattern is a redirect URI pattern: an absolute http(s) URL without
// userinfo or fragment whose host may begin with "*." (exactly one
// non-empty DNS label, no dots, e.g. https://*.example.com/cb matches
// https://app.example.com/cb but not https://example.com/cb or
// https://a.b.example.com/cb) and whose port may be "*" (any port, or
// none). Path and query are compared exactly, byte for byte on the escaped
// form. Scheme and host compare case-insensitively. No wildcard anywhere
// else (a "*" elsewhere is an error).
//
// The zero Pattern matches nothing.
type Pattern struct {
	scheme string // "http" or "https"
	// host is the lower-cased host as written, brackets kept for IPv6;
	// with wildHost, the part after "*" (".example.com").
	host     string
	wildHost bool
	// port is the port as written; hasPort says there was one, wildPort
	// that it was "*".
	port     string
	hasPort  bool
	wildPort bool
	// rest is everything after the authority: path and query, escaped as
	// written.
	rest string
}

// parts is a URI cut into its pieces, as written.
type parts struct {
	scheme, host, port string
	hasPort            bool
	rest               string
}

// split cuts s into scheme, host, port and the rest, without validating
// more than it needs to find them.
func split(s string) (parts, error) {
	var p parts
	scheme, after, ok := strings.Cut(s, "://")
	if !ok {
		return p, errors.New("is not an absolute URL")
	}
	p.scheme = strings.ToLower(scheme)
	if p.scheme != "http" && p.scheme != "https" {
		return p, fmt.Errorf("scheme %q is not http or https", scheme)
	}
	authority := after
	if i := strings.IndexAny(after, "/?#"); i >= 0 {
		authority, p.rest = after[:i], after[i:]
	}
	if strings.Contains(authority, "@") {
		return p, errors.New("must not hold a user name or password")
	}
	host, tail := authority, ""
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return p, errors.New("has an IPv6 address without its closing ]")
		}
		host, tail = authority[:end+1], authority[end+1:]
	} else if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, tail = authority[:i], authority[i:]
	}
	if tail != "" {
		port, ok := strings.CutPrefix(tail, ":")
		if !ok {
			return p, fmt.Errorf("has %q after its host; want :port or nothing", tail)
		}
		if port == "" {
			return p, errors.New("has a colon without a port; write the port, or no colon")
		}
		p.port, p.hasPort = port, true
	}
	if host == "" {
		return p, errors.New("has no host")
	}
	if strings.Contains(host, "%") || !strings.HasPrefix(host, "[") && strings.Contains(host, ":") {
		return p, fmt.Errorf("host %q holds %% or :, which a redirect URI's host never does", host)
	}
	p.host = strings.ToLower(host)
	return p, nil
}

// checkURL reports why s, with any wildcards already replaced, is not an
// absolute http(s) URL with a host and without fragment or userinfo.
func checkURL(s string) error {
	if strings.Contains(s, "#") {
		return errors.New("must not have a #fragment")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("is not a URL (%v)", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("is not an http or https URL")
	case u.Opaque != "" || u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not hold a user name or password")
	}
	return nil
}

// isLabel reports whether s is one DNS label of letters, digits and "-",
// neither starting nor ending with "-".
func isLabel(s string) bool {
	return s != "" && len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-' &&
		!strings.ContainsFunc(s, func(r rune) bool {
			return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		})
}

// Parse parses a redirect URI pattern. Its errors say what is wrong,
// without the pattern itself, for the caller to name it.
func Parse(s string) (Pattern, error) {
	if strings.Contains(s, "#") {
		return Pattern{}, errors.New("must not have a #fragment")
	}
	pp, err := split(s)
	if err != nil {
		return Pattern{}, err
	}
	p := Pattern{scheme: pp.scheme, host: pp.host, port: pp.port, hasPort: pp.hasPort, rest: pp.rest}
	concrete := pp.host
	if suffix, ok := strings.CutPrefix(pp.host, "*."); ok {
		labels := strings.Split(suffix, ".")
		for _, l := range labels {
			if !isLabel(l) {
				return Pattern{}, fmt.Errorf("host %q: after \"*.\" want a domain name such as example.com", pp.host)
			}
		}
		if len(labels) < 2 {
			return Pattern{}, fmt.Errorf("host %q: a wildcard stands for one label under a domain of at least two labels, such as *.example.com", pp.host)
		}
		p.host, p.wildHost = "."+suffix, true
		concrete = "x." + suffix
	}
	if strings.Contains(concrete, "*") {
		return Pattern{}, fmt.Errorf("host %q: a wildcard stands for the whole first label only, as in *.example.com", pp.host)
	}
	port := ""
	if pp.hasPort {
		if pp.port == "*" {
			p.wildPort = true
		} else {
			if strings.Contains(pp.port, "*") {
				return Pattern{}, fmt.Errorf("port %q: a wildcard port is written :* alone", pp.port)
			}
			if !isDigits(pp.port) || len(pp.port) > 5 || atoi(pp.port) > 65535 {
				return Pattern{}, fmt.Errorf("port %q is not a number from 0 to 65535, or *", pp.port)
			}
			port = ":" + pp.port
		}
	}
	if strings.Contains(pp.rest, "*") {
		return Pattern{}, errors.New(`holds "*" in its path or query; only the first label of the host and the port may be wildcards`)
	}
	if err := checkURL(pp.scheme + "://" + concrete + port + pp.rest); err != nil {
		return Pattern{}, err
	}
	return p, nil
}

// MustParse is [Parse] for patterns known to be valid; it panics on error.
func MustParse(s string) Pattern {
	p, err := Parse(s)
	if err != nil {
		panic(fmt.Sprintf("uripattern: %q %v", s, err))
	}
	return p
}

func isDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// parseURI cuts a URI a client registers into its parts, reporting false
// when it is not an absolute http(s) URL with a host, without fragment or
// userinfo.
func parseURI(uri string) (parts, bool) {
	pp, err := split(uri)
	if err != nil || checkURL(uri) != nil {
		return parts{}, false
	}
	if pp.hasPort && !isDigits(pp.port) {
		return parts{}, false
	}
	return pp, true
}

// Match reports whether uri, as a client registers it, matches p. uri must
// itself be an absolute http(s) URL without fragment or userinfo, else
// Match reports false.
func (p Pattern) Match(uri string) bool {
	if p.scheme == "" {
		return false
	}
	u, ok := parseURI(uri)
	if !ok || u.scheme != p.scheme || u.rest != p.rest {
		return false
	}
	if p.wildHost {
		label, ok := strings.CutSuffix(u.host, p.host)
		if !ok || !isLabel(label) {
			return false
		}
	} else if u.host != p.host {
		return false
	}
	if p.wildPort {
		return true
	}
	return u.hasPort == p.hasPort && u.port == p.port
}

// String returns the pattern, its scheme and host in lower case.
func (p Pattern) String() string {
	if p.scheme == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(p.scheme + "://")
	if p.wildHost {
		b.WriteString("*")
	}
	b.WriteString(p.host)
	switch {
	case p.wildPort:
		b.WriteString(":*")
	case p.hasPort:
		b.WriteString(":" + p.port)
	}
	b.WriteString(p.rest)
	return b.String()
}

// Loopback reports whether uri is an http URL on the loopback IP literals
// 127.0.0.1 or [::1] (any port), the native-app redirect of RFC 8252 §7.3
// ("localhost" is not).
func Loopback(uri string) bool {
	u, ok := parseURI(uri)
	return ok && u.scheme == "http" && (u.host == "127.0.0.1" || u.host == "[::1]")
}

// SameLoopback reports whether got equals registered except for the port,
// both being Loopback URIs (RFC 8252 §7.3: the port is chosen at request
// time).
func SameLoopback(registered, got string) bool {
	if !Loopback(registered) || !Loopback(got) {
		return false
	}
	r, _ := parseURI(registered)
	g, _ := parseURI(got)
	return r.host == g.host && r.rest == g.rest
}
