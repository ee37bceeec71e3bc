package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

// lg is a valid configuration with a login section against an external
// provider. Its login lines are 4 to 8, its route lines 9 to 12.
const lg = `issuers:
  - issuer: https://idp.example.com
    audiences: [api]
login:
  issuer: https://idp.example.com
  client_id: portcullis
  cookie:
    secret: ${COOKIE}
routes:
  - name: app
    upstream: http://127.0.0.1:3000
    on_unauthenticated: login
`

// lgVars sets the cookie secret of lg.
var lgVars = map[string]string{"COOKIE": strings.Repeat("c", 32)}

// lgKeys is lg with lines added to the login section (from line 9).
func lgKeys(lines ...string) string {
	const at = "    secret: ${COOKIE}\n"
	return strings.Replace(lg, at, at+"  "+strings.Join(lines, "\n  ")+"\n", 1)
}

// lgCookie is lg with lines added to the cookie (from line 9).
func lgCookie(lines ...string) string {
	const at = "    secret: ${COOKIE}\n"
	return strings.Replace(lg, at, at+"    "+strings.Join(lines, "\n    ")+"\n", 1)
}

// idpLogin is idp with a login section using the built-in issuer: issuers
// from line 10, login from line 13 (client_secret at 16), server at 18.
const idpLogin = idp + `issuers:
  - issuer: http://localhost:8080/idp
    audiences: [portcullis]
login:
  issuer: http://localhost:8080/idp
  client_id: portcullis
  client_secret: ${SECRET}
  cookie: {secret: "${COOKIE}"}
server: {public_url: "http://localhost:8080"}
`

// idpLoginVars sets the secrets of idpLogin.
var idpLoginVars = map[string]string{"SECRET": strings.Repeat("s", 16), "COOKIE": strings.Repeat("c", 32)}

const (
	loginKeys  = "issuer, client_id, client_secret, scopes, prefix, redirect_url, post_logout_redirect_url, cookie, allowed_redirect_hosts, refresh_before, provider_timeout, session_store, session_cache, backchannel_logout, backchannel_logout_require_typ, logout_store"
	cookieKeys = "name, secret, secure, max_age, domain"
)

func TestLoginValidate(t *testing.T) {
	tests := []struct {
		name, src string
		vars      map[string]string
		want      []string
	}{
		{name: "valid", src: lg},
		{name: "every key", src: lgKeys("client_secret: x", "scopes: [openid]", "prefix: /auth/x", "redirect_url: https://gw.example.com/auth/x/callback?a=1",
			"post_logout_redirect_url: https://www.example.com/bye", "allowed_redirect_hosts: [app.example.com, .example.org]", "refresh_before: 0s",
			"session_store: redis://localhost:6379/1") + "server: {public_url: 'https://gw.example.com'}\n"},
		// the section
		{name: "empty section", src: "login:\n" + base, want: []string{
			`t.yaml:1: login.issuer: is required; write the issuer URL of the OpenID provider, such as http://localhost:8080/idp, or remove the login: key`}},
		{name: "not a mapping", src: "login: [a]\n" + base, want: []string{
			`t.yaml:1: login: want a mapping with keys ` + loginKeys + `, got a list`}},
		{name: "unknown key", src: lgKeys("redirect_uri: https://gw.example.com/cb"), want: []string{
			`t.yaml:9: unknown key "redirect_uri" in login; valid keys: ` + loginKeys}},
		{name: "unknown cookie key", src: lgCookie("path: /"), want: []string{
			`t.yaml:9: unknown key "path" in login.cookie; valid keys: ` + cookieKeys}},
		{name: "everything missing", src: "login: {scopes: [profile]}\n" + base, want: []string{
			`t.yaml:1: login.client_id: is required; write the gateway's client_id at the provider, such as portcullis`,
			`t.yaml:1: login.cookie.secret: is required; write at least 32 random bytes from the environment, such as "${PORTCULLIS_COOKIE_SECRET}", or a list of keys to rotate them`,
			`t.yaml:1: login.issuer: is required; write the issuer URL of the OpenID provider, such as http://localhost:8080/idp`,
			`t.yaml:1: login.scopes: does not hold openid, without which the provider sends no ID token; add it`}},
		// on_unauthenticated
		{name: "on_unauthenticated login without login", src: route("on_unauthenticated: login"), want: []string{
			`t.yaml:7: routes[0].on_unauthenticated: login needs a login: section; add one, or use auto or deny`}},
		{name: "on_unauthenticated login with empty login", src: "login:\n" + route("on_unauthenticated: login"), want: []string{
			`t.yaml:1: login.issuer: is required; write the issuer URL of the OpenID provider, such as http://localhost:8080/idp, or remove the login: key`,
			`t.yaml:8: routes[0].on_unauthenticated: login needs a login: section; add one, or use auto or deny`}},
		{name: "on_unauthenticated mode", src: strings.Replace(lg, "on_unauthenticated: login", "on_unauthenticated: redirect", 1), want: []string{
			`t.yaml:12: routes[0].on_unauthenticated: "redirect" is not a mode; want auto, login or deny`}},
		// issuer
		{name: "issuer relative", src: strings.Replace(lg, "  issuer: https://idp.example.com\n  client_id", "  issuer: idp.example.com\n  client_id", 1), want: []string{
			`t.yaml:5: login.issuer: "idp.example.com" has no scheme; write it like https://idp.example.com`}},
		{name: "issuer query", src: strings.Replace(lg, "  issuer: https://idp.example.com\n", "  issuer: https://idp.example.com?x=1\n", 1), want: []string{
			`t.yaml:5: login.issuer: "https://idp.example.com?x=1" must not have a ?query; write it like https://example.com/path`}},
		{name: "issuer plain http", src: strings.ReplaceAll(lg, "https://idp.example.com", "http://idp.example.com"), want: []string{
			`t.yaml:2: issuers[0].issuer: "http://idp.example.com" is plain http on a host that is not loopback, so the issuer's keys would be fetched unauthenticated; use https, or set server.insecure_allow_http: true`,
			`t.yaml:5: login.issuer: "http://idp.example.com" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true when TLS ends in front of the provider`}},
		{name: "issuer plain http allowed", src: strings.ReplaceAll(lg, "https://idp.example.com", "http://idp.example.com") + "server: {insecure_allow_http: true}\n"},
		{name: "issuer not trusted", src: strings.Replace(lg, "  issuer: https://idp.example.com\n  client_id", "  issuer: https://login.example.com\n  client_id", 1), want: []string{
			`t.yaml:5: login.issuer: "https://login.example.com" is not listed under issuers, so the tokens the login gets would be refused; add it there with its audiences`}},
		{name: "issuer trailing slash differs", src: strings.Replace(lg, "  issuer: https://idp.example.com\n  client_id", "  issuer: https://idp.example.com/\n  client_id", 1), want: []string{
			`t.yaml:5: login.issuer: "https://idp.example.com/" is not listed under issuers, so the tokens the login gets would be refused; add it there with its audiences`}},
		// client
		{name: "client_id spaces", src: strings.Replace(lg, "client_id: portcullis", "client_id: ' portcullis'", 1), want: []string{
			`t.yaml:6: login.client_id: " portcullis" has spaces at either end or control characters; write the gateway's client_id at the provider`}},
		{name: "client_id from another provider", src: strings.Replace(lg, "client_id: portcullis", "client_id: 0oa1b2c3@clients.example.com", 1)},
		// scopes
		{name: "scopes empty", src: lgKeys("scopes: []"), want: []string{
			`t.yaml:9: login.scopes: lists no scope; want openid and the others to ask for, or leave the key out for [openid, profile, email, offline_access]`}},
		{name: "scopes without openid", src: lgKeys("scopes: [profile, email]"), want: []string{
			`t.yaml:9: login.scopes: does not hold openid, without which the provider sends no ID token; add it`}},
		{name: "scopes rules", src: lgKeys("scopes:", "  - openid", "  - openid", "  - 'read all'"), want: []string{
			`t.yaml:11: login.scopes[1]: scope openid is listed twice; list each scope once`,
			`t.yaml:12: login.scopes[2]: "read all" is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`}},
		// prefix
		{name: "prefix slash", src: lgKeys("prefix: oauth2"), want: []string{
			`t.yaml:9: login.prefix: "oauth2" must start with /; write it like /oauth2`}},
		{name: "prefix trailing slash", src: lgKeys("prefix: /oauth2/"), want: []string{
			`t.yaml:9: login.prefix: "/oauth2/" ends with /; write it without the trailing slash, like /oauth2`}},
		{name: "prefix root", src: lgKeys("prefix: /"), want: []string{
			`t.yaml:9: login.prefix: "/" ends with /; write it without the trailing slash, like /oauth2`}},
		{name: "prefix dot segment", src: lgKeys("prefix: /a/../oauth2"), want: []string{
			`t.yaml:9: login.prefix: "/a/../oauth2" must not hold . or .. segments, which clients' paths never match once cleaned; write it like /oauth2`}},
		{name: "prefix double slash", src: lgKeys("prefix: //oauth2"), want: []string{
			`t.yaml:9: login.prefix: "//oauth2" must not hold //; write it like /oauth2`}},
		{name: "prefix query", src: lgKeys("prefix: /oauth2?x"), want: []string{
			`t.yaml:9: login.prefix: "/oauth2?x" must not hold ?, # or %: it is matched against the decoded path, without query; write it like /oauth2`}},
		{name: "prefix is a route's", src: lg + "    path_prefix: /oauth2/\n", want: []string{
			`t.yaml:4: login.prefix: "/oauth2" is also the path_prefix of route "app" (line 13), which the gateway's own endpoints would hide; change one of them`}},
		{name: "prefix under a route", src: lg + "    path_prefix: /oauth\n"},
		{name: "prefix explicit is a route's", src: lgKeys("prefix: /auth") + "    path_prefix: /auth\n", want: []string{
			`t.yaml:9: login.prefix: "/auth" is also the path_prefix of route "app" (line 14), which the gateway's own endpoints would hide; change one of them`}},
		// redirect URLs
		{name: "redirect_url relative", src: lgKeys("redirect_url: /oauth2/callback"), want: []string{
			`t.yaml:9: login.redirect_url: "/oauth2/callback" is not an http or https URL; write it like https://example.com/path`}},
		{name: "redirect_url plain http", src: lgKeys("redirect_url: http://gw.example.com/oauth2/callback"), want: []string{
			`t.yaml:9: login.redirect_url: "http://gw.example.com/oauth2/callback" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true`}},
		{name: "post_logout_redirect_url fragment", src: lgKeys("post_logout_redirect_url: 'https://gw.example.com/#bye'"), want: []string{
			`t.yaml:9: login.post_logout_redirect_url: "https://gw.example.com/#bye" must not have a #fragment; write it like https://example.com/path`}},
		{name: "defaults from a bad public_url", src: "server: {public_url: 'ftp://gw'}\n" + lg, want: []string{
			`t.yaml:1: server.public_url: "ftp://gw" is not an http or https URL; write it like https://example.com/path`}},
		// cookie
		{name: "cookie name chars", src: lgCookie("name: 'my cookie'"), want: []string{
			`t.yaml:9: login.cookie.name: "my cookie" is not a cookie name; use letters, digits, - and _, such as _portcullis`}},
		{name: "cookie name __Host-", src: lgCookie("name: __Host-session"), want: []string{
			`t.yaml:9: login.cookie.name: "__Host-session" starts with __Host-; write the name without it: the gateway adds __Host- or __Secure- itself`}},
		{name: "cookie name __secure-", src: lgCookie("name: __secure-session"), want: []string{
			`t.yaml:9: login.cookie.name: "__secure-session" starts with __secure-; write the name without it: the gateway adds __Host- or __Secure- itself`}},
		{name: "cookie name empty is the default", src: lgCookie("name: ''")},
		{name: "secret unset", src: lg, vars: map[string]string{}, want: []string{
			`t.yaml:8: login.cookie.secret: environment variable COOKIE is not set`}},
		{name: "secret empty", src: lg, vars: map[string]string{"COOKIE": ""}, want: []string{
			`t.yaml:8: login.cookie.secret: is required; write at least 32 random bytes from the environment, such as "${PORTCULLIS_COOKIE_SECRET}", or a list of keys to rotate them`}},
		{name: "secret short", src: lg, vars: map[string]string{"COOKIE": "hunter2"}, want: []string{
			`t.yaml:8: login.cookie.secret: is 7 bytes; want at least 32 random bytes, such as openssl rand -base64 32 prints`}},
		{name: "secret list", src: strings.Replace(lg, "secret: ${COOKIE}", "secret:\n      - ${COOKIE}\n      - ${OLD}\n      - ${COOKIE}\n      - ${SHORT}", 1),
			vars: map[string]string{"COOKIE": strings.Repeat("c", 32), "OLD": strings.Repeat("o", 64), "SHORT": strings.Repeat("x", 31)}, want: []string{
				`t.yaml:11: login.cookie.secret[2]: is the same key as secret[0]; list each key once`,
				`t.yaml:12: login.cookie.secret[3]: is 31 bytes; want at least 32 random bytes, such as openssl rand -base64 32 prints`}},
		{name: "secret list of one", src: strings.Replace(lg, "secret: ${COOKIE}", "secret: ['${SHORT}']", 1), vars: map[string]string{"SHORT": "x"}, want: []string{
			`t.yaml:8: login.cookie.secret[0]: is 1 bytes; want at least 32 random bytes, such as openssl rand -base64 32 prints`}},
		{name: "secret list empty", src: strings.Replace(lg, "secret: ${COOKIE}", "secret: []", 1), want: []string{
			`t.yaml:8: login.cookie.secret: is required; write at least 32 random bytes from the environment, such as "${PORTCULLIS_COOKIE_SECRET}", or a list of keys to rotate them`}},
		{name: "secret mapping", src: strings.Replace(lg, "secret: ${COOKIE}", "secret: {a: b}", 1), want: []string{
			`t.yaml:8: login.cookie.secret: want a string or a list of strings`}},
		{name: "insecure cookie", src: lgCookie("secure: false") + "server: {public_url: 'https://gw.example.com'}\n", want: []string{
			`t.yaml:9: login.cookie.secure: is false, so browsers would send the session cookie over plain http to gw.example.com; set it to true, or set server.insecure_allow_http: true when TLS ends in front of the gateway`}},
		{name: "insecure cookie allowed", src: lgCookie("secure: false") + "server: {public_url: 'https://gw.example.com', insecure_allow_http: true}\n"},
		{name: "insecure cookie on loopback", src: lgCookie("secure: false")},
		{name: "max_age short", src: lgCookie("max_age: 30s"), want: []string{
			`t.yaml:9: login.cookie.max_age: is 30s; want from 1m to 720h, such as 12h`}},
		{name: "max_age long", src: lgCookie("max_age: 721h"), want: []string{
			`t.yaml:9: login.cookie.max_age: is 721h0m0s; want from 1m to 720h, such as 12h`}},
		{name: "max_age zero", src: lgCookie("max_age: 0s"), want: []string{
			`t.yaml:9: login.cookie.max_age: is 0s; want from 1m to 720h, such as 12h`}},
		{name: "max_age least", src: lgCookie("max_age: 1m")},
		{name: "max_age most", src: lgCookie("max_age: 720h")},
		{name: "domain dot", src: lgCookie("domain: .example.com"), want: []string{
			`t.yaml:9: login.cookie.domain: ".example.com" starts with a dot; write example.com, which covers its subdomains too`}},
		{name: "domain port", src: lgCookie("domain: example.com:443"), want: []string{
			`t.yaml:9: login.cookie.domain: "example.com:443" has a port; write a host name such as app.example.com, without port`}},
		{name: "domain does not cover", src: lgCookie("domain: example.com") + "server: {public_url: 'https://gw.example.org'}\n", want: []string{
			`t.yaml:9: login.cookie.domain: "example.com" does not cover gw.example.org, the host of login.redirect_url, so browsers would refuse the session cookie; set that host or a parent domain of it, or leave it empty`}},
		{name: "domain suffix is not a parent", src: lgCookie("domain: example.com") + "server: {public_url: 'https://myexample.com'}\n", want: []string{
			`t.yaml:9: login.cookie.domain: "example.com" does not cover myexample.com, the host of login.redirect_url, so browsers would refuse the session cookie; set that host or a parent domain of it, or leave it empty`}},
		{name: "domain parent", src: lgCookie("domain: Example.COM") + "server: {public_url: 'https://gw.example.com'}\n"},
		{name: "domain of redirect_url", src: strings.Replace(lgCookie("domain: example.com"), "routes:", "  redirect_url: https://auth.example.com/oauth2/callback\nroutes:", 1) + "server: {public_url: 'https://gw.example.org'}\n"},
		// allowed_redirect_hosts
		{name: "allowed_redirect_hosts", src: lgKeys("allowed_redirect_hosts: ['*.example.com', 'https://app.example.com', '.', 'App.example.com', 'app.example.com', '']"), want: []string{
			`t.yaml:9: login.allowed_redirect_hosts[0]: "*.example.com" holds a wildcard; write .example.com for every subdomain of example.com`,
			`t.yaml:9: login.allowed_redirect_hosts[1]: "https://app.example.com" is not a host; want a host name such as app.example.com, or .example.com for every subdomain of example.com`,
			`t.yaml:9: login.allowed_redirect_hosts[2]: "." is not a host; want a host name such as app.example.com, or .example.com for every subdomain of example.com`,
			`t.yaml:9: login.allowed_redirect_hosts[4]: "app.example.com" is listed twice; list each host once`,
			`t.yaml:9: login.allowed_redirect_hosts[5]: "" is not a host; want a host name such as app.example.com, or .example.com for every subdomain of example.com`}},
		// refresh_before, session_store
		{name: "refresh_before negative", src: lgKeys("refresh_before: -1m"), want: []string{
			`t.yaml:9: login.refresh_before: duration "-1m" must not be negative`}},
		{name: "provider_timeout too short", src: lgKeys("provider_timeout: 10ms"), want: []string{
			`t.yaml:9: login.provider_timeout: is 10ms; want from 100ms to 1m, such as 10s`}},
		{name: "session_store case", src: lgKeys("session_store: Redis"), want: []string{
			`t.yaml:9: login.session_store: "Redis" is not a session store; names are case-sensitive: write redis`}},
		{name: "session_store unknown", src: lgKeys("session_store: disk"), want: []string{
			`t.yaml:9: login.session_store: "disk" is not a session store; want cookie, memory, redis (the issuer's Redis) or a Redis URL such as redis://localhost:6379/0`}},
		{name: "session_store memory case", src: lgKeys("session_store: Memory"), want: []string{
			`t.yaml:9: login.session_store: "Memory" is not a session store; names are case-sensitive: write memory`}},
		// back-channel logout
		{name: "backchannel_logout", src: lgKeys("backchannel_logout: true", "backchannel_logout_require_typ: true", "logout_store: redis://localhost:6379/2")},
		{name: "backchannel_logout with redis sessions", src: lgKeys("backchannel_logout: true", "session_store: redis://localhost:6379/1")},
		{name: "logout_store without backchannel_logout", src: lgKeys("logout_store: memory", "backchannel_logout_require_typ: true"), want: []string{
			`t.yaml:9: login.logout_store: has no effect without login.backchannel_logout: true; set that too, or remove this key`,
			`t.yaml:10: login.backchannel_logout_require_typ: has no effect without login.backchannel_logout: true; set that too, or remove this key`}},
		{name: "logout_store unknown", src: lgKeys("backchannel_logout: true", "logout_store: cookie"), want: []string{
			`t.yaml:10: login.logout_store: "cookie" is not a logout store; want memory, redis (the issuer's Redis) or a Redis URL such as redis://localhost:6379/0`}},
		{name: "logout_store case", src: lgKeys("backchannel_logout: true", "logout_store: Memory"), want: []string{
			`t.yaml:10: login.logout_store: "Memory" is not a logout store; names are case-sensitive: write memory`}},
		{name: "logout_store redis without the issuer's", src: lgKeys("backchannel_logout: true", "logout_store: redis"), want: []string{
			`t.yaml:10: login.logout_store: redis shares the built-in issuer's Redis, and issuer.store is not a Redis URL; write a Redis URL here, such as redis://localhost:6379/0`}},
		{name: "logout_store beside redis sessions", src: lgKeys("backchannel_logout: true", "session_store: redis://localhost:6379/1", "logout_store: memory"), want: []string{
			`t.yaml:11: login.logout_store: is "memory", but sessions live in Redis (login.session_store), where a logout deletes them and its token ids are kept; remove this key`}},
		// session_cache
		{name: "session_cache negative", src: lgKeys("session_cache: {entries: -1}"), want: []string{
			`t.yaml:9: login.session_cache.entries: is -1; want a number of sessions such as 10000, or 0 to turn the cache off`}},
		{name: "session_cache no bytes", src: lgKeys("session_cache: {bytes: 0}"), want: []string{
			`t.yaml:9: login.session_cache.bytes: is 0; want a positive number of bytes, such as 16777216`}},
		{name: "session_cache off", src: lgKeys("session_cache: {entries: 0, bytes: 0}")},
		{name: "session_cache typo", src: lgKeys("session_cache: {entry: 5}"), want: []string{
			`t.yaml:9: unknown key "entry" in login.session_cache; valid keys: entries, bytes`}},
	}
	for _, tt := range tests {
		vars := tt.vars
		if vars == nil {
			vars = lgVars
		}
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, vars, tt.want...) })
	}
}

func TestLoginBuiltinIssuer(t *testing.T) {
	const cb = "http://localhost:8080/oauth2/callback"
	tests := []struct {
		name, src string
		vars      map[string]string
		want      []string
	}{
		{name: "valid", src: idpLogin},
		{name: "with a route", src: idpLogin + "routes:\n  - {name: app, upstream: 'http://127.0.0.1:3000', on_unauthenticated: login}\n"},
		{name: "no such client", src: strings.Replace(idpLogin, "client_id: portcullis", "client_id: gateway", 1), want: []string{
			`t.yaml:15: login.client_id: the built-in issuer has no client "gateway"; add it under issuer.clients with redirect_uris: [` + cb + `], or change login.client_id`}},
		{name: "redirect URL missing", src: strings.Replace(idpLogin, "localhost:8080\"}", "127.0.0.1:8080\"}", 1), want: []string{
			`t.yaml:15: login.client_id: client "portcullis" of the built-in issuer (line 4) does not list the redirect URL http://127.0.0.1:8080/oauth2/callback in its redirect_uris; add it there, or set login.redirect_url to one it lists`}},
		{name: "redirect URL from prefix", src: strings.Replace(idpLogin, "  cookie:", "  prefix: /auth\n  cookie:", 1), want: []string{
			`t.yaml:15: login.client_id: client "portcullis" of the built-in issuer (line 4) does not list the redirect URL http://localhost:8080/auth/callback in its redirect_uris; add it there, or set login.redirect_url to one it lists`}},
		{name: "redirect URL explicit", src: strings.Replace(idpLogin, "  cookie:", "  prefix: /auth\n  redirect_url: "+cb+"\n  cookie:", 1)},
		{name: "redirect URL from public_url with a slash", src: strings.Replace(idpLogin, "localhost:8080\"}", "localhost:8080/\"}", 1)},
		{name: "no authorization_code", src: strings.Replace(idpLogin, "      redirect_uris:", "      grant_types: [client_credentials]\n      redirect_uris:", 1), want: []string{
			`t.yaml:16: login.client_id: client "portcullis" of the built-in issuer (line 4) lacks the authorization_code grant the login uses; add it to its grant_types`}},
		{name: "scopes the client may not get", src: strings.Replace(idpLogin, "  cookie:", "  scopes: [openid, read, email, write]\n  cookie:", 1), want: []string{
			`t.yaml:17: login.scopes: client "portcullis" of the built-in issuer (line 4) may not get read, write; add them to its scopes, or remove them here`}},
		{name: "secret missing", src: strings.Replace(idpLogin, "  client_secret: ${SECRET}\n", "", 1), want: []string{
			`t.yaml:13: login.client_secret: is empty, but client "portcullis" of the built-in issuer (line 4) is confidential; set it to the client's secret, or make the client public`}},
		{name: "secret differs", src: strings.Replace(idpLogin, "client_secret: ${SECRET}", "client_secret: ${OTHER}", 1),
			vars: map[string]string{"SECRET": strings.Repeat("s", 16), "OTHER": strings.Repeat("o", 16), "COOKIE": strings.Repeat("c", 32)}, want: []string{
				`t.yaml:16: login.client_secret: differs from the secret of client "portcullis" of the built-in issuer (line 4); set both from the same environment variable`}},
		{name: "secret with a public client", src: strings.Replace(idpLogin, "      secret: ${SECRET}\n", "      public: true\n", 1), want: []string{
			`t.yaml:16: login.client_secret: is set, but client "portcullis" of the built-in issuer (line 4) is public and refuses secrets; remove client_secret, or make the client confidential`}},
		{name: "public client", src: strings.Replace(strings.Replace(idpLogin, "      secret: ${SECRET}\n", "      public: true\n", 1), "  client_secret: ${SECRET}\n", "", 1)},
		{name: "secret hash", src: strings.Replace(idpLogin, "      secret: ${SECRET}\n", "      secret_hash: '"+aliceHash+"'\n", 1)},
		{name: "issuer with trailing slash", src: strings.Replace(idpLogin, "  issuer: http://localhost:8080/idp\n  client_id", "  issuer: http://localhost:8080/idp/\n  client_id", 1), want: []string{
			`t.yaml:14: login.issuer: "http://localhost:8080/idp/" is the built-in issuer's URL with a trailing slash; write it exactly as issuer.url: http://localhost:8080/idp`}},
		{name: "prefix is the issuer's path", src: strings.Replace(idpLogin, "  cookie:", "  prefix: /idp\n  redirect_url: "+cb+"\n  cookie:", 1), want: []string{
			`t.yaml:17: login.prefix: "/idp" overlaps /idp, the path of the built-in issuer (issuer.url, line 2); give the gateway's endpoints a path of their own, such as /oauth2`}},
		{name: "prefix under the issuer's path", src: strings.Replace(idpLogin, "  cookie:", "  prefix: /idp/oauth2\n  redirect_url: "+cb+"\n  cookie:", 1), want: []string{
			`t.yaml:17: login.prefix: "/idp/oauth2" overlaps /idp, the path of the built-in issuer (issuer.url, line 2); give the gateway's endpoints a path of their own, such as /oauth2`}},
		{name: "prefix around the issuer's path", src: strings.Replace(strings.ReplaceAll(idpLogin, "8080/idp", "8080/oauth2/idp"), "  cookie:", "  prefix: /oauth2\n  cookie:", 1), want: []string{
			`t.yaml:17: login.prefix: "/oauth2" overlaps /oauth2/idp, the path of the built-in issuer (issuer.url, line 2); give the gateway's endpoints a path of their own, such as /oauth2`}},
		{name: "prefix beside the issuer's path", src: strings.Replace(strings.ReplaceAll(idpLogin, "8080/idp", "8080/oauth2x"), "  cookie:", "  prefix: /oauth2\n  cookie:", 1)},
		{name: "issuer at the root", src: strings.ReplaceAll(idpLogin, "8080/idp", "8080")},
		{name: "another provider", src: strings.ReplaceAll(strings.Replace(idpLogin, "client_id: portcullis", "client_id: other", 1), "issuer: http://localhost:8080/idp", "issuer: http://127.0.0.1:9999/idp")},
	}
	for _, tt := range tests {
		vars := tt.vars
		if vars == nil {
			vars = idpLoginVars
		}
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, vars, tt.want...) })
	}
}

func TestLoginDefaults(t *testing.T) {
	src := "server:\n  public_url: https://gw.example.com/base/\n" + lgKeys("allowed_redirect_hosts: [App.Example.com, .Example.org]") + "    timeout: 5s\n"
	cfg, errs := parse(t, src, lgVars)
	if errs != nil {
		t.Fatal(errs)
	}
	want := config.Login{
		Issuer:                "https://idp.example.com",
		ClientID:              "portcullis",
		Scopes:                []string{"openid", "profile", "email", "offline_access"},
		Prefix:                "/oauth2",
		RedirectURL:           "https://gw.example.com/base/oauth2/callback",
		PostLogoutRedirectURL: "https://gw.example.com/base/",
		Cookie: config.LoginCookie{
			Name:   "_portcullis",
			Secret: config.StringList{lgVars["COOKIE"]},
			Secure: true,
			MaxAge: config.Duration(12 * time.Hour),
		},
		AllowedRedirectHosts: []string{"app.example.com", ".example.org"},
		RefreshBefore:        config.Duration(time.Minute),
		ProviderTimeout:      config.Duration(10 * time.Second),
		SessionStore:         "cookie",
		SessionCache:         config.SessionCache{Entries: 10000, Bytes: 16 << 20},
	}
	if cfg.Login == nil || !reflect.DeepEqual(*cfg.Login, want) {
		t.Errorf("login with defaults:\n got  %+v\n want %+v", cfg.Login, want)
	}
	if r := cfg.Routes[0]; r.OnUnauthenticated != "login" {
		t.Errorf("on_unauthenticated = %q", r.OnUnauthenticated)
	}

	// From server.listen, through the defaulted public_url; a prefix of its
	// own moves the redirect URL.
	cfg, errs = parse(t, "server: {listen: '127.0.0.1:9000'}\n"+lgKeys("prefix: /_auth"), lgVars)
	if errs != nil {
		t.Fatal(errs)
	}
	if l := cfg.Login; l.RedirectURL != "http://127.0.0.1:9000/_auth/callback" || l.PostLogoutRedirectURL != "http://127.0.0.1:9000/" {
		t.Errorf("redirect URLs from server.listen = %q, %q", l.RedirectURL, l.PostLogoutRedirectURL)
	}
	if got, want := cfg.Pos("login.redirect_url"), "t.yaml:5"; got != want {
		t.Errorf("Pos of a defaulted login key = %q, want %q", got, want)
	}

	// Without the section, Login is nil.
	cfg, errs = parse(t, base, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	if cfg.Login != nil {
		t.Errorf("Login = %+v, want nil", cfg.Login)
	}
}

func TestLoginDefaultsExplicit(t *testing.T) {
	src := lgCookie("secure: false", "max_age:", "name:") + "server:\n  public_url: http://localhost:8080\n"
	src = strings.Replace(src, "  client_id: portcullis\n", "  client_id: portcullis\n  scopes: [openid]\n  refresh_before: 0s\n  redirect_url: ''\n", 1)
	cfg, errs := parse(t, src, lgVars)
	if errs != nil {
		t.Fatal(errs)
	}
	l := cfg.Login
	if l.Cookie.Secure || l.RefreshBefore != 0 || len(l.Scopes) != 1 {
		t.Errorf("an explicit value was replaced by a default: %+v", l)
	}
	if l.Cookie.MaxAge.D() != 12*time.Hour || l.Cookie.Name != "_portcullis" || l.RedirectURL != "http://localhost:8080/oauth2/callback" {
		t.Errorf("a key with an empty value did not get its default: %+v", l)
	}
}

func TestLoginSecretList(t *testing.T) {
	vars := map[string]string{"NEW": strings.Repeat("n", 32), "OLD": strings.Repeat("o", 48)}
	for name, secret := range map[string]string{
		"block": "secret:\n      - ${NEW}\n      - ${OLD}",
		"flow":  "secret: ['${NEW}', '${OLD}']",
	} {
		t.Run(name, func(t *testing.T) {
			cfg, errs := parse(t, strings.Replace(lg, "secret: ${COOKIE}", secret, 1), vars)
			if errs != nil {
				t.Fatal(errs)
			}
			if got, want := cfg.Login.Cookie.Secret, (config.StringList{vars["NEW"], vars["OLD"]}); !reflect.DeepEqual(got, want) {
				t.Errorf("secret = %d keys, want the two in order", len(got))
			}
		})
	}
}

func TestLoginValidateInCode(t *testing.T) {
	c := &config.Config{
		Server:  config.Server{Listen: "127.0.0.1:8080", PublicURL: "http://localhost:8080", MaxHeaderBytes: 1 << 15},
		Admin:   config.Admin{Listen: "off"},
		Log:     config.Log{Level: "info", Format: "text"},
		Issuers: []config.Issuer{{Issuer: "https://idp.example.com", Audiences: []string{"api"}, Algorithms: []string{"RS256"}}},
		Routes: []config.Route{{Name: "r", PathPrefix: "/", Upstream: "http://u", Auth: "required", OnUnauthenticated: "login",
			ForwardToken: "none", TokenFrom: []string{"header"}}},
		Login: &config.Login{
			Issuer: "https://idp.example.com", ClientID: "portcullis", Scopes: []string{"openid"}, Prefix: "/oauth2",
			RedirectURL: "http://localhost:8080/oauth2/callback", PostLogoutRedirectURL: "http://localhost:8080/",
			Cookie:       config.LoginCookie{Name: "_portcullis", Secret: config.StringList{"k1", strings.Repeat("k", 32)}, Secure: true, MaxAge: config.Duration(-time.Hour)},
			SessionStore: "cookie",
		},
	}
	err := c.Validate()
	want := "login.cookie.max_age: must not be negative; write a duration such as 30s, or 0s\n" +
		"login.cookie.secret[0]: is 2 bytes; want at least 32 random bytes, such as openssl rand -base64 32 prints"
	if got := err.Error(); got != want {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
	c.Login.Cookie.MaxAge = config.Duration(time.Hour)
	c.Login.Cookie.Secret = c.Login.Cookie.Secret[1:]
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}
