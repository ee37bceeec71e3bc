package testgw

import (
	"fmt"
	"strconv"
	"strings"
)

// ClientSecret is the secret of the gateway's client at the built-in
// issuer, and CookieSecret the key its session cookies are sealed with.
const (
	ClientSecret = "gateway-secret-0123456789"
	CookieSecret = "cookie-secret-0123456789-0123456789-abc"
)

// The configurations below are YAML text. Where they stand for values only
// known when the test runs (a base URL, an upstream), they take fmt verbs
// such as %[1]s, and the caller fills them in with fmt.Sprintf.

// ServerSection is the server section of a gateway listening on listen
// with public_url publicURL and extra (YAML flow mapping members, if any),
// followed by an admin section that turns the admin listener off.
func ServerSection(listen, publicURL, extra string) string {
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf("server: {listen: %q, public_url: \"%s\"%s}\nadmin: {listen: off}\n", listen, publicURL, extra)
}

// IssuersSection is an issuers section trusting ES256 access tokens from
// the issuer at url for audience, which must carry the JOSE typ typ unless
// it is "".
func IssuersSection(url, audience, typ string) string {
	s := fmt.Sprintf(`issuers:
  - issuer: "%s"
    audiences: [%s]
    algorithms: [ES256]
`, url, audience)
	if typ != "" {
		s += "    typ: " + typ + "\n"
	}
	return s
}

// LoginSection is the login section of a gateway that logs browsers in at the
// issuer at url as client, with cookies that are not Secure.
func LoginSection(url, client string) string {
	return fmt.Sprintf(`login:
  issuer: "%s"
  client_id: %s
  client_secret: %s
  scopes: [openid, profile, email, offline_access, read]
  cookie: {secret: %q, secure: false}
`, url, client, ClientSecret, CookieSecret)
}

// IssuerSection is the issuer section, which runs the built-in issuer with
// alice as its one user and, as its first client, the first-party client of
// a gateway that logs browsers in at it.
type IssuerSection struct {
	Base         string // the issuer runs at Base/idp
	Client       string // the gateway's client id
	ClientName   string // the client's name shown to users; "" gives none
	Gateway      string // base URL of the gateway, where the client's redirect URIs are
	Audience     string // audience of the client's access tokens
	PasswordHash string // alice's password_hash as it stands in the YAML
	Clients      string // further clients: YAML list items, indented four spaces
	Scopes       string // scope descriptions as a YAML flow mapping
}

// YAML returns the section.
func (i IssuerSection) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "issuer:\n  url: \"%s/idp\"\n  clients:\n    - id: %s\n", i.Base, i.Client)
	if i.ClientName != "" {
		fmt.Fprintf(&b, "      name: %q\n", i.ClientName)
	}
	fmt.Fprintf(&b, `      secret: %[1]s
      first_party: true
      redirect_uris: ["%[2]s/oauth2/callback"]
      scopes: [openid, profile, email, offline_access, read]
      audiences: [%[3]s]
%[4]s  users:
    - username: %[5]s
      password_hash: %[6]s
      claims: {email: alice@example.com, groups: [admin]}
  scopes: %[7]s
`, ClientSecret, i.Gateway, i.Audience, i.Clients, Username, i.PasswordHash, i.Scopes)
	return b.String()
}

// appRoute is the catch-all route app to upstream (as it stands in the
// YAML), which requires the read scope and forwards headers, a YAML flow
// mapping.
func appRoute(upstream, headers string) string {
	return fmt.Sprintf(`  - name: app
    path_prefix: /
    upstream: %s
    require_scopes: [read]
    forward_headers: %s
`, upstream, headers)
}

// Login is a gateway that runs the built-in issuer at /idp and logs
// browsers in through it as client portcullis; the issuer's and the
// gateway's tokens are for audience demo-api. Its last route is app, the
// catch-all, which requires the read scope. The zero value is a complete
// configuration.
type Login struct {
	Listen         string // server.listen; "" is 127.0.0.1:0
	TrustedProxies string // server.trusted_proxies as YAML flow items; "" gives none
	LogLevel       string // log.level; "" keeps the default
	TokenType      string // the typ the gateway requires of access tokens; "" any
	ClientName     string // the gateway client's name at the issuer
	Clients        string // further clients of the issuer, as in [IssuerSection]
	Scopes         string // the issuer's scope descriptions; "" is {read: "Read your data"}
	Routes         string // routes before app: YAML list items, indented two spaces
	AppHeaders     string // app's forward_headers as a YAML flow mapping; "" is {X-Auth-Request-User: sub}
}

// YAML returns the configuration as a format for fmt.Sprintf: %[1]s is the
// gateway's base URL, %[2]s its upstream and %[3]s alice's password hash.
func (l Login) YAML() string {
	listen, extra, scopes, headers := l.Listen, "", l.Scopes, l.AppHeaders
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if l.TrustedProxies != "" {
		extra = "trusted_proxies: [" + l.TrustedProxies + "]"
	}
	if scopes == "" {
		scopes = `{read: "Read your data"}`
	}
	if headers == "" {
		headers = "{X-Auth-Request-User: sub}"
	}
	s := ServerSection(listen, "%[1]s", extra)
	if l.LogLevel != "" {
		s += "log: {level: " + l.LogLevel + "}\n"
	}
	return s + IssuersSection("%[1]s/idp", "demo-api", l.TokenType) +
		IssuerSection{Base: "%[1]s", Client: "portcullis", ClientName: l.ClientName, Gateway: "%[1]s", Audience: "demo-api",
			PasswordHash: "%[3]q", Clients: l.Clients, Scopes: scopes}.YAML() +
		LoginSection("%[1]s/idp", "portcullis") + "routes:\n" + l.Routes + appRoute("%[2]q", headers)
}

// Tokens is a gateway that checks bearer tokens alone: it trusts Issuer, a
// JWKS issuer signing with RS256, PS256, ES256 and EdDSA keys, for audience
// api, and HS256 tokens of https://legacy.example for audience legacy-api.
// It trusts the proxies in 10.99.0.0/16, logs at debug level and has no
// admin listener. Its routes, all to Upstream, are public (/public, open to
// all), admin (/admin, for the admin group), those in Routes, and app, the
// catch-all, which requires the read scope.
type Tokens struct {
	Listen         string // server.listen
	MaxHeaderBytes int    // server.max_header_bytes
	Issuer         string // URL of the JWKS issuer
	Refetch        string // the JWKS issuer's jwks_refetch_interval; "" keeps the default
	Issuers        string // further issuers trusted after it: YAML list items
	LegacySecret   string // the legacy issuer's HMAC secret
	Upstream       string // base URL of the upstream
	Routes         string // routes between admin and app: YAML list items, indented two spaces
	AppHeaders     string // app's forward_headers as a YAML flow mapping
}

// YAML returns the configuration.
func (c Tokens) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  listen: %s
  trusted_proxies: [10.99.0.0/16]
  max_header_bytes: %d
admin: {listen: off}
log: {level: debug}
issuers:
  - issuer: %q
    audiences: [api]
    algorithms: [RS256, PS256, ES256, EdDSA]
    leeway: 30s
`, c.Listen, c.MaxHeaderBytes, c.Issuer)
	if c.Refetch != "" {
		fmt.Fprintf(&b, "    jwks_refetch_interval: %s\n", c.Refetch)
	}
	fmt.Fprintf(&b, `%[1]s  - issuer: https://legacy.example
    audiences: [legacy-api]
    algorithms: [HS256]
    hmac_secret: %[2]q
routes:
  - name: public
    path_prefix: /public
    upstream: %[3]q
    auth: public
  - name: admin
    path_prefix: /admin
    upstream: %[3]q
    require_claims: {groups: admin}
    forward_headers: {X-Auth-Request-User: sub}
%[4]s`, c.Issuers, c.LegacySecret, c.Upstream, c.Routes)
	b.WriteString(appRoute(strconv.Quote(c.Upstream), c.AppHeaders))
	return b.String()
}
