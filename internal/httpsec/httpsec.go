// Package httpsec holds the headers of every answer portcullis writes
// itself (denials, error pages, the issuer's login and consent pages, the
// login flow's messages), so that one policy covers them all: they are
// never framed (clickjacking), sniffed into another type, cached, or
// referred on (codes and states stay out of other sites' logs).
package httpsec

import "net/http"

// PlainCSP is the content security policy of an answer that is not a
// page: nothing may load from it, and nothing may frame it.
const PlainCSP = "default-src 'none'; frame-ancestors 'none'"

// Set writes contentType, the content security policy csp, and the
// headers that forbid framing, sniffing, caching and referrers.
func Set(h http.Header, contentType, csp string) {
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}
