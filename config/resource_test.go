package config_test

import (
	"slices"
	"strings"
	"testing"
)

func TestResourceValidate(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{name: "valid", src: route("resource: https://api.example.com/v1", "resource_name: Orders API", "resource_documentation: https://docs.example.com/api?x=1")},
		{name: "loopback http", src: route("resource: http://localhost:3000/api")},
		{name: "query", src: route("resource: https://api.example.com/v1?x=1"), want: []string{
			`t.yaml:7: routes[0].resource: "https://api.example.com/v1?x=1" has a ?query; a resource identifier has none (RFC 8707 §2): write it like https://api.example.com/v1`}},
		{name: "empty query", src: route("resource: https://api.example.com/v1?"), want: []string{
			`t.yaml:7: routes[0].resource: "https://api.example.com/v1?" has a ?query; a resource identifier has none (RFC 8707 §2): write it like https://api.example.com/v1`}},
		{name: "fragment", src: route("resource: https://api.example.com/v1#x"), want: []string{
			`t.yaml:7: routes[0].resource: "https://api.example.com/v1#x" must not have a #fragment; write it like https://example.com/path`}},
		{name: "userinfo", src: route("resource: https://u:pw@api.example.com/v1"), want: []string{
			`t.yaml:7: routes[0].resource: must not hold a user name or password; write it like https://example.com/path`}},
		{name: "relative", src: route("resource: /api"), want: []string{
			`t.yaml:7: routes[0].resource: "/api" is not an http or https URL; write it like https://example.com/path`}},
		{name: "plain http", src: route("resource: http://api.example.com/v1"), want: []string{
			`t.yaml:7: routes[0].resource: "http://api.example.com/v1" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true`}},
		{name: "plain http allowed", src: "server: {insecure_allow_http: true}\n" + route("resource: http://api.example.com/v1")},
		{name: "public route", src: route("auth: public", "resource: https://api.example.com/v1", "resource_name: x", "resource_documentation: https://docs.example.com/"), want: []string{
			`t.yaml:8: routes[0].resource: a public route checks no tokens, so it is no protected resource; remove resource, or set auth: required or optional`,
			`t.yaml:9: routes[0].resource_name: has no effect on a public route, which is no protected resource; remove it, or set auth: required or optional`,
			`t.yaml:10: routes[0].resource_documentation: has no effect on a public route, which is no protected resource; remove it, or set auth: required or optional`}},
		{name: "optional route", src: route("auth: optional", "resource: https://api.example.com/v1")},
		{name: "resource_name blank", src: route("resource_name: ' '"), want: []string{
			`t.yaml:7: routes[0].resource_name: " " is blank, has spaces at either end or control characters; write a name people read, such as "Orders API"`}},
		{name: "resource_documentation", src: route("resource_documentation: docs.example.com/api"), want: []string{
			`t.yaml:7: routes[0].resource_documentation: "docs.example.com/api" has no scheme; write it like https://docs.example.com/api`}},
		{name: "duplicate explicit", src: route("resource: https://api.example.com/v1") +
			"  - {name: b, path_prefix: /b, upstream: 'http://u', resource: 'https://API.example.com/v1'}\n", want: []string{
			`t.yaml:8: routes[1].resource: "https://API.example.com/v1" is the resource of route "app" (line 7) too; each route is its own protected resource: set resource on one of them`}},
		{name: "duplicate default", src: base + "  - {name: b, path_prefix: /b, upstream: 'http://u', resource: 'http://127.0.0.1:8080'}\n", want: []string{
			`t.yaml:7: routes[1].resource: "http://127.0.0.1:8080" is the resource of route "app" (line 5) too; each route is its own protected resource: set resource on one of them`}},
		{name: "duplicate by host", src: base + "  - {name: b, host: 127.0.0.1, upstream: 'http://u'}\n", want: []string{
			`t.yaml:7: routes[1].resource: "http://127.0.0.1:8080" (the default, from server.public_url, host and path_prefix) is the resource of route "app" (line 5) too; each route is its own protected resource: set resource on one of them`}},
		{name: "same path reported once", src: base + "  - {name: b, upstream: 'http://u'}\n", want: []string{
			`t.yaml:7: routes[1].path_prefix: route "b" serves any host under / like route "app" (line 5); change the path_prefix or host of one of them`}},
		{name: "public routes have none", src: base + "  - {name: b, path_prefix: /b, upstream: 'http://u', auth: public}\n  - {name: c, path_prefix: /b/, host: x.example.com, upstream: 'http://u', auth: public}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, nil, tt.want...) })
	}
}

func TestRouteResource(t *testing.T) {
	src := `server: {public_url: "https://gw.example.com:8443/base/"}
issuers:
  - issuer: https://idp.example.com
    audiences: [api]
routes:
  - {name: root, upstream: 'http://u'}
  - {name: api, path_prefix: /api/, upstream: 'http://u'}
  - {name: host, host: App.Example.com, path_prefix: /x, upstream: 'http://u'}
  - {name: hostroot, host: app.example.com, upstream: 'http://u'}
  - {name: wild, host: '*.example.com', upstream: 'http://u'}
  - {name: wildset, host: '*.example.org', upstream: 'http://u', resource: 'https://tenants.example.org'}
  - {name: public, path_prefix: /healthz, upstream: 'http://u', auth: public}
  - {name: set, path_prefix: /set, upstream: 'http://u', auth: optional, resource: 'https://gw.example.com:8443/base'}
issuer:
  url: https://gw.example.com:8443/base/idp
  resources: [https://reports.example.com/api, "https://app.example.com:8443/x", https://reports.example.com/api]
`
	// The duplicate issuer.resources entry is an error; drop it for the rest.
	check(t, strings.Replace(src, "root, upstream", "root, auth: public, upstream", 1), nil,
		`t.yaml:16: issuer.resources[2]: "https://reports.example.com/api" is already listed as issuer.resources[0]; list each resource once`)
	src = strings.Replace(src, ", https://reports.example.com/api]", "]", 1)
	_, errs := parse(t, src, nil)
	if want := `t.yaml:13: routes[7].resource: "https://gw.example.com:8443/base" is the resource of route "root" (line 6) too; each route is its own protected resource: set resource on one of them`; !slices.Equal(errs, []string{want}) {
		t.Fatalf("errors %q, want %q", errs, want)
	}
	src = strings.Replace(src, "root, upstream", "root, auth: public, upstream", 1)
	cfg, errs := parse(t, src, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	want := []string{
		"",
		"https://gw.example.com:8443/base/api",
		"https://app.example.com:8443/x",
		"https://app.example.com:8443",
		"",
		"https://tenants.example.org",
		"",
		"https://gw.example.com:8443/base",
	}
	for i, w := range want {
		if got := cfg.RouteResource(i); got != w {
			t.Errorf("RouteResource(%d) [%s] = %q, want %q", i, cfg.Routes[i].Name, got, w)
		}
	}
	if got := cfg.RouteResource(len(want)); got != "" {
		t.Errorf("RouteResource out of range = %q", got)
	}
	wantAll := []string{
		"https://gw.example.com:8443/base/api", "https://app.example.com:8443/x", "https://app.example.com:8443",
		"https://tenants.example.org", "https://gw.example.com:8443/base", "https://reports.example.com/api",
	}
	if got := cfg.ProtectedResources(); !slices.Equal(got, wantAll) {
		t.Errorf("ProtectedResources() =\n  %q\nwant\n  %q", got, wantAll)
	}
	cfg, errs = parse(t, base, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	if got := cfg.ProtectedResources(); !slices.Equal(got, []string{"http://127.0.0.1:8080"}) {
		t.Errorf("ProtectedResources() of base = %q", got)
	}
}

func TestIssuerResourcesValidate(t *testing.T) {
	check(t, idpKeys("resources: ['https://api.example.com?x', 'http://api.example.com', 'api.example.com', 'https://api.example.com/#f']"), idpVars,
		`t.yaml:10: issuer.resources[0]: "https://api.example.com?x" has a ?query; a resource identifier has none (RFC 8707 §2): write it like https://api.example.com/v1`,
		`t.yaml:10: issuer.resources[1]: "http://api.example.com" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true`,
		`t.yaml:10: issuer.resources[2]: "api.example.com" has no scheme; write it like https://api.example.com`,
		`t.yaml:10: issuer.resources[3]: "https://api.example.com/#f" must not have a #fragment; write it like https://example.com/path`)
}

const registrationKeys = "enabled, redirect_uris, grant_types, scopes, max_clients, unused_ttl, initial_access_token"

func TestRegistrationValidate(t *testing.T) {
	tests := []struct {
		name, src string
		vars      map[string]string
		want      []string
	}{
		{name: "enabled", src: idpKeys("registration:", "  enabled: true", "  redirect_uris: ['https://*.example.com/cb', 'https://app.example.com:*/cb', 'http://localhost:*/cb']",
			"  initial_access_token: ${TOKEN}"), vars: map[string]string{"SECRET": idpVars["SECRET"], "TOKEN": strings.Repeat("t", 16)}},
		{name: "unknown key", src: idpKeys("registration: {enable: true}"), want: []string{
			`t.yaml:10: unknown key "enable" in issuer.registration; valid keys: ` + registrationKeys}},
		{name: "checked when off", src: idpKeys("registration:", "  redirect_uris: ['https://a.*.example.com/cb', 'ftp://x/cb', 'https://u:hunter2@x.example.com/cb', 'http://app.example.com/cb', 'https://x.example.com/cb', 'HTTPS://X.example.com/cb']",
			"  grant_types: [refresh_token, client_credentials, implicit, refresh_token]", "  scopes: [openid, read, openid, 'a\"b']", "  max_clients: 0", "  unused_ttl: 30s",
			"  initial_access_token: short"), want: []string{
			`t.yaml:11: issuer.registration.redirect_uris[0]: "https://a.*.example.com/cb": host "a.*.example.com": a wildcard stands for the whole first label only, as in *.example.com; write a pattern such as https://*.example.com/callback or https://app.example.com:*/callback`,
			`t.yaml:11: issuer.registration.redirect_uris[1]: "ftp://x/cb": scheme "ftp" is not http or https; write a pattern such as https://*.example.com/callback or https://app.example.com:*/callback`,
			`t.yaml:11: issuer.registration.redirect_uris[2]: "https://xxxxx@x.example.com/cb": must not hold a user name or password; write a pattern such as https://*.example.com/callback or https://app.example.com:*/callback`,
			`t.yaml:11: issuer.registration.redirect_uris[3]: "http://app.example.com/cb" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true`,
			`t.yaml:11: issuer.registration.redirect_uris[5]: "HTTPS://X.example.com/cb" is listed twice; list each pattern once`,
			`t.yaml:12: issuer.registration.grant_types[0]: refresh_token needs authorization_code in grant_types too; add it, or remove refresh_token`,
			`t.yaml:12: issuer.registration.grant_types[1]: client_credentials needs a confidential client, and registered clients are public; remove it`,
			`t.yaml:12: issuer.registration.grant_types[2]: "implicit" is not a grant type registered clients may get; want authorization_code or refresh_token`,
			`t.yaml:12: issuer.registration.grant_types[3]: grant type refresh_token is listed twice; list each grant type once`,
			`t.yaml:13: issuer.registration.scopes[1]: scope read is neither built in (openid, profile, email, offline_access) nor described under issuer.scopes; add it there (read: "what it allows"), or remove it`,
			`t.yaml:13: issuer.registration.scopes[2]: scope openid is listed twice; list each scope once`,
			`t.yaml:13: issuer.registration.scopes[3]: "a\"b" is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`,
			`t.yaml:14: issuer.registration.max_clients: is 0; want at least 1 client, such as 1000`,
			`t.yaml:15: issuer.registration.unused_ttl: is 30s; want at least 1m, such as 720h`,
			`t.yaml:16: issuer.registration.initial_access_token: is 5 bytes; want at least 16 random bytes without spaces at either end, from the environment, such as "${PORTCULLIS_REGISTRATION_TOKEN}"`}},
		{name: "empty lists", src: idpKeys("registration: {grant_types: [], scopes: []}"), want: []string{
			`t.yaml:10: issuer.registration.grant_types: lists no grant type; want authorization_code, optionally with refresh_token, or leave the key out for [authorization_code, refresh_token]`,
			`t.yaml:10: issuer.registration.scopes: lists no scope; want the scopes registered clients may get, or leave the key out for [openid, profile, email, offline_access]`}},
		{name: "described scope", src: idpKeys("scopes: {read: Read}", "registration: {scopes: [openid, read], grant_types: [authorization_code]}")},
		{name: "plain http allowed", src: "server: {insecure_allow_http: true}\n" + idpKeys("registration: {redirect_uris: ['http://*.example.com:*/cb']}")},
	}
	for _, tt := range tests {
		vars := tt.vars
		if vars == nil {
			vars = idpVars
		}
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, vars, tt.want...) })
	}
}

func TestWarnRegistrationOpen(t *testing.T) {
	for src, want := range map[string]string{
		idpKeys("registration: {enabled: true}"):                                         `t.yaml:10: issuer.registration.enabled: is true without initial_access_token: anyone who can reach the issuer can register clients`,
		idpKeys("registration: {enabled: true, initial_access_token: 0123456789abcdef}"): "",
		idpKeys("registration: {enabled: false}"):                                        "",
	} {
		cfg, errs := parse(t, src, idpVars)
		if errs != nil {
			t.Fatal(errs)
		}
		ws := cfg.Warnings()
		switch {
		case want == "" && len(ws) > 0:
			t.Errorf("warnings %v", ws)
		case want != "" && (len(ws) != 1 || !strings.HasPrefix(ws[0].Error(), want)):
			t.Errorf("warnings %v, want %s…", ws, want)
		}
	}
}
