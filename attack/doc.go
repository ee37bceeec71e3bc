// Package attack holds portcullis' security attack suite: tests that attack
// a real running gateway, and its built-in issuer, through their HTTP
// interface the way attackers went after other gateways, identity-aware
// proxies and JWT libraries (RFC 8725, RFC 9700, RFC 6750, RFC 7636 and the
// advisories of oauth2-proxy, Envoy, Pomerium and Oathkeeper).
//
// Every case expects an exact status and, where it matters, the RFC 6750
// error code, that no Location header leaves the gateway's host, that the
// upstream never sees a spoofed header or a smuggled request, and that no
// response echoes the token or carries Go error text. The families are
// token forgery and confusion, token transport, header and path handling
// in the proxy, request smuggling, the browser login flow, the built-in
// issuer, and the configuration's secure defaults.
//
// The package has no code of its own; run it with go test ./attack/.
package attack
