package config

import (
	"fmt"
	"net/url"
	"strings"
)

// RouteResource returns the effective protected-resource identifier of
// routes[i] (RFC 9728, RFC 8707): its resource when set, else one made
// from server.public_url, as documented on [Route.Resource]. It is "" for
// public routes, for wildcard-host routes without resource, and for i out
// of range.
func (c *Config) RouteResource(i int) string {
	if i < 0 || i >= len(c.Routes) {
		return ""
	}
	r := &c.Routes[i]
	if r.Auth == AuthPublic {
		return ""
	}
	if r.Resource != "" {
		return r.Resource
	}
	prefix := r.PathPrefix
	if prefix == "" {
		prefix = "/"
	}
	prefix = strings.TrimSuffix(prefix, "/")
	switch {
	case strings.HasPrefix(r.Host, "*."):
		return ""
	case r.Host != "":
		u, err := url.Parse(c.Server.PublicURL)
		if err != nil || u.Scheme == "" {
			return ""
		}
		host := strings.ToLower(r.Host)
		if p := u.Port(); p != "" {
			host += ":" + p
		}
		return strings.ToLower(u.Scheme) + "://" + host + prefix
	}
	return strings.TrimSuffix(c.Server.PublicURL, "/") + prefix
}

// ProtectedResources returns every route's effective non-empty resource
// ([Config.RouteResource]), in route order, then issuer.resources, each
// once.
func (c *Config) ProtectedResources() []string {
	var out []string
	seen := map[string]bool{}
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for i := range c.Routes {
		add(c.RouteResource(i))
	}
	if c.Issuer != nil {
		for _, r := range c.Issuer.Resources {
			add(r)
		}
	}
	return out
}

// insecureHTTP reports whether u is plain http on a host that is not
// loopback while server.insecure_allow_http is off.
func (v *validator) insecureHTTP(u *url.URL) bool {
	return u.Scheme == "http" && !isLoopback(u.Hostname()) && !v.c.Server.InsecureAllowHTTP
}

// resourceURL checks a resource identifier written at key: an absolute
// http(s) URL without fragment, query (RFC 8707 §2) or user info, plain
// http only on a loopback host unless server.insecure_allow_http.
func (v *validator) resourceURL(key, s string) bool {
	u, msg := parseHTTPURL(s, true)
	switch {
	case msg != "":
		v.errorf(key, "%s", msg)
	case u.RawQuery != "" || u.ForceQuery:
		v.errorf(key, "%q has a ?query; a resource identifier has none (RFC 8707 §2): write it like https://api.example.com/v1", u.Redacted())
	case v.insecureHTTP(u):
		v.errorf(key, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true", u.Redacted())
	default:
		return true
	}
	return false
}

// sameResource folds a resource identifier for comparison: scheme and
// host are case-insensitive.
func sameResource(s string) string {
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

// routeResource checks resource, resource_name and resource_documentation
// of routes[i].
func (v *validator) routeResource(i int) {
	r := &v.c.Routes[i]
	p := indexPath("routes", i)
	public := r.Auth == AuthPublic
	if r.Resource != "" {
		if public {
			v.errorf(p+".resource", "a public route checks no tokens, so it is no protected resource; remove resource, or set auth: required or optional")
		} else {
			v.resourceURL(p+".resource", r.Resource)
		}
	}
	if r.ResourceName != "" {
		switch {
		case public:
			v.errorf(p+".resource_name", "has no effect on a public route, which is no protected resource; remove it, or set auth: required or optional")
		case strings.TrimSpace(r.ResourceName) == "" || !isCleanName(r.ResourceName):
			v.errorf(p+".resource_name", "%q is blank, has spaces at either end or control characters; write a name people read, such as \"Orders API\"", r.ResourceName)
		}
	}
	if d := r.ResourceDocumentation; d != "" {
		if public {
			v.errorf(p+".resource_documentation", "has no effect on a public route, which is no protected resource; remove it, or set auth: required or optional")
		} else if _, msg := parseHTTPURL(d, true); msg != "" {
			v.errorf(p+".resource_documentation", "%s", msg)
		}
	}
}

// routeResources checks that no two routes have the same effective
// resource.
func (v *validator) routeResources() {
	seen := map[string]int{}
	for i := range v.c.Routes {
		res := v.c.RouteResource(i)
		if res == "" {
			continue
		}
		k := sameResource(res)
		first, dup := seen[k]
		if !dup {
			seen[k] = i
			continue
		}
		if a, b := &v.c.Routes[first], &v.c.Routes[i]; a.Resource == "" && b.Resource == "" &&
			strings.EqualFold(a.Host, b.Host) && strings.TrimSuffix(a.PathPrefix, "/") == strings.TrimSuffix(b.PathPrefix, "/") {
			continue // the same host and path_prefix, reported as such
		}
		v.errorf(indexPath("routes", i)+".resource", "%s is the resource of route %q (line %d) too; each route is its own protected resource: set resource on one of them",
			describeResource(v.c, i, res), v.c.Routes[first].Name, v.c.line(indexPath("routes", first)+".resource"))
	}
}

// describeResource names the effective resource of routes[i] for
// messages, saying where a default came from.
func describeResource(c *Config, i int, res string) string {
	if c.Routes[i].Resource != "" {
		return fmt.Sprintf("%q", res)
	}
	return fmt.Sprintf("%q (the default, from server.public_url, host and path_prefix)", res)
}

// issuerResources checks issuer.resources.
func (v *validator) issuerResources() {
	seen := map[string]int{}
	for j, s := range v.c.Issuer.Resources {
		key := indexPath("issuer.resources", j)
		if !v.resourceURL(key, s) {
			continue
		}
		if first, dup := seen[sameResource(s)]; dup {
			v.errorf(key, "%q is already listed as issuer.resources[%d]; list each resource once", s, first)
			continue
		}
		seen[sameResource(s)] = j
	}
}
