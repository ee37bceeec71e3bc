package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/portcullis-dev/portcullis/authn"
)

// IdentityHeaders are the identity headers the upstream of route r
// receives for id.
func IdentityHeaders(r *Route, id *authn.Identity) http.Header {
	h := http.Header{}
	setIdentity(h, identityHeaders(r.ForwardHeaders), id)
	return h
}

// ErrNotURL is RouteForURL's error for a URL that is not absolute http(s).
var ErrNotURL = errors.New("not an absolute http(s) URL")

// RouteForURL names the route of routes a gateway would choose for a
// request to rawURL ("https://admin.example/open/x"), and says which host
// rule chose it; only the routes' names, hosts and prefixes are read. A URL that no route serves, or one
// the gateway refuses before routing, is an error saying so. portcullis'
// own paths (login, the built-in issuer) are not considered.
func RouteForURL(routes []Route, rawURL string) (name, why string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", fmt.Errorf("%q is %w; write it like https://app.example.com/path", rawURL, ErrNotURL)
	}
	raw, key, ok := cleanPath(u.EscapedPath())
	if !ok {
		return "", "", fmt.Errorf("%s: malformed path: the gateway answers 400", rawURL)
	}
	rs := make([]*route, len(routes))
	for i := range routes {
		rs[i] = newRoute(&routes[i])
	}
	t := newRouteTable(rs)
	host := requestHost(u.Host)
	cands, rule := t.candidates(host)
	switch rule {
	case hostRuleExact:
		why = fmt.Sprintf("host %s has routes of its own (host: %s); only they are candidates", host, host)
	case hostRuleWildcard:
		why = fmt.Sprintf("host %s matches host: \"%s\"; only routes with that host are candidates", host, cands[0].host)
	default:
		why = fmt.Sprintf("no route names host %s; the routes without a host are candidates", host)
	}
	rt := t.match(host, key)
	if rt == nil {
		return "", "", fmt.Errorf("%s: %s, and none has a path_prefix for %s: the gateway answers 404", rawURL, why, key)
	}
	if t.ambiguous(host, raw, key, rt) {
		return "", "", fmt.Errorf("%s: a lenient upstream could read the path as one for another route: the gateway answers 400", rawURL)
	}
	return rt.name, why + fmt.Sprintf("; path_prefix %s is the longest that matches %s", rt.prefix, key), nil
}
