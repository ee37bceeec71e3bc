package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/authn"
)

// ResourceMetadata is what a route publishes about itself as an OAuth
// protected resource (RFC 9728), so that a client that has never seen it
// can find where to get a token for it: the MCP authorization flow, and
// any OAuth 2.1 client that discovers rather than is configured.
type ResourceMetadata struct {
	// Resource is the route's resource identifier: an absolute http(s)
	// URL without query or fragment, the "resource" clients send (RFC
	// 8707) and the audience the route accepts besides its own.
	Resource string
	// AuthorizationServers are the issuers whose tokens the route takes.
	AuthorizationServers []string
	// Name and Documentation are resource_name and
	// resource_documentation; "" leaves them out.
	Name, Documentation string
}

// wellKnownResource is RFC 9728 §3's well-known URI suffix.
const wellKnownResource = "/.well-known/oauth-protected-resource"

// resourceMeta is a route's metadata ready to serve.
type resourceMeta struct {
	doc []byte
	// paths are where the document is served: the well-known URI with the
	// route's path appended (§3.1), and with the resource's path when that
	// differs (a resource named for a proxy in front that maps paths).
	paths []string
	// url is the document's URL, the resource_metadata of the route's
	// challenges (§5.1).
	url string
}

// newResourceMeta builds the route's document from its metadata and
// policy: scopes_supported is require_scopes (an empty list when there are
// none), bearer_methods_supported the token sources that RFC 6750 names.
func newResourceMeta(rs *Route) (*resourceMeta, error) {
	m := rs.Metadata
	u, err := url.Parse(m.Resource)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy: route %s: resource %q is not an http(s) URL without query and fragment", rs.Name, m.Resource)
	}
	resPath := strings.TrimSuffix(u.EscapedPath(), "/")
	methods := []string{}
	sources := rs.Policy.Sources
	if len(sources) == 0 {
		sources = authn.DefaultSources
	}
	for _, s := range sources {
		switch {
		case s.Kind == authn.SourceHeader:
			methods = append(methods, "header")
		case s.Kind == authn.SourceQuery && s.Name == "access_token":
			methods = append(methods, "query")
		}
	}
	scopes := slices.Clone(rs.Policy.Scopes)
	if scopes == nil {
		scopes = []string{}
	}
	servers := slices.Clone(m.AuthorizationServers)
	if servers == nil {
		servers = []string{}
	}
	doc := map[string]any{
		"resource":                 m.Resource,
		"authorization_servers":    servers,
		"scopes_supported":         scopes,
		"bearer_methods_supported": methods,
	}
	if m.Name != "" {
		doc["resource_name"] = m.Name
	}
	if m.Documentation != "" {
		doc["resource_documentation"] = m.Documentation
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(rs.PathPrefix, "/")
	rm := &resourceMeta{
		doc:   append(body, '\n'),
		paths: []string{wellKnownResource + prefix},
		url:   u.Scheme + "://" + u.Host + wellKnownResource + resPath,
	}
	if p := wellKnownResource + resPath; p != rm.paths[0] {
		rm.paths = append(rm.paths, p)
	}
	return rm, nil
}

// serveResourceMetadata answers a request for a route's protected
// resource metadata and reports whether it did: key is the cleaned path,
// host the request's. Only routes that may serve host are looked at, so a
// host's routes publish on that host alone.
func (g *generation) serveResourceMetadata(w http.ResponseWriter, r *http.Request, host, key string) bool {
	rs, _ := g.routes.candidates(host)
	var m *resourceMeta
	for _, rt := range rs {
		if rt.meta != nil && slices.Contains(rt.meta.paths, key) {
			m = rt.meta
			break
		}
	}
	if m == nil {
		return false
	}
	notGRPC(w)
	note(w, "resource_metadata", outcomeIssuer, "")
	h := w.Header()
	// Browser-based clients read it across origins; it holds nothing
	// that is not public.
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD")
		h.Set("Access-Control-Allow-Headers", "*")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return true
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		g.plain(w, nil, http.StatusMethodNotAllowed, outcomeBadRequest, "method not allowed")
		return true
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.doc)
	}
	return true
}

// metadataURL is the resource_metadata of rt's challenges, "" for none.
func (rt *route) metadataURL() string {
	if rt == nil || rt.meta == nil {
		return ""
	}
	return rt.meta.url
}

// DPoPURL returns the function that gives a request's URL as its client
// saw it, the htu of its DPoP proofs (RFC 9449 §4.3): an absolute URL as
// forward-auth rebuilt it from a trusted proxy's headers; else
// X-Forwarded-Proto and X-Forwarded-Host from a trusted proxy, or the
// public URL's scheme and the request's host when it is the public URL's
// or one a route names exactly, the public URL's host otherwise (so a
// proof made for another server cannot be replayed by naming its host).
func DPoPURL(publicURL string, trusted []netip.Prefix, hosts []string) func(*http.Request) string {
	pub, _ := url.Parse(publicURL)
	own := map[string]bool{}
	if pub != nil {
		own[strings.ToLower(pub.Hostname())] = true
	}
	for _, h := range hosts {
		if h != "" && !strings.HasPrefix(h, "*.") {
			own[strings.ToLower(h)] = true
		}
	}
	return func(r *http.Request) string {
		if r.URL.IsAbs() && r.URL.Host != "" {
			return r.URL.Scheme + "://" + r.URL.Host + r.URL.EscapedPath()
		}
		scheme, host := "https", r.Host
		if pub != nil {
			scheme = pub.Scheme
			if !own[requestHost(r.Host)] {
				host = pub.Host
			}
		}
		if isTrustedAddr(trusted, r.RemoteAddr) {
			if v := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); v == "http" || v == "https" {
				scheme = v
			}
			if v := r.Header.Get("X-Forwarded-Host"); v != "" {
				host = v
			}
		}
		return scheme + "://" + host + r.URL.EscapedPath()
	}
}
