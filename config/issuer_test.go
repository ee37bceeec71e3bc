package config_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

// aliceHash is a bcrypt hash of "alice" (cost 10).
const aliceHash = "$2a$10$ZFjuc/wtohmXolEGCXqvOOV2/JFs6Z0Ki7D2X3MO4uvyxQdYLO0va"

// idp is the smallest valid issuer-only configuration; its client lines
// end at line 6, its user lines at line 9.
const idp = `issuer:
  url: http://localhost:8080/idp
  clients:
    - id: portcullis
      secret: ${SECRET}
      redirect_uris: [http://localhost:8080/oauth2/callback]
  users:
    - username: alice
      password_hash: "` + aliceHash + `"
`

// idpVars sets the client secret of idp.
var idpVars = map[string]string{"SECRET": strings.Repeat("s", 16)}

// idpKeys is idp with lines added to the issuer section (from line 10).
func idpKeys(lines ...string) string {
	return idp + "  " + strings.Join(lines, "\n  ") + "\n"
}

// idpClient is idp with lines added to its client (from line 7).
func idpClient(lines ...string) string {
	const at = "      redirect_uris: [http://localhost:8080/oauth2/callback]\n"
	return strings.Replace(idp, at, at+"      "+strings.Join(lines, "\n      ")+"\n", 1)
}

// idpUser is idp with lines added to its user (from line 10).
func idpUser(lines ...string) string {
	return idp + "      " + strings.Join(lines, "\n      ") + "\n"
}

func TestIssuerValidate(t *testing.T) {
	const someHash = "$2b$12$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
	tests := []struct {
		name, src string
		vars      map[string]string
		want      []string
	}{
		{name: "issuer only", src: idp},
		{name: "empty section", src: "issuer:\n", want: []string{
			`t.yaml:1: issuer.url: is required; write the URL the issuer is reached at, such as http://localhost:8080/idp, or remove the issuer: key`}},
		{name: "not a mapping", src: "issuer: [a]\n", want: []string{
			`t.yaml:1: issuer: want a mapping with keys url, signing, access_token_ttl, id_token_ttl, refresh_token_ttl, session_ttl, consent_ttl, store, store_timeout, refresh_retry_grace, login_rate_limit, clients, scopes, users, resources, registration, got a list`}},
		{name: "unknown key", src: idpKeys("tokens: {}"), want: []string{
			`t.yaml:10: unknown key "tokens" in issuer; valid keys: url, signing, access_token_ttl, id_token_ttl, refresh_token_ttl, session_ttl, consent_ttl, store, store_timeout, refresh_retry_grace, login_rate_limit, clients, scopes, users, resources, registration`}},
		{name: "unknown client key", src: idpClient("redirectURIs: []"), want: []string{
			`t.yaml:7: unknown key "redirectURIs" in issuer.clients[0] (did you mean redirect_uris?); valid keys: id, name, secret, secret_hash, public, first_party, redirect_uris, post_logout_redirect_uris, grant_types, scopes, audiences, backchannel_logout_uri, backchannel_logout_session_required, dpop_bound_access_tokens`}},
		{name: "unknown user key", src: idpUser("password: alice"), want: []string{
			`t.yaml:10: unknown key "password" in issuer.users[0]; valid keys: username, password_hash, subject, claims`}},
		// url
		{name: "url required", src: strings.Replace(idp, "  url: http://localhost:8080/idp\n", "  store: memory\n", 1), want: []string{
			`t.yaml:1: issuer.url: is required; write the URL the issuer is reached at, such as http://localhost:8080/idp`}},
		{name: "url relative", src: strings.Replace(idp, "http://localhost:8080/idp", "/idp", 1), want: []string{
			`t.yaml:2: issuer.url: "/idp" is not an http or https URL; write it like https://example.com/path`}},
		{name: "url query", src: strings.Replace(idp, "8080/idp", "8080/idp?x=1", 1), want: []string{
			`t.yaml:2: issuer.url: "http://localhost:8080/idp?x=1" must not have a ?query; write it like https://example.com/path`}},
		{name: "url fragment", src: strings.Replace(idp, "8080/idp", "8080/idp#x", 1), want: []string{
			`t.yaml:2: issuer.url: "http://localhost:8080/idp#x" must not have a #fragment; write it like https://example.com/path`}},
		{name: "url trailing slash", src: strings.Replace(idp, "8080/idp", "8080/idp/", 1), want: []string{
			`t.yaml:2: issuer.url: "http://localhost:8080/idp/" ends with /; write it without the trailing slash, like http://localhost:8080/idp`}},
		{name: "url root slash", src: strings.Replace(idp, "8080/idp", "8080/", 1), want: []string{
			`t.yaml:2: issuer.url: "http://localhost:8080/" ends with /; write it without the trailing slash, like http://localhost:8080/idp`}},
		{name: "url root", src: strings.Replace(idp, "8080/idp", "8080", 1)},
		{name: "url plain http", src: strings.Replace(idp, "localhost:8080/idp", "idp.example.com", 1), want: []string{
			`t.yaml:2: issuer.url: "http://idp.example.com" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true when TLS ends in front of the gateway`}},
		{name: "url plain http allowed", src: "server: {insecure_allow_http: true, public_url: 'http://gw.example.com'}\n" + strings.Replace(idp, "localhost:8080/idp", "idp.example.com", 1)},
		// signing
		{name: "algorithm", src: idpKeys("signing: {algorithm: ES512}"), want: []string{
			`t.yaml:10: issuer.signing.algorithm: "ES512" is not an algorithm the issuer signs with; want one of ES256, ES384, RS256, PS256, EdDSA`}},
		{name: "algorithm case", src: idpKeys("signing: {algorithm: es256}"), want: []string{
			`t.yaml:10: issuer.signing.algorithm: "es256" is not an algorithm name; names are case-sensitive: write ES256`}},
		{name: "rotate_every short", src: idpKeys("signing:", "  rotate_every: 30m"), want: []string{
			`t.yaml:11: issuer.signing.rotate_every: is 30m0s; want at least 1h, such as 24h, or 0s to never rotate`}},
		{name: "rotate_every never", src: idpKeys("signing: {rotate_every: 0s, key_dir: ''}")},
		// lifetimes
		{name: "access_token_ttl short", src: idpKeys("access_token_ttl: 30s"), want: []string{
			`t.yaml:10: issuer.access_token_ttl: is 30s; want from 1m to 24h, such as 15m`}},
		{name: "access_token_ttl zero", src: idpKeys("access_token_ttl: 0s"), want: []string{
			`t.yaml:10: issuer.access_token_ttl: is 0s; want from 1m to 24h, such as 15m`}},
		{name: "access_token_ttl long", src: idpKeys("access_token_ttl: 25h", "refresh_token_ttl: 48h"), want: []string{
			`t.yaml:10: issuer.access_token_ttl: is 25h0m0s; want from 1m to 24h, such as 15m`}},
		{name: "id_token_ttl", src: idpKeys("id_token_ttl: 48h"), want: []string{
			`t.yaml:10: issuer.id_token_ttl: is 48h0m0s; want from 1m to 24h, such as 15m`}},
		{name: "refresh shorter than access", src: idpKeys("access_token_ttl: 1h", "refresh_token_ttl: 30m"), want: []string{
			`t.yaml:11: issuer.refresh_token_ttl: is 30m0s, shorter than access_token_ttl 1h0m0s; want refresh_token_ttl >= access_token_ttl, such as 720h`}},
		{name: "session_ttl", src: idpKeys("session_ttl: 0s"), want: []string{
			`t.yaml:10: issuer.session_ttl: is 0s; want at least 1m, such as 12h`}},
		{name: "consent_ttl zero", src: idpKeys("consent_ttl: 0s")},
		{name: "ttl syntax", src: idpKeys("consent_ttl: 30d"), want: []string{
			`t.yaml:10: issuer.consent_ttl: "30d" is not a duration; write it like 30s, 5m or 12h`}},
		// store
		{name: "store redis", src: idpKeys("store: redis://:${PW}@redis:6379/2"), vars: map[string]string{"SECRET": strings.Repeat("s", 16), "PW": "pw"}},
		{name: "store rediss no db", src: idpKeys("store: rediss://redis.example.com")},
		{name: "store name", src: idpKeys("store: disk"), want: []string{
			`t.yaml:10: issuer.store: "disk" is not a store; want memory, or a Redis URL such as redis://localhost:6379/0 (rediss:// for TLS)`}},
		{name: "store case", src: idpKeys("store: Memory"), want: []string{
			`t.yaml:10: issuer.store: "Memory" is not a store; names are case-sensitive: write memory`}},
		{name: "store scheme", src: idpKeys("store: memcached://:hunter2@cache:11211"), want: []string{
			`t.yaml:10: issuer.store: "memcached://:xxxxx@cache:11211" is not a store: the scheme must be redis or rediss; want memory, or a Redis URL such as redis://localhost:6379/0 (rediss:// for TLS)`}},
		{name: "store no host", src: idpKeys("store: redis:///0"), want: []string{
			`t.yaml:10: issuer.store: "redis:///0" has no host; want memory, or a Redis URL such as redis://localhost:6379/0 (rediss:// for TLS)`}},
		{name: "store db", src: idpKeys("store: redis://:hunter2@redis:6379/db0"), want: []string{
			`t.yaml:10: issuer.store: "redis://:xxxxx@redis:6379/db0": the path must be a database number such as /0, or nothing; want memory, or a Redis URL such as redis://localhost:6379/0 (rediss:// for TLS)`}},
		{name: "store port", src: idpKeys("store: redis://redis:0/0"), want: []string{
			`t.yaml:10: issuer.store: port "0" of "redis://redis:0/0" is not a number from 1 to 65535`}},
		{name: "store unparsable", src: idpKeys("store: 'redis://:hunter2@redis:port/0'"), want: []string{
			`t.yaml:10: issuer.store: is not a URL (invalid port ":port" after host); want memory, or a Redis URL such as redis://localhost:6379/0 (rediss:// for TLS)`}},
		// login_rate_limit
		{name: "attempts", src: idpKeys("login_rate_limit:", "  attempts: 0"), want: []string{
			`t.yaml:11: issuer.login_rate_limit.attempts: is 0; want at least 1 failed login per window, such as 10`}},
		{name: "window", src: idpKeys("login_rate_limit: {window: 0s}"), want: []string{
			`t.yaml:10: issuer.login_rate_limit.window: is 0s; want at least 1s, such as 15m`}},
		{name: "max delay", src: idpKeys("login_rate_limit: {max_delay: 10m}"), want: []string{
			`t.yaml:10: issuer.login_rate_limit.max_delay: is 10m0s; want from 1s to 5m, such as 30s`}},
		// scopes
		{name: "scope description", src: idpKeys("scopes:", "  read: ''", "  'a b': x"), want: []string{
			`t.yaml:11: issuer.scopes.read: has no description; write what the consent page shows for it, such as "Read your data"`,
			`t.yaml:12: issuer.scopes["a b"]: "a b" is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`}},
		{name: "client scope not described", src: idpClient("scopes: [openid, read, write]") + "  scopes: {read: Read your data}\n", want: []string{
			`t.yaml:7: issuer.clients[0].scopes[2]: scope write is neither built in (openid, profile, email, offline_access) nor described under issuer.scopes; add it there (write: "what it allows"), or remove it`}},
		{name: "client scope twice", src: idpClient("scopes: [openid, openid, 'x y']"), want: []string{
			`t.yaml:7: issuer.clients[0].scopes[1]: scope openid is listed twice; list each scope once`,
			`t.yaml:7: issuer.clients[0].scopes[2]: "x y" is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`}},
		// clients
		{name: "client id required", src: strings.Replace(idp, "- id: portcullis", "- id: ''", 1), want: []string{
			`t.yaml:4: issuer.clients[0].id: is required; write the client_id, made of letters, digits, "_", ".", ":" and "-"`}},
		{name: "client id chars", src: strings.Replace(idp, "- id: portcullis", "- id: my client", 1), want: []string{
			`t.yaml:4: issuer.clients[0].id: "my client" is not a client id; use only letters, digits, "_", ".", ":" and "-"`}},
		{name: "client id unique", src: idpClient("name: one") + "  clients:\n", want: []string{
			`t.yaml:11: issuer.clients: duplicate key; it is first set at line 3`}},
		{name: "client id twice", src: strings.Replace(idp, "  users:", "    - id: portcullis\n      public: true\n      grant_types: [authorization_code]\n      redirect_uris: [http://127.0.0.1/cb]\n  users:", 1), want: []string{
			`t.yaml:7: issuer.clients[1].id: client id "portcullis" is already used at line 4; client ids must be unique`}},
		{name: "client id with colon", src: strings.Replace(idp, "- id: portcullis", "- id: urn:app.v1_x-y", 1)},
		{name: "secret short", src: idp, vars: map[string]string{"SECRET": "hunter2"}, want: []string{
			`t.yaml:5: issuer.clients[0].secret: is 7 bytes; want at least 16 random bytes`}},
		{name: "secret and hash", src: idpClient("secret_hash: '" + someHash + "'"), want: []string{
			`t.yaml:7: issuer.clients[0].secret_hash: is set along with secret; keep one of them`}},
		{name: "secret hash only", src: strings.Replace(idp, "secret: ${SECRET}", "secret_hash: '"+someHash+"'", 1)},
		{name: "secret hash shape", src: strings.Replace(idp, "secret: ${SECRET}", "secret_hash: '$2x$10$"+someHash[7:]+"'", 1), want: []string{
			`t.yaml:5: issuer.clients[0].secret_hash: is not a bcrypt hash; want a bcrypt hash ($2a$, $2b$ or $2y$, a cost from 04 to 31, 60 characters in all), as portcullis hash-password prints it`}},
		{name: "no secret", src: strings.Replace(idp, "      secret: ${SECRET}\n", "", 1), want: []string{
			`t.yaml:4: issuer.clients[0].secret: a confidential client needs secret or secret_hash; set one, or set public: true for a client that uses PKCE without a secret`}},
		{name: "public with secret", src: idpClient("public: true"), want: []string{
			`t.yaml:5: issuer.clients[0].secret: a public client has no secret; remove it, or set public: false`}},
		{name: "public with secret hash", src: strings.Replace(idpClient("public: true"), "secret: ${SECRET}", "secret_hash: '"+someHash+"'", 1), want: []string{
			`t.yaml:5: issuer.clients[0].secret_hash: a public client has no secret; remove it, or set public: false`}},
		{name: "public", src: strings.Replace(idpClient("public: true"), "      secret: ${SECRET}\n", "", 1)},
		{name: "public client_credentials", src: strings.Replace(idpClient("public: true", "grant_types: [authorization_code, client_credentials]"), "      secret: ${SECRET}\n", "", 1), want: []string{
			`t.yaml:7: issuer.clients[0].grant_types[1]: client_credentials needs a confidential client; set public: false and a secret, or remove client_credentials`}},
		{name: "grant types empty", src: idpClient("grant_types: []"), want: []string{
			`t.yaml:7: issuer.clients[0].grant_types: lists no grant type; want some of authorization_code, refresh_token, client_credentials, or leave the key out for [authorization_code, refresh_token]`}},
		{name: "grant type unknown", src: idpClient("grant_types: [authorization_code, implicit, authorization_code]"), want: []string{
			`t.yaml:7: issuer.clients[0].grant_types[1]: "implicit" is not a grant type; want authorization_code, refresh_token or client_credentials`,
			`t.yaml:7: issuer.clients[0].grant_types[2]: grant type authorization_code is listed twice; list each grant type once`}},
		{name: "refresh without code", src: idpClient("grant_types: [client_credentials, refresh_token]"), want: []string{
			`t.yaml:7: issuer.clients[0].grant_types[1]: refresh_token needs authorization_code in grant_types too; add it, or remove refresh_token`}},
		{name: "client_credentials only", src: strings.Replace(idpClient("grant_types: [client_credentials]"), "      redirect_uris: [http://localhost:8080/oauth2/callback]\n", "", 1)},
		{name: "redirect_uris required", src: strings.Replace(idp, "      redirect_uris: [http://localhost:8080/oauth2/callback]\n", "", 1), want: []string{
			`t.yaml:4: issuer.clients[0].redirect_uris: is required with the authorization_code grant; list the exact redirect URIs, such as http://localhost:8080/oauth2/callback`}},
		{name: "redirect_uris rules", src: idpClient("post_logout_redirect_uris:",
			"  - https://*.example.com/",
			"  - https://app.example.com/cb#x",
			"  - http://app.example.com/cb",
			"  - app/cb",
			"  - https://app.example.com/cb?a=1",
			"  - https://app.example.com/cb?a=1",
			"  - https://u:hunter2@app.example.com/cb"), want: []string{
			`t.yaml:8: issuer.clients[0].post_logout_redirect_uris[0]: holds a wildcard "*"; list every redirect URI exactly (RFC 9700 §4.1.3)`,
			`t.yaml:9: issuer.clients[0].post_logout_redirect_uris[1]: "https://app.example.com/cb#x" must not have a #fragment; write it like https://example.com/path`,
			`t.yaml:10: issuer.clients[0].post_logout_redirect_uris[2]: "http://app.example.com/cb" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true`,
			`t.yaml:11: issuer.clients[0].post_logout_redirect_uris[3]: "app/cb" is not an http or https URL; write it like https://example.com/path`,
			`t.yaml:13: issuer.clients[0].post_logout_redirect_uris[5]: "https://app.example.com/cb?a=1" is listed twice; list each URI once`,
			`t.yaml:14: issuer.clients[0].post_logout_redirect_uris[6]: must not hold a user name or password; write it like https://example.com/path`}},
		{name: "backchannel_logout_uri", src: idpClient("backchannel_logout_uri: https://app.example.com/logout", "backchannel_logout_session_required: true")},
		{name: "backchannel_logout_uri query", src: idpClient("backchannel_logout_uri: https://app.example.com/logout?x=1"), want: []string{
			`t.yaml:7: issuer.clients[0].backchannel_logout_uri: "https://app.example.com/logout?x=1" has a ?query; logout tokens are posted as a form, so write the URI without one`}},
		{name: "backchannel_logout_uri plain http", src: idpClient("backchannel_logout_uri: http://app.example.com/logout"), want: []string{
			`t.yaml:7: issuer.clients[0].backchannel_logout_uri: "http://app.example.com/logout" is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true`}},
		{name: "backchannel_logout_uri relative", src: idpClient("backchannel_logout_uri: /logout"), want: []string{
			`t.yaml:7: issuer.clients[0].backchannel_logout_uri: "/logout" is not an http or https URL; write it like https://example.com/path`}},
		{name: "redirect_uris wildcard", src: strings.Replace(idp, "http://localhost:8080/oauth2/callback", "http://localhost:*/cb", 1), want: []string{
			`t.yaml:6: issuer.clients[0].redirect_uris[0]: holds a wildcard "*"; list every redirect URI exactly (RFC 9700 §4.1.3)`}},
		{name: "audiences empty", src: idpClient("audiences: []"), want: []string{
			`t.yaml:7: issuer.clients[0].audiences: lists no audience; want the "aud" values of the client's access tokens, or leave the key out for [portcullis]`}},
		{name: "audience blank", src: idpClient("audiences: [api, ' ']"), want: []string{
			`t.yaml:7: issuer.clients[0].audiences[1]: is empty; want an "aud" value such as my-api`}},
		// users
		{name: "username required", src: idpUser("subject: alice") + "    - password_hash: '" + aliceHash + "'\n", want: []string{
			`t.yaml:11: issuer.users[1].username: is required; write the name the user logs in with`}},
		{name: "username unique", src: idp + "    - username: alice\n      password_hash: '" + aliceHash + "'\n", want: []string{
			`t.yaml:10: issuer.users[1].username: username "alice" is already used at line 8; usernames must be unique`}},
		{name: "username spaces", src: strings.Replace(idp, "username: alice", "username: ' alice'", 1), want: []string{
			`t.yaml:8: issuer.users[0].username: " alice" has spaces at either end or control characters; write the name the user logs in with`}},
		{name: "subject unique", src: idp + "    - username: bob\n      subject: alice\n      password_hash: '" + aliceHash + "'\n", want: []string{
			`t.yaml:11: issuer.users[1].subject: subject "alice" is already the subject of user "alice" (line 8); subjects must be unique`}},
		{name: "subject spaces", src: idpUser("subject: 'a\tb'"), want: []string{
			`t.yaml:10: issuer.users[0].subject: "a\tb" has spaces at either end or control characters; write the user's stable "sub", or leave the key out for the username`}},
		{name: "password_hash required", src: strings.Replace(idp, `      password_hash: "`+aliceHash+`"`+"\n", "", 1), want: []string{
			`t.yaml:8: issuer.users[0].password_hash: is required; want a bcrypt hash ($2a$, $2b$ or $2y$, a cost from 04 to 31, 60 characters in all), as portcullis hash-password prints it`}},
		{name: "password_hash shape", src: strings.Replace(idp, aliceHash, "$2a$10$...", 1), want: []string{
			`t.yaml:9: issuer.users[0].password_hash: is not a bcrypt hash; want a bcrypt hash ($2a$, $2b$ or $2y$, a cost from 04 to 31, 60 characters in all), as portcullis hash-password prints it`}},
		{name: "password_hash cost", src: strings.Replace(idp, "$2a$10$", "$2a$03$", 1), want: []string{
			`t.yaml:9: issuer.users[0].password_hash: is not a bcrypt hash; want a bcrypt hash ($2a$, $2b$ or $2y$, a cost from 04 to 31, 60 characters in all), as portcullis hash-password prints it`}},
		{name: "password_hash plain text", src: strings.Replace(idp, aliceHash, "alice", 1), want: []string{
			`t.yaml:9: issuer.users[0].password_hash: is not a bcrypt hash; want a bcrypt hash ($2a$, $2b$ or $2y$, a cost from 04 to 31, 60 characters in all), as portcullis hash-password prints it`}},
		{name: "claims reserved", src: idpUser("claims:", "  sub: x", "  aud: [a]", "  auth_time: 1", "  email: a@example.com"), want: []string{
			`t.yaml:11: issuer.users[0].claims.sub: sub is set by the issuer from subject; set subject instead`,
			`t.yaml:12: issuer.users[0].claims.aud: aud is set by the issuer itself; remove it (reserved: iss, sub, aud, exp, iat, nbf, jti, nonce, azp, at_hash, auth_time, sid, scope, client_id)`,
			`t.yaml:13: issuer.users[0].claims.auth_time: auth_time is set by the issuer itself; remove it (reserved: iss, sub, aud, exp, iat, nbf, jti, nonce, azp, at_hash, auth_time, sid, scope, client_id)`}},
		{name: "claims keys", src: idpUser("claims:", "  1: one", "  address:", "    true: x", "    ~: y", "    '2': two"), want: []string{
			`t.yaml:11: issuer.users[0].claims.1: a name must be a string, and "1" reads as a number; quote it ("1") if it is meant as a name`,
			`t.yaml:13: issuer.users[0].claims.address.true: a name must be a string, and "true" reads as true or false; quote it ("true") if it is meant as a name`,
			`t.yaml:14: issuer.users[0].claims.address["~"]: a name must be a string, and "~" reads as null; quote it ("~") if it is meant as a name`}},
		{name: "claims values", src: idpUser("claims:", "  a: .inf", "  b: [1, !!binary aGk=]", "  c: {d: !thing x}", "  e: 1.5"), want: []string{
			`t.yaml:11: issuer.users[0].claims.a: ".inf" is not a number JSON can hold; want a string, a number, true, false, a list or a mapping`,
			`t.yaml:12: issuer.users[0].claims.b[1]: a value tagged !!binary cannot be a claim; want a string, a number, true, false, a list or a mapping`,
			`t.yaml:13: issuer.users[0].claims.c.d: a value tagged !thing cannot be a claim; want a string, a number, true, false, a list or a mapping`}},
		{name: "claims not a mapping", src: idpUser("claims: [a]"), want: []string{
			`t.yaml:10: issuer.users[0].claims: want a mapping of names to values, got a list`}},
		{name: "claims env", src: idpUser("claims: {team: '${TEAM}'}"), want: []string{
			`t.yaml:10: issuer.users[0].claims.team: environment variable TEAM is not set`}},
		{name: "store timeout and retry grace", src: idpKeys("store_timeout: 1m", "refresh_retry_grace: 2m"), want: []string{
			`t.yaml:10: issuer.store_timeout: is 1m0s; want from 10ms to 30s, such as 1s`,
			`t.yaml:11: issuer.refresh_retry_grace: is 2m0s; want from 0s (off) to 1m, such as 10s`}},
		// routes and issuers around the section
		{name: "with routes", src: idp + base},
		{name: "builtin issuer in issuers", src: idp + "issuers:\n  - issuer: http://localhost:8080/idp\n    audiences: [portcullis]\nroutes:\n  - {name: app, upstream: 'http://127.0.0.1:3000'}\n"},
	}
	for _, tt := range tests {
		vars := tt.vars
		if vars == nil {
			vars = idpVars
		}
		t.Run(tt.name, func(t *testing.T) { check(t, tt.src, vars, tt.want...) })
	}
}

func TestIssuerDefaults(t *testing.T) {
	cfg, errs := parse(t, idp, idpVars)
	if errs != nil {
		t.Fatal(errs)
	}
	if len(cfg.Routes) != 0 || len(cfg.Issuers) != 0 {
		t.Errorf("issuer-only config: %d routes, %d issuers", len(cfg.Routes), len(cfg.Issuers))
	}
	b := cfg.Issuer
	if b == nil {
		t.Fatal("Issuer is nil")
	}
	want := config.BuiltinIssuer{
		URL:             "http://localhost:8080/idp",
		Signing:         config.IssuerSigning{Algorithm: "ES256"},
		AccessTokenTTL:  config.Duration(15 * time.Minute),
		IDTokenTTL:      config.Duration(15 * time.Minute),
		RefreshTokenTTL: config.Duration(720 * time.Hour),
		SessionTTL:      config.Duration(12 * time.Hour),
		ConsentTTL:      config.Duration(720 * time.Hour),
		Store:           "memory",
		StoreTimeout:    config.Duration(time.Second), RefreshRetryGrace: config.Duration(10 * time.Second),
		LoginRateLimit: config.LoginRateLimit{Attempts: 10, Window: config.Duration(15 * time.Minute), AddressAttempts: 10,
			MaxDelay: config.Duration(30 * time.Second), DeviceTTL: config.Duration(2160 * time.Hour)},
		Clients: []config.IssuerClient{{
			ID:           "portcullis",
			Name:         "portcullis",
			Secret:       idpVars["SECRET"],
			RedirectURIs: []string{"http://localhost:8080/oauth2/callback"},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scopes:       []string{"openid", "profile", "email", "offline_access"},
			Audiences:    []string{"portcullis"},
		}},
		Scopes: map[string]string{
			"openid":         "Sign you in",
			"profile":        "See your name and profile",
			"email":          "See your email address",
			"offline_access": "Stay signed in when you are away",
		},
		Users: []config.IssuerUser{{Username: "alice", PasswordHash: aliceHash, Subject: "alice"}},
		Registration: config.IssuerRegistration{
			GrantTypes: []string{"authorization_code", "refresh_token"},
			Scopes:     []string{"openid", "profile", "email", "offline_access"},
			MaxClients: 1000,
			UnusedTTL:  config.Duration(720 * time.Hour),
		},
	}
	if !reflect.DeepEqual(*b, want) {
		t.Errorf("issuer with defaults:\n got  %+v\n want %+v", *b, want)
	}
	for key, want := range map[string]string{
		"issuer.url":                      "t.yaml:2",
		"issuer.clients[0].redirect_uris": "t.yaml:6",
		"issuer.clients[0].audiences":     "t.yaml:4", // defaulted: the client's line
		"issuer.users[0].password_hash":   "t.yaml:9",
		"issuer.session_ttl":              "t.yaml:1",
	} {
		if got := cfg.Pos(key); got != want {
			t.Errorf("Pos(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestIssuerDefaultsExplicit(t *testing.T) {
	src := idpKeys(
		"access_token_ttl: 5m",
		"consent_ttl: 0s",
		"refresh_token_ttl:",
		"scopes: {openid: Log in with your account, read: Read}",
		"login_rate_limit: {attempts: 1}",
		"signing:",
		"  algorithm:",
		"  rotate_every: 1h",
	)
	src = strings.Replace(src, "      redirect_uris:", "      name: The gateway\n      scopes: [openid, read]\n      audiences: [a, b]\n      redirect_uris:", 1)
	src = strings.Replace(src, "    - username: alice\n", "    - username: alice\n      subject: 00u1\n", 1)
	cfg, errs := parse(t, src, idpVars)
	if errs != nil {
		t.Fatal(errs)
	}
	b := cfg.Issuer
	if b.AccessTokenTTL.D() != 5*time.Minute || b.IDTokenTTL.D() != 5*time.Minute {
		t.Errorf("access, id token ttl = %s, %s; want the id token's to follow the access token's", b.AccessTokenTTL.D(), b.IDTokenTTL.D())
	}
	if b.ConsentTTL != 0 {
		t.Errorf("consent_ttl: 0s became %s", b.ConsentTTL.D())
	}
	if b.RefreshTokenTTL.D() != 720*time.Hour || b.Signing.Algorithm != "ES256" || b.Signing.RotateEvery.D() != time.Hour {
		t.Errorf("empty values did not get defaults: %+v", b)
	}
	if b.LoginRateLimit != (config.LoginRateLimit{Attempts: 1, Window: config.Duration(15 * time.Minute), AddressAttempts: 10,
		MaxDelay: config.Duration(30 * time.Second), DeviceTTL: config.Duration(2160 * time.Hour)}) {
		t.Errorf("login_rate_limit = %+v", b.LoginRateLimit)
	}
	if b.Scopes["openid"] != "Log in with your account" || b.Scopes["read"] != "Read" || b.Scopes["email"] != "See your email address" {
		t.Errorf("scopes = %v; want the file's descriptions over the built-in ones, and the rest built in", b.Scopes)
	}
	cl := b.Clients[0]
	if cl.Name != "The gateway" || !slices.Equal(cl.Scopes, []string{"openid", "read"}) || !slices.Equal(cl.Audiences, []string{"a", "b"}) {
		t.Errorf("client = %+v", cl)
	}
	if b.Users[0].Subject != "00u1" {
		t.Errorf("subject = %q", b.Users[0].Subject)
	}
}

func TestIssuerClaims(t *testing.T) {
	src := idpUser(
		"claims:",
		"  email: alice@example.com",
		"  email_verified: true",
		"  age: 42",
		"  ratio: 0.5",
		"  nothing: ~",
		"  since: 2024-01-02",
		"  team: ${TEAM}",
		"  '1': quoted",
		"  groups: [admin, {name: ops, since: 2020}]",
		"  address: &addr",
		"    street: 1 Main St",
		"    geo: {lat: 1.5, tags: [a, b]}",
		"  billing:",
		"    <<: *addr",
		"    street: 2 Side St",
	)
	cfg, errs := parse(t, src, map[string]string{"SECRET": idpVars["SECRET"], "TEAM": "blue"})
	if errs != nil {
		t.Fatal(errs)
	}
	got := cfg.Issuer.Users[0].Claims
	want := map[string]any{
		"email":          "alice@example.com",
		"email_verified": true,
		"age":            42,
		"ratio":          0.5,
		"nothing":        nil,
		"since":          "2024-01-02",
		"team":           "blue",
		"1":              "quoted",
		"groups":         []any{"admin", map[string]any{"name": "ops", "since": 2020}},
		"address":        map[string]any{"street": "1 Main St", "geo": map[string]any{"lat": 1.5, "tags": []any{"a", "b"}}},
		"billing":        map[string]any{"street": "2 Side St", "geo": map[string]any{"lat": 1.5, "tags": []any{"a", "b"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("claims:\n got  %#v\n want %#v", got, want)
	}
	// Every map inside is a map[string]any, as JSON needs.
	var walk func(string, any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			if reflect.ValueOf(v).Kind() == reflect.Map {
				t.Errorf("%s is a %T, want map[string]any", path, v)
			}
		}
	}
	walk("claims", got)
	if got, want := cfg.Pos("issuer.users[0].claims.address.geo.lat"), "t.yaml:22"; got != want {
		t.Errorf("Pos of a nested claim = %q, want %q", got, want)
	}
}

func TestIssuerValidateInCode(t *testing.T) {
	c := &config.Config{
		Server: config.Server{Listen: "127.0.0.1:8080", PublicURL: "http://localhost:8080", MaxHeaderBytes: 1 << 15},
		Admin:  config.Admin{Listen: "off"},
		Log:    config.Log{Level: "info", Format: "text"},
		Issuer: &config.BuiltinIssuer{
			URL:             "http://localhost:8080/idp",
			Signing:         config.IssuerSigning{Algorithm: "EdDSA"},
			AccessTokenTTL:  config.Duration(time.Hour),
			IDTokenTTL:      config.Duration(time.Hour),
			RefreshTokenTTL: config.Duration(time.Hour),
			SessionTTL:      config.Duration(time.Hour),
			Store:           "memory",
			LoginRateLimit: config.LoginRateLimit{Attempts: 3, Window: config.Duration(time.Minute), AddressAttempts: 3,
				MaxDelay: config.Duration(time.Second), DeviceTTL: config.Duration(time.Hour)},
			Clients: []config.IssuerClient{{
				ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:5173/cb"},
				GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, Audiences: []string{"api"},
			}},
			Users: []config.IssuerUser{{Username: "bob", Subject: "bob", PasswordHash: aliceHash, Claims: map[string]any{
				"ok":  map[string]any{"n": []any{1, 2.5, "x", nil}},
				"bad": map[any]any{1: "x"},
			}}},
		},
	}
	err := c.Validate()
	if got, want := fmt.Sprint(err), "issuer.users[0].claims.bad: holds a map[interface {}]interface {}, or something inside it JSON cannot hold; want strings, numbers, true, false, null, lists and mappings with string keys"; got != want {
		t.Errorf("Validate() = %q, want %q", got, want)
	}
	delete(c.Issuer.Users[0].Claims, "bad")
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestRedactStore(t *testing.T) {
	for in, want := range map[string]string{
		"memory":                     "memory",
		"redis://redis:6379/0":       "redis://redis:6379/0",
		"rediss://:hunter2@redis/1":  "rediss://:xxxxx@redis/1",
		"redis://u:hunter2@r:x/0":    "(a store URL that does not parse)",
		"redis://default:pw@r:6379/": "redis://default:xxxxx@r:6379/",
	} {
		if got := config.RedactStore(in); got != want {
			t.Errorf("RedactStore(%q) = %q, want %q", in, got, want)
		}
	}
}
