package proxy

import (
	"net/http"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/jwks"
)

// builtin is the built-in issuer mounted on the main listener.
type builtin struct {
	iss   *issuer.Issuer
	keys  *jwks.KeyRing
	store issuer.Store
	base  string // path prefix; "" mounts only the endpoint paths at the root
	// roots are the paths it serves outside base: its metadata at the
	// path-inserted well-known URIs (RFC 8414 §3.1).
	roots []string
}

// rootEndpoints are the issuer's paths when its URL has no path.
var rootEndpoints = map[string]bool{
	"/.well-known/openid-configuration": true, "/.well-known/oauth-authorization-server": true,
	"/jwks": true, "/authorize": true, "/token": true, "/userinfo": true,
	"/revoke": true, "/introspect": true, "/logout": true, "/register": true,
}

// owns reports whether a cleaned path belongs to the issuer; it is matched
// before any route, so a catch-all route never hides the issuer.
func (b *builtin) owns(path string) bool {
	if b.base == "" {
		return rootEndpoints[path]
	}
	return path == b.base || strings.HasPrefix(path, b.base+"/") || slices.Contains(b.roots, path)
}

// serveIssuer hands a request to the built-in issuer.
func (g *generation) serveIssuer(w http.ResponseWriter, r *http.Request) {
	note(w, "issuer", outcomeIssuer, "")
	g.builtin.iss.ServeHTTP(w, r)
}
