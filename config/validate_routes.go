package config

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/portcullis-dev/portcullis/rules"
)

// reservedHeaders are the request headers a route may not fill from a claim
// or with the token: they belong to the connection, to HTTP framing, to the
// client's credentials, or to the gateway's own forwarding headers.
var reservedHeaders = []string{
	"Host", "Authorization", "Cookie", "Set-Cookie", "Content-Length",
	"Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection", "Te",
	"Trailer", "Upgrade", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host",
	"X-Forwarded-Proto",
}

// headerKey folds a header name the way upstreams may: case-insensitively,
// and with "_" as "-" (many servers turn one into the other).
func headerKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// checkHeaderName reports why name cannot be a header a route sets.
func checkHeaderName(name string) string {
	if !isToken(name) {
		return fmt.Sprintf("%q is not a header name (letters, digits and -)", name)
	}
	for _, r := range reservedHeaders {
		if headerKey(name) == headerKey(r) {
			return fmt.Sprintf("header %s is reserved for the gateway and the connection", r)
		}
	}
	return ""
}

// routes checks every route, and that names and (host, path_prefix) pairs
// are unique.
func (v *validator) routes() {
	if len(v.c.Routes) == 0 {
		if v.c.Issuer == nil && !v.c.has("issuer") {
			v.errorf("routes", "no routes; add at least one under routes: with a name and an upstream, or an issuer: section to run the built-in issuer alone")
		}
		return
	}
	names := map[string]int{}
	paths := map[string]int{}
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		p := indexPath("routes", i)
		v.route(i)
		if first, dup := names[r.Name]; dup && r.Name != "" {
			v.errorf(p+".name", "route name %q is already used at line %d; names must be unique", r.Name, v.c.line(indexPath("routes", first)+".name"))
		} else {
			names[r.Name] = i
		}
		prefix := r.PathPrefix
		if prefix != "/" {
			prefix = strings.TrimSuffix(prefix, "/")
		}
		match := strings.ToLower(r.Host) + " " + prefix
		if first, dup := paths[match]; dup {
			host := "any host"
			if r.Host != "" {
				host = "host " + r.Host
			}
			v.errorf(p+".path_prefix", "route %q serves %s under %s like route %q (line %d); change the path_prefix or host of one of them",
				r.Name, host, prefix, v.c.Routes[first].Name, v.c.line(indexPath("routes", first)+".path_prefix"))
		} else {
			paths[match] = i
		}
	}
	v.routeResources()
}

// route checks one entry of routes.
func (v *validator) route(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	switch {
	case r.Name == "":
		v.errorf(p+".name", `is required; name the route with letters, digits, ".", "_" or "-"`)
	case !isRouteName(r.Name):
		v.errorf(p+".name", `%q is not a route name; use only letters, digits, ".", "_" and "-"`, r.Name)
	}
	if msg := checkHost(r.Host); msg != "" {
		v.errorf(p+".host", "%s", msg)
	}
	if msg := checkPathPrefix(r.PathPrefix); msg != "" {
		v.errorf(p+".path_prefix", "%s", msg)
	}
	if msg := checkUpstream(r.Upstream); msg != "" {
		v.errorf(p+".upstream", "%s", msg)
	}
	switch r.OnUnauthenticated {
	case "auto", "deny":
	case "login":
		if v.c.Login == nil {
			v.errorf(p+".on_unauthenticated", "login needs a login: section; add one, or use auto or deny")
		}
	default:
		v.errorf(p+".on_unauthenticated", "%q is not a mode; want auto, login or deny", r.OnUnauthenticated)
	}
	v.nonNegative(p+".timeout", r.Timeout)
	if r.MaxBodyBytes < 0 {
		v.errorf(p+".max_body_bytes", "is %d; want a number of bytes, or 0 for no limit", r.MaxBodyBytes)
	}
	if r.UpstreamCAFile != "" {
		if msg := checkReadable(r.UpstreamCAFile); msg != "" {
			v.errorf(p+".upstream_ca_file", "%s", msg)
		} else if !strings.HasPrefix(strings.ToLower(r.Upstream), "https://") {
			v.errorf(p+".upstream_ca_file", "is set but upstream %q is not https", r.Upstream)
		}
	}
	v.routeAuth(i)
	v.routeResource(i)
	v.routeHeaders(i)
	v.tokenFrom(i)
	v.routeMethods(i)
	v.routeRules(i)
}

// routeMethods checks methods and cors_preflight.
func (v *validator) routeMethods(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	seen := map[string]int{}
	for j, m := range r.Methods {
		key := indexPath(p+".methods", j)
		switch {
		case !isToken(m):
			v.errorf(key, "%q is not a method; write one such as GET, POST or DELETE", m)
		case m != strings.ToUpper(m):
			v.errorf(key, "%q: methods are case-sensitive and written in capitals; write %s", m, strings.ToUpper(m))
		default:
			if first, dup := seen[m]; dup {
				v.errorf(key, "%s is already listed at methods[%d]", m, first)
			}
			seen[m] = j
		}
	}
	if r.Methods != nil && len(r.Methods) == 0 {
		v.errorf(p+".methods", "is empty, which would refuse every request; list the methods the route serves, or remove the key to serve all")
	}
	switch c := r.RequireSenderConstraint; c {
	case "":
	case "dpop", "mtls", "any":
		t := v.c.Server.TLS
		switch {
		case r.Auth == AuthPublic:
			v.errorf(p+".require_sender_constraint", "has no effect on a public route, which checks no tokens; remove it, or set auth: required or optional")
		case c == "mtls" && t.ClientCAFile == "" && t.ClientCertHeader.Name == "":
			v.errorf(p+".require_sender_constraint", "mtls needs client certificates: set server.tls.client_ca_file, or server.tls.client_cert_header behind a proxy that ends TLS")
		}
	default:
		v.errorf(p+".require_sender_constraint", "%q is not a constraint; want dpop (DPoP-bound tokens, RFC 9449), mtls (bound to the client certificate, RFC 8705) or any (either), or leave it out for bearer tokens too", c)
	}
	switch r.CORSPreflight {
	case "", CORSPreflightCheck, CORSPreflightPass:
	default:
		v.errorf(p+".cors_preflight", "%q is not a mode; want check (a preflight is a request like any other) or pass (preflights go to the upstream without a token)", r.CORSPreflight)
	}
}

// routeRules compiles the route's rules as the gateway will, so that a
// rule that does not parse, is not a bool, or may cost too much is an
// error at load, naming the rule and the column inside its expression.
func (v *validator) routeRules(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	if len(r.Rules) == 0 {
		return
	}
	rs := make([]rules.Rule, 0, len(r.Rules))
	names := map[string]int{}
	ok := true
	for j, rr := range r.Rules {
		key := indexPath(p+".rules", j)
		switch {
		case rr.Allow != "" && rr.Deny != "":
			v.errorf(key, "has both allow and deny; a rule is one of them")
			ok = false
		case rr.Allow == "" && rr.Deny == "":
			v.errorf(key, `needs allow: or deny: with a CEL expression, such as allow: '"staff" in claims.groups'`)
			ok = false
		}
		if rr.Name != "" {
			if !isRouteName(rr.Name) {
				v.errorf(key+".name", `%q is not a rule name; use only letters, digits, ".", "_" and "-"`, rr.Name)
			} else if first, dup := names[rr.Name]; dup {
				v.errorf(key+".name", "rule name %q is already used by rules[%d]", rr.Name, first)
			}
			names[rr.Name] = j
		}
		rs = append(rs, RuleOf(rr))
	}
	if !ok {
		return
	}
	_, err := rules.Compile(rs, v.c.RuleLimits())
	var errs []error
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		errs = u.Unwrap()
	} else if err != nil {
		errs = []error{err}
	}
	for _, err := range errs {
		var re *rules.Error
		if !errors.As(err, &re) {
			v.errorf(p+".rules", "%v", err)
			continue
		}
		key := indexPath(p+".rules", re.Rule) + ".deny"
		if re.Allow {
			key = indexPath(p+".rules", re.Rule) + ".allow"
		}
		v.errorf(key, "%s", re.Detail())
	}
}

// RuleOf is the rules.Rule of a route's rule.
func RuleOf(rr RouteRule) rules.Rule {
	if rr.Allow != "" {
		return rules.Rule{Name: rr.Name, Allow: true, Expr: rr.Allow}
	}
	return rules.Rule{Name: rr.Name, Expr: rr.Deny}
}

// RuleLimits are server.rules as rules.Limits; 0, or a negative setting,
// which validation refuses, is the default.
func (c *Config) RuleLimits() rules.Limits {
	return rules.Limits{MaxListSize: uint64(max(c.Server.Rules.MaxListSize, 0)), MaxCost: uint64(max(c.Server.Rules.MaxCost, 0))}
}

// routeAuth checks what a route demands of a token, and that a route which
// verifies tokens has issuers and audiences to verify them against.
func (v *validator) routeAuth(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	switch r.Auth {
	case AuthRequired, AuthOptional:
		v.routeIssuers(i)
	case AuthPublic:
	default:
		v.errorf(p+".auth", "%q is not an auth mode; want required, optional or public", r.Auth)
	}
	for j, a := range r.Audiences {
		if strings.TrimSpace(a) == "" {
			v.errorf(indexPath(p+".audiences", j), `is empty; want an "aud" value such as my-api`)
		}
	}
	for j, s := range r.RequireScopes {
		if s == "" || strings.ContainsFunc(s, unicode.IsSpace) {
			v.errorf(indexPath(p+".require_scopes", j), "%q is not a scope; want one word such as read, without spaces", s)
		}
	}
	for _, claim := range v.sortedKeys(p+".require_claims", maps.Keys(r.RequireClaims)) {
		key := keyPath(p+".require_claims", claim)
		values := r.RequireClaims[claim]
		switch {
		case claim == "":
			v.errorf(key, "a claim name must not be empty")
		case len(values) == 0:
			v.errorf(key, "lists no values; want a value, or a list of values one of which the claim must hold")
		}
		for j, val := range values {
			if val == "" {
				v.errorf(indexPath(key, j), "is empty; want a value the claim must hold")
			}
		}
	}
}

// routeIssuers checks that a route verifying tokens has issuers, and an
// audience from itself or from every issuer: a token must say whom it is
// for (RFC 8725 §3.9).
func (v *validator) routeIssuers(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	if len(v.c.Issuers) == 0 {
		v.errorf(p+".auth", "auth %s needs at least one entry under issuers to verify tokens; add one, or set auth: public", r.Auth)
		return
	}
	if len(r.Audiences) > 0 {
		return
	}
	for _, is := range v.c.Issuers {
		if len(is.Audiences) == 0 {
			v.errorf(p+".audiences", "the route has no audiences and issuer %q has none either; set audiences on the route, or on every issuer", is.Issuer)
			return
		}
	}
}

// routeHeaders checks forward_headers and forward_token.
func (v *validator) routeHeaders(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	seen := map[string]string{}
	for _, name := range v.sortedKeys(p+".forward_headers", maps.Keys(r.ForwardHeaders)) {
		key := keyPath(p+".forward_headers", name)
		if msg := checkHeaderName(name); msg != "" {
			v.errorf(key, "%s; pick another name, such as X-Auth-Request-User", msg)
			continue
		}
		if first, dup := seen[headerKey(name)]; dup {
			v.errorf(key, "headers %s and %s (line %d) are the same to the upstream (case and _ or - do not count); keep one", name, first, v.c.line(keyPath(p+".forward_headers", first)))
			continue
		}
		seen[headerKey(name)] = name
		if strings.TrimSpace(r.ForwardHeaders[name]) == "" {
			v.errorf(key, "names no claim; want a claim name such as sub, email or realm_access.roles")
		}
	}
	ft := r.ForwardToken
	if strings.EqualFold(ft, ForwardTokenNone) || strings.EqualFold(ft, ForwardTokenAuthorization) {
		return
	}
	if msg := checkHeaderName(ft); msg != "" {
		v.errorf(p+".forward_token", "%s; want none, authorization, or a header name such as X-Forwarded-Access-Token", msg)
	} else if other, dup := seen[headerKey(ft)]; dup {
		v.errorf(p+".forward_token", "header %s is also set by forward_headers (%s); use another header for the token", ft, other)
	}
}

// tokenFrom checks the places a route looks for tokens.
func (v *validator) tokenFrom(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	if len(r.TokenFrom) == 0 {
		v.errorf(p+".token_from", "lists no place to find tokens; want header, cookie:NAME or query:NAME, or leave the key out for [header]")
	}
	seen := map[string]bool{}
	for j, src := range r.TokenFrom {
		key := indexPath(p+".token_from", j)
		kind, name, _ := strings.Cut(src, ":")
		switch {
		case src == "header":
		case kind == "cookie" && !isToken(name):
			v.errorf(key, "%q does not name a cookie; write cookie:NAME with NAME made of letters, digits, - and _", src)
		case kind == "query" && (name == "" || strings.ContainsAny(name, " &=#") || strings.ContainsFunc(name, unicode.IsControl)):
			v.errorf(key, "%q does not name a query parameter; write query:NAME with NAME free of spaces, &, = and #", src)
		case kind != "cookie" && kind != "query":
			v.errorf(key, "%q is not a place to find tokens; want header, cookie:NAME or query:NAME", src)
		}
		if seen[src] {
			v.errorf(key, "%q is listed twice; list each place once", src)
		}
		seen[src] = true
	}
}

// sortedKeys returns the keys of a map in the order they appear in the file
// (by the line of parent.key), then by name, so that "first" and "second"
// in messages mean what the reader sees.
func (v *validator) sortedKeys(parent string, keys iter.Seq[string]) []string {
	out := slices.Collect(keys)
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(v.c.line(keyPath(parent, a)), v.c.line(keyPath(parent, b))), strings.Compare(a, b))
	})
	return out
}

// isRouteName reports whether s matches [A-Za-z0-9_.-]+.
func isRouteName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
}

// checkHost reports why h is not a host name (or IPv4 address) without
// scheme, port or path, or a wildcard "*.example.com" that stands for
// exactly one label. Empty is fine: the route serves every host without
// routes of its own.
func checkHost(h string) string {
	const like = "write a host name such as app.example.com"
	switch {
	case h == "":
		return ""
	case strings.HasPrefix(h, "*.") && !strings.Contains(h[2:], "*"):
		if msg := checkHost(h[2:]); msg != "" {
			return fmt.Sprintf("%q: after \"*.\", %s", h, msg)
		}
		return ""
	case strings.Contains(h, "*"):
		return fmt.Sprintf("%q: a wildcard stands for the whole first label only, as in *.example.com", h)
	case strings.HasSuffix(h, ".") && h != ".":
		return fmt.Sprintf("%q ends in a dot; write it without, as %s (requests for %s are served too)", h, strings.TrimSuffix(h, "."), h)
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%q is a URL; %s, without scheme", h, like)
	case strings.ContainsAny(h, "/?#"):
		return fmt.Sprintf("%q has a path; %s, and use path_prefix for paths", h, like)
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%q has a port; %s, without port", h, like)
	case len(h) > 253:
		return fmt.Sprintf("is %d characters long; a host name has at most 253", len(h))
	}
	for label := range strings.SplitSeq(h, ".") {
		ok := label != "" && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-' &&
			!strings.ContainsFunc(label, func(r rune) bool {
				return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
			})
		if !ok {
			return fmt.Sprintf("%q is not a host name; %s (letters, digits, - and dots)", h, like)
		}
	}
	return ""
}

// checkPathPrefix reports why p is not a clean path prefix: one that starts
// with "/", has no empty, "." or ".." segments and nothing that would be
// matched differently once decoded.
func checkPathPrefix(p string) string {
	return checkPath(p, "write it like /api/ or /healthz")
}

// checkPath is [checkPathPrefix], ending its messages with like.
func checkPath(p, like string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q must start with /; %s", p, like)
	case strings.Contains(p, "//"):
		return fmt.Sprintf("%q must not hold //; %s", p, like)
	case strings.ContainsAny(p, "?#%"):
		return fmt.Sprintf("%q must not hold ?, # or %%: it is matched against the decoded path, without query; %s", p, like)
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Sprintf("%q must not hold spaces or control characters; %s", p, like)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Sprintf("%q must not hold . or .. segments, which clients' paths never match once cleaned; %s", p, like)
		}
	}
	return ""
}

// checkUpstream checks an upstream URL: http, https, or h2c (cleartext
// HTTP/2, the scheme Caddy and Traefik use for it) with a host.
func checkUpstream(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if ok && strings.EqualFold(scheme, "h2c") {
		if _, msg := parseHTTPURL("http://"+rest, false); msg != "" {
			return strings.ReplaceAll(msg, "http://"+rest, s)
		}
		return ""
	}
	if _, msg := parseHTTPURL(s, false); msg != "" {
		return strings.Replace(msg, "is not an http or https URL", "is not an http, https or h2c URL", 1)
	}
	return ""
}
