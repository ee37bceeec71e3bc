package config_test

import (
	"strings"
	"testing"
)

// route is base with lines added to its one route (they start at line 7).
func route(lines ...string) string {
	return base + "    " + strings.Join(lines, "\n    ") + "\n"
}

// issuer is base with lines added to its one issuer (they start at line 4).
func issuer(lines ...string) string {
	return strings.Replace(base, "    audiences: [api]\n", "    audiences: [api]\n    "+strings.Join(lines, "\n    ")+"\n", 1)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, src string
		vars      map[string]string
		want      []string
	}{
		// server
		{name: "listen not host:port", src: "server:\n  listen: \"8080\"\n" + base, want: []string{
			`t.yaml:2: server.listen: "8080" is not host:port; write it like 127.0.0.1:8080, :8080 or [::1]:8080`}},
		{name: "listen port range", src: "server:\n  listen: 127.0.0.1:70000\n  public_url: http://localhost\n" + base, want: []string{
			`t.yaml:2: server.listen: port "70000" of "127.0.0.1:70000" is not a number from 0 to 65535`}},
		{name: "public_url scheme", src: "server:\n  public_url: ftp://gw\n" + base, want: []string{
			`t.yaml:2: server.public_url: "ftp://gw" is not an http or https URL; write it like https://example.com/path`}},
		{name: "public_url query", src: "server:\n  public_url: https://gw/?a=b\n" + base, want: []string{
			`t.yaml:2: server.public_url: "https://gw/?a=b" must not have a ?query; write it like https://example.com/path`}},
		{name: "public_url fragment", src: "server:\n  public_url: https://gw/#x\n" + base, want: []string{
			`t.yaml:2: server.public_url: "https://gw/#x" must not have a #fragment; write it like https://example.com/path`}},
		{name: "public_url user info", src: "server:\n  public_url: https://u:secret@gw/\n" + base, want: []string{
			`t.yaml:2: server.public_url: must not hold a user name or password; write it like https://example.com/path`}},
		{name: "public_url plain http", src: "server:\n  public_url: http://gw.example.com\n" + base, want: []string{
			`t.yaml:2: server.public_url: "http://gw.example.com" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true when TLS ends in front of the gateway`}},
		{name: "public_url plain http allowed", src: "server:\n  public_url: http://gw.example.com\n  insecure_allow_http: true\n" + base},
		{name: "public_url loopback", src: "server:\n  public_url: http://127.1.2.3:8080\n" + base},
		{name: "public_url defaulted", src: "server:\n  listen: \":8080\"\n" + base, want: []string{
			`t.yaml:1: server.public_url: "http://:8080" has no host; write it like https://example.com/path (defaulted from server.listen; set server.public_url to the URL clients use)`}},
		{name: "trusted_proxies", src: "server:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n" + base, want: []string{
			`t.yaml:2: server.trusted_proxies[1]: "10.0.0.0/33" is not an IP address or CIDR; write it like 10.0.0.0/8, fd00::/8 or 192.0.2.7`}},
		{name: "tls one file", src: "server:\n  tls:\n    cert_file: cert.pem\n" + base, want: []string{
			`t.yaml:2: server.tls.key_file: is empty but cert_file is set; set both to serve HTTPS, or neither`}},
		{name: "max_header_bytes", src: "server:\n  max_header_bytes: 0\n" + base, want: []string{
			`t.yaml:2: server.max_header_bytes: is 0; want a positive number of bytes, such as 32768`}},
		// admin, log
		{name: "admin listen", src: "admin:\n  listen: nowhere\n" + base, want: []string{
			`t.yaml:2: admin.listen: "nowhere" is not host:port; write it like 127.0.0.1:8080, :8080 or [::1]:8080, or off`}},
		{name: "admin off", src: "admin:\n  listen: \"off\"\n" + base},
		{name: "admin same as server", src: "server:\n  listen: 127.0.0.1:9000\nadmin:\n  listen: :9000\n" + base, want: []string{
			`t.yaml:4: admin.listen: ":9000" is the address of server.listen too; give the admin listener another port, or write off`}},
		{name: "log level", src: "log:\n  level: INFO\n" + base, want: []string{
			`t.yaml:2: log.level: "INFO" is not a level; want debug, info, warn or error`}},
		{name: "log format", src: "log:\n  format: xml\n" + base, want: []string{
			`t.yaml:2: log.format: "xml" is not a format; want text or json`}},
		// issuers
		{name: "issuer required", src: "issuers:\n  - audiences: [api]\nroutes:\n  - {name: a, upstream: 'http://u'}\n", want: []string{
			`t.yaml:2: issuers[0].issuer: is required; write the exact "iss" value of its tokens, like https://idp.example.com`}},
		{name: "issuer URL", src: strings.Replace(base, "https://idp.example.com", "idp.example.com", 1), want: []string{
			`t.yaml:2: issuers[0].issuer: "idp.example.com" has no scheme; write it like https://idp.example.com`}},
		{name: "issuer unique", src: strings.Replace(base, "routes:", "  - issuer: https://idp.example.com\n    audiences: [x]\nroutes:", 1), want: []string{
			`t.yaml:4: issuers[1].issuer: "https://idp.example.com" is already listed as issuers[0] (line 2); list each issuer once`}},
		{name: "jwks_uri", src: issuer("jwks_uri: /certs"), want: []string{
			`t.yaml:4: issuers[0].jwks_uri: "/certs" is not an http or https URL; write it like https://example.com/path`}},
		{name: "audience empty", src: strings.Replace(base, "[api]", `[api, ""]`, 1), want: []string{
			`t.yaml:3: issuers[0].audiences[1]: is empty; want an "aud" value such as my-api`}},
		{name: "algorithms empty", src: issuer("algorithms: []"), want: []string{
			`t.yaml:4: issuers[0].algorithms: lists no algorithm; want some of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384, HS512, or leave the key out for [ES256, RS256]`}},
		{name: "algorithm none", src: issuer("algorithms: [ES256, None]"), want: []string{
			`t.yaml:4: issuers[0].algorithms[1]: "None" is never allowed: it accepts unsigned tokens that anyone can forge (RFC 8725 §2.1, §3.1)`}},
		{name: "algorithm case", src: issuer("algorithms: [eddsa]"), want: []string{
			`t.yaml:4: issuers[0].algorithms[0]: "eddsa" is not an algorithm name; names are case-sensitive: write EdDSA`}},
		{name: "algorithm unknown", src: issuer("algorithms: [ES256K]"), want: []string{
			`t.yaml:4: issuers[0].algorithms[0]: "ES256K" is not a supported algorithm; want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384, HS512`}},
		{name: "algorithm twice", src: issuer("algorithms: [ES256, ES256]"), want: []string{
			`t.yaml:4: issuers[0].algorithms[1]: algorithm ES256 is listed twice; list each algorithm once`}},
		{name: "HS without secret", src: issuer("algorithms: [HS256]"), want: []string{
			`t.yaml:4: issuers[0].algorithms[0]: algorithm HS256 needs hmac_secret on this issuer; set it, or remove HS256`}},
		{name: "secret too short", src: issuer("hmac_secret: ${S}"), vars: map[string]string{"S": strings.Repeat("s", 31)}, want: []string{
			`t.yaml:4: issuers[0].hmac_secret: is 31 bytes; want at least 32 random bytes for the algorithms listed (RFC 7518 §3.2, RFC 8725 §3.5)`}},
		{name: "secret short for HS512", src: issuer("hmac_secret: ${S}", "algorithms: [HS256, HS512]"), vars: map[string]string{"S": strings.Repeat("s", 48)}, want: []string{
			`t.yaml:4: issuers[0].hmac_secret: is 48 bytes; want at least 64 random bytes for the algorithms listed (RFC 7518 §3.2, RFC 8725 §3.5)`}},
		{name: "secret and asymmetric without jwks_uri", src: issuer("hmac_secret: ${S}", "algorithms: [HS256, RS256]"), vars: map[string]string{"S": strings.Repeat("s", 32)}, want: []string{
			`t.yaml:5: issuers[0].algorithms[1]: algorithm RS256 needs keys from jwks_uri, but an issuer with hmac_secret does not use discovery; set jwks_uri, or remove RS256`}},
		{name: "secret and asymmetric with jwks_uri", src: issuer("hmac_secret: ${S}", "algorithms: [HS256, RS256]", "jwks_uri: https://idp.example.com/certs"), vars: map[string]string{"S": strings.Repeat("s", 32)}},
		{name: "secret without HS", src: issuer("hmac_secret: ${S}", "algorithms: [RS256]", "jwks_uri: https://idp.example.com/certs"), vars: map[string]string{"S": strings.Repeat("s", 32)}, want: []string{
			`t.yaml:4: issuers[0].hmac_secret: is set but algorithms lists none of HS256, HS384, HS512; add one, or remove the secret`}},
		{name: "jwks fetch timeout", src: issuer("jwks_fetch_timeout: 10ms"), want: []string{
			`t.yaml:4: issuers[0].jwks_fetch_timeout: is 10ms; want from 100ms to 1m, such as 5s`}},
		{name: "jwks ages", src: issuer("jwks_min_age: 2h"), want: []string{
			`t.yaml:4: issuers[0].jwks_min_age: is 2h0m0s, longer than jwks_max_age 1h0m0s; want jwks_min_age <= jwks_max_age`}},
		{name: "typ", src: issuer("typ: at jwt"), want: []string{
			`t.yaml:4: issuers[0].typ: "at jwt" is not a type name; write it like at+jwt or application/at+jwt, without spaces`}},
		// routes
		{name: "no routes", src: "issuers: []\n", want: []string{
			`t.yaml: routes: no routes; add at least one under routes: with a name and an upstream, or an issuer: section to run the built-in issuer alone`}},
		{name: "route key twice", src: route("name: other"), want: []string{
			`t.yaml:7: routes[0].name: duplicate key; it is first set at line 5`}},
		{name: "route name empty", src: strings.Replace(base, "name: app", "name: ''", 1), want: []string{
			`t.yaml:5: routes[0].name: is required; name the route with letters, digits, ".", "_" or "-"`}},
		{name: "route name unique", src: base + "  - name: app\n    upstream: http://127.0.0.1:3001\n    path_prefix: /b\n", want: []string{
			`t.yaml:7: routes[1].name: route name "app" is already used at line 5; names must be unique`}},
		// server.dpop, require_sender_constraint
		{name: "dpop", src: "server:\n  dpop: {algorithms: [ES256, EdDSA], max_age: 2m, nonce: true}\n" + base},
		{name: "dpop HMAC", src: "server:\n  dpop: {algorithms: [HS256]}\n" + base, want: []string{
			`t.yaml:2: server.dpop.algorithms[0]: "HS256" is not a DPoP proof algorithm; want one of ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA, Ed25519 (asymmetric only: a proof is signed with the client's own key)`}},
		{name: "dpop max_age", src: "server:\n  dpop: {max_age: 1h}\n" + base, want: []string{
			`t.yaml:2: server.dpop.max_age: is 1h0m0s; want from 1s to 10m, such as 60s`}},
		{name: "sender constraint", src: route("require_sender_constraint: dpop")},
		{name: "sender constraint unknown", src: route("require_sender_constraint: tls"), want: []string{
			`t.yaml:7: routes[0].require_sender_constraint: "tls" is not a constraint; want dpop (DPoP-bound tokens, RFC 9449), mtls (bound to the client certificate, RFC 8705) or any (either), or leave it out for bearer tokens too`}},
		{name: "mtls without client certificates", src: route("require_sender_constraint: mtls"), want: []string{
			`t.yaml:7: routes[0].require_sender_constraint: mtls needs client certificates: set server.tls.client_ca_file, or server.tls.client_cert_header behind a proxy that ends TLS`}},
		{name: "client cert header", src: "server:\n  trusted_proxies: [10.0.0.1]\n  tls: {client_cert_header: {name: X-Forwarded-Client-Cert, format: xfcc}}\n" + route("require_sender_constraint: mtls")},
		{name: "client cert header untrusted", src: "server:\n  tls: {client_cert_header: {name: X-Client-Cert, format: der}}\n" + base, want: []string{
			`t.yaml:2: server.tls.client_cert_header.format: "der" is not a format; want xfcc (Envoy's X-Forwarded-Client-Cert) or pem (URL-escaped PEM, nginx's $ssl_client_escaped_cert)`}},
		{name: "client CA without TLS", src: "server:\n  tls: {client_ca_file: /etc/ca.pem, client_auth: always}\n" + base, want: []string{
			`t.yaml:2: server.tls.client_auth: "always" is not a mode; want optional (a client may send no certificate) or require`,
			`t.yaml:2: server.tls.client_ca_file: needs cert_file and key_file: client certificates come with TLS on this listener (behind a proxy that ends TLS, use client_cert_header)`}},
		// methods, cors_preflight, rules
		{name: "methods", src: route("methods: [GET, HEAD, PROPFIND]", "cors_preflight: pass")},
		{name: "methods lower case", src: route("methods: [GET, post]"), want: []string{
			`t.yaml:7: routes[0].methods[1]: "post": methods are case-sensitive and written in capitals; write POST`}},
		{name: "methods twice", src: route("methods: [GET, GET]"), want: []string{
			`t.yaml:7: routes[0].methods[1]: GET is already listed at methods[0]`}},
		{name: "methods not a token", src: route(`methods: ["GET /"]`), want: []string{
			`t.yaml:7: routes[0].methods[0]: "GET /" is not a method; write one such as GET, POST or DELETE`}},
		{name: "methods empty", src: route("methods: []"), want: []string{
			`t.yaml:7: routes[0].methods: is empty, which would refuse every request; list the methods the route serves, or remove the key to serve all`}},
		{name: "cors_preflight", src: route("cors_preflight: allow"), want: []string{
			`t.yaml:7: routes[0].cors_preflight: "allow" is not a mode; want check (a preflight is a request like any other) or pass (preflights go to the upstream without a token)`}},
		{name: "rules", src: route("rules:", `  - {name: staff, allow: 'request.method in ["GET", "HEAD"] && "staff" in claims.groups'}`,
			`  - allow: 'request.path.startsWith("/users/" + claims.sub + "/")'`, `  - deny: 'true'`)},
		{name: "rule syntax error", src: route("rules:", `  - allow: 'request.method == "GET" &&'`), want: []string{
			`t.yaml:8: routes[0].rules[0].allow: column 27: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`}},
		{name: "rule type error", src: route("rules:", `  - allow: 'true'`, `  - name: sum`, `    deny: 'claims.groups + 1'`), want: []string{
			`t.yaml:10: routes[0].rules[1].deny: is of type int; a rule must be a bool (true or false)`}},
		{name: "rule undeclared", src: route("rules:", `  - allow: 'request.metod == "GET"'`), want: []string{
			`t.yaml:8: routes[0].rules[0].allow: column 8: undefined field 'metod'`}},
		{name: "rule over budget", src: route("rules:", `  - allow: 'claims.groups.all(a, claims.groups.all(b, a != b))'`), want: []string{
			`t.yaml:8: routes[0].rules[0].allow: estimated cost 150603 exceeds server.rules.max_cost (100000), with lists of at most 100 elements (server.rules.max_list_size); simplify the expression or raise the limit`}},
		{name: "rule within a raised budget", src: "server:\n  rules: {max_cost: 200000}\n" + route("rules:", `  - allow: 'claims.groups.all(a, claims.groups.all(b, a != b))'`)},
		{name: "rule limits", src: "server:\n  rules: {max_cost: 0, max_list_size: -1}\n" + base, want: []string{
			`t.yaml:2: server.rules.max_cost: is 0; want a positive cost, such as 100000`,
			`t.yaml:2: server.rules.max_list_size: is -1; want a positive number of elements, such as 100`}},
		{name: "rule both", src: route("rules:", `  - {allow: 'true', deny: 'false'}`), want: []string{
			`t.yaml:8: routes[0].rules[0]: has both allow and deny; a rule is one of them`}},
		{name: "rule neither", src: route("rules:", `  - name: x`), want: []string{
			`t.yaml:8: routes[0].rules[0]: needs allow: or deny: with a CEL expression, such as allow: '"staff" in claims.groups'`}},
		{name: "rule names", src: route("rules:", `  - {name: a, allow: 'true'}`, `  - {name: a, deny: 'true'}`, `  - {name: "a b", deny: 'true'}`), want: []string{
			`t.yaml:9: routes[0].rules[1].name: rule name "a" is already used by rules[0]`,
			`t.yaml:10: routes[0].rules[2].name: "a b" is not a rule name; use only letters, digits, ".", "_" and "-"`}},
		{name: "host URL", src: route("host: https://app.example.com"), want: []string{
			`t.yaml:7: routes[0].host: "https://app.example.com" is a URL; write a host name such as app.example.com, without scheme`}},
		{name: "host port", src: route("host: app.example.com:443"), want: []string{
			`t.yaml:7: routes[0].host: "app.example.com:443" has a port; write a host name such as app.example.com, without port`}},
		{name: "host path", src: route("host: app.example.com/x"), want: []string{
			`t.yaml:7: routes[0].host: "app.example.com/x" has a path; write a host name such as app.example.com, and use path_prefix for paths`}},
		{name: "host label", src: route("host: -app.example.com"), want: []string{
			`t.yaml:7: routes[0].host: "-app.example.com" is not a host name; write a host name such as app.example.com (letters, digits, - and dots)`}},
		{name: "host wildcard inside", src: route(`host: "a.*.example.com"`), want: []string{
			`t.yaml:7: routes[0].host: "a.*.example.com": a wildcard stands for the whole first label only, as in *.example.com`}},
		{name: "host wildcard partial label", src: route(`host: "*app.example.com"`), want: []string{
			`t.yaml:7: routes[0].host: "*app.example.com": a wildcard stands for the whole first label only, as in *.example.com`}},
		{name: "host wildcard bad rest", src: route(`host: "*.-x.com"`), want: []string{
			`t.yaml:7: routes[0].host: "*.-x.com": after "*.", "-x.com" is not a host name; write a host name such as app.example.com (letters, digits, - and dots)`}},
		{name: "host trailing dot", src: route("host: app.example.com."), want: []string{
			`t.yaml:7: routes[0].host: "app.example.com." ends in a dot; write it without, as app.example.com (requests for app.example.com. are served too)`}},
		{name: "upstream h2c", src: strings.Replace(base, "upstream: http://127.0.0.1:3000", "upstream: h2c://127.0.0.1:50051", 1)},
		{name: "upstream h2c without host", src: strings.Replace(base, "upstream: http://127.0.0.1:3000", "upstream: h2c:///x", 1), want: []string{
			`t.yaml:6: routes[0].upstream: "h2c:///x" has no host; write it like https://example.com/path`}},
		{name: "upstream scheme", src: strings.Replace(base, "upstream: http://127.0.0.1:3000", "upstream: grpc://127.0.0.1:50051", 1), want: []string{
			`t.yaml:6: routes[0].upstream: "grpc://127.0.0.1:50051" is not an http, https or h2c URL; write it like https://example.com/path`}},
		{name: "h2c with tls", src: "server:\n  h2c: true\n  tls: {cert_file: testdata/minimal.yaml, key_file: testdata/minimal.yaml}\n" + base, want: []string{
			`t.yaml:2: server.h2c: is for the plain listener; with server.tls, HTTP/2 is negotiated by ALPN: remove h2c`}},
		{name: "upstream without scheme", src: strings.Replace(base, "upstream: http://127.0.0.1:3000", "upstream: 127.0.0.1:3000", 1), want: []string{
			`t.yaml:6: routes[0].upstream: "127.0.0.1:3000" has no scheme; write it like http://127.0.0.1:3000`}},
		{name: "path_prefix slash", src: route("path_prefix: api"), want: []string{
			`t.yaml:7: routes[0].path_prefix: "api" must start with /; write it like /api/ or /healthz`}},
		{name: "path_prefix dot segment", src: route("path_prefix: /a/../b"), want: []string{
			`t.yaml:7: routes[0].path_prefix: "/a/../b" must not hold . or .. segments, which clients' paths never match once cleaned; write it like /api/ or /healthz`}},
		{name: "path_prefix double slash", src: route("path_prefix: /a//b"), want: []string{
			`t.yaml:7: routes[0].path_prefix: "/a//b" must not hold //; write it like /api/ or /healthz`}},
		{name: "path_prefix percent", src: route("path_prefix: /a%20b"), want: []string{
			`t.yaml:7: routes[0].path_prefix: "/a%20b" must not hold ?, # or %: it is matched against the decoded path, without query; write it like /api/ or /healthz`}},
		{name: "same path twice", src: route("path_prefix: /api/") + "  - name: b\n    upstream: http://127.0.0.1:3001\n    path_prefix: /api\n", want: []string{
			`t.yaml:10: routes[1].path_prefix: route "b" serves any host under /api like route "app" (line 7); change the path_prefix or host of one of them`}},
		{name: "same path other host", src: route("host: a.example.com") + "  - name: b\n    upstream: http://127.0.0.1:3001\n"},
		{name: "upstream", src: strings.Replace(base, "http://127.0.0.1:3000", "http://127.0.0.1:3000/?x=1", 1), want: []string{
			`t.yaml:6: routes[0].upstream: "http://127.0.0.1:3000/?x=1" must not have a ?query; write it like https://example.com/path`}},
		{name: "upstream missing", src: "issuers: []\nroutes:\n  - name: a\n    auth: public\n", want: []string{
			`t.yaml:3: routes[0].upstream: is empty; write it like https://example.com/path`}},
		{name: "auth", src: route("auth: open"), want: []string{
			`t.yaml:7: routes[0].auth: "open" is not an auth mode; want required, optional or public`}},
		{name: "on_unauthenticated login", src: route("on_unauthenticated: login"), want: []string{
			`t.yaml:7: routes[0].on_unauthenticated: login needs a login: section; add one, or use auto or deny`}},
		{name: "on_unauthenticated", src: route("on_unauthenticated: redirect"), want: []string{
			`t.yaml:7: routes[0].on_unauthenticated: "redirect" is not a mode; want auto, login or deny`}},
		{name: "no issuers", src: "routes:\n  - name: app\n    upstream: http://u\n", want: []string{
			`t.yaml:2: routes[0].auth: auth required needs at least one entry under issuers to verify tokens; add one, or set auth: public`}},
		{name: "no audience", src: strings.Replace(base, "    audiences: [api]\n", "", 1), want: []string{
			`t.yaml:4: routes[0].audiences: the route has no audiences and issuer "https://idp.example.com" has none either; set audiences on the route, or on every issuer`}},
		{name: "route audience suffices", src: strings.Replace(base, "    audiences: [api]\n", "", 1) + "    audiences: [api]\n"},
		{name: "require_scopes", src: route("require_scopes: [read, 'write all']"), want: []string{
			`t.yaml:7: routes[0].require_scopes[1]: "write all" is not a scope; want one word such as read, without spaces`}},
		{name: "require_claims", src: route("require_claims:", "  groups: []", "  role: ['']"), want: []string{
			`t.yaml:8: routes[0].require_claims.groups: lists no values; want a value, or a list of values one of which the claim must hold`,
			`t.yaml:9: routes[0].require_claims.role[0]: is empty; want a value the claim must hold`}},
		{name: "forward_headers name", src: route("forward_headers:", "  X User: sub"), want: []string{
			`t.yaml:8: routes[0].forward_headers["X User"]: "X User" is not a header name (letters, digits and -); pick another name, such as X-Auth-Request-User`}},
		{name: "forward_headers reserved", src: route("forward_headers:", "  authorization: sub", "  x_forwarded_for: sub"), want: []string{
			`t.yaml:8: routes[0].forward_headers.authorization: header Authorization is reserved for the gateway and the connection; pick another name, such as X-Auth-Request-User`,
			`t.yaml:9: routes[0].forward_headers.x_forwarded_for: header X-Forwarded-For is reserved for the gateway and the connection; pick another name, such as X-Auth-Request-User`}},
		{name: "forward_headers collide", src: route("forward_headers:", "  X-User: sub", "  x_user: email"), want: []string{
			`t.yaml:9: routes[0].forward_headers.x_user: headers x_user and X-User (line 8) are the same to the upstream (case and _ or - do not count); keep one`}},
		{name: "forward_headers claim", src: route("forward_headers:", "  X-User: ''"), want: []string{
			`t.yaml:8: routes[0].forward_headers.X-User: names no claim; want a claim name such as sub, email or realm_access.roles`}},
		{name: "forward_token reserved", src: route("forward_token: cookie"), want: []string{
			`t.yaml:7: routes[0].forward_token: header Cookie is reserved for the gateway and the connection; want none, authorization, or a header name such as X-Forwarded-Access-Token`}},
		{name: "forward_token taken", src: route("forward_token: X-Token", "forward_headers: {x-token: sub}"), want: []string{
			`t.yaml:7: routes[0].forward_token: header X-Token is also set by forward_headers (x-token); use another header for the token`}},
		{name: "token_from", src: route("token_from: [body, 'cookie:', 'query:a&b', header, header]"), want: []string{
			`t.yaml:7: routes[0].token_from[0]: "body" is not a place to find tokens; want header, cookie:NAME or query:NAME`,
			`t.yaml:7: routes[0].token_from[1]: "cookie:" does not name a cookie; write cookie:NAME with NAME made of letters, digits, - and _`,
			`t.yaml:7: routes[0].token_from[2]: "query:a&b" does not name a query parameter; write query:NAME with NAME free of spaces, &, = and #`,
			`t.yaml:7: routes[0].token_from[4]: "header" is listed twice; list each place once`}},
		{name: "token_from empty", src: route("token_from: []"), want: []string{
			`t.yaml:7: routes[0].token_from: lists no place to find tokens; want header, cookie:NAME or query:NAME, or leave the key out for [header]`}},
		{name: "max_body_bytes", src: route("max_body_bytes: -1"), want: []string{
			`t.yaml:7: routes[0].max_body_bytes: is -1; want a number of bytes, or 0 for no limit`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, tt.vars, tt.want...) })
	}
}
