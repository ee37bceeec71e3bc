package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// signingAlgorithms are the algorithms the built-in issuer signs with.
var signingAlgorithms = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

// grantTypes are the grants a client of the built-in issuer may use.
var grantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}

// Bounds of the built-in issuer's settings.
const (
	minTokenTTL    = time.Minute
	maxTokenTTL    = 24 * time.Hour
	minRotateEvery = time.Hour
	minSessionTTL  = time.Minute
	minLoginWindow = time.Second
	minSecretBytes = 16
)

// builtinIssuer checks the issuer: section, when there is one.
func (v *validator) builtinIssuer() {
	b := v.c.Issuer
	if b == nil {
		if v.c.has("issuer") {
			// "issuer:" with nothing under it.
			v.errorf("issuer.url", "is required; write the URL the issuer is reached at, such as http://localhost:8080/idp, or remove the issuer: key")
		}
		return
	}
	v.issuerURL()
	v.issuerSigning()
	v.issuerTTLs()
	if msg := checkStore(b.Store); msg != "" {
		v.errorf("issuer.store", "%s", msg)
	}
	if n := b.LoginRateLimit.Attempts; n < 1 {
		v.errorf("issuer.login_rate_limit.attempts", "is %d; want at least 1 failed login per window, such as 10", n)
	}
	if w := b.LoginRateLimit.Window; w < Duration(minLoginWindow) {
		v.errorf("issuer.login_rate_limit.window", "is %s; want at least 1s, such as 15m", w.D())
	}
	if n := b.LoginRateLimit.AddressAttempts; n < 1 {
		v.errorf("issuer.login_rate_limit.address_attempts", "is %d; want at least 1 failed sign-in per window before answers to the address wait, such as 10", n)
	}
	if d := b.LoginRateLimit.MaxDelay.D(); d < time.Second || d > 5*time.Minute {
		v.errorf("issuer.login_rate_limit.max_delay", "is %s; want from 1s to 5m, such as 30s", d)
	}
	if d := b.LoginRateLimit.DeviceTTL.D(); d < time.Hour {
		v.errorf("issuer.login_rate_limit.device_ttl", "is %s; want at least 1h, such as 2160h (90 days)", d)
	}
	for _, name := range v.sortedKeys("issuer.scopes", maps.Keys(b.Scopes)) {
		key := keyPath("issuer.scopes", name)
		if !isScopeToken(name) {
			v.errorf(key, `%q is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`, name)
		} else if strings.TrimSpace(b.Scopes[name]) == "" {
			v.errorf(key, `has no description; write what the consent page shows for it, such as "Read your data"`)
		}
	}
	v.issuerClients()
	v.issuerUsers()
	v.issuerResources()
	v.issuerRegistration()
}

// issuerURL checks issuer.url, the built-in issuer's identifier.
func (v *validator) issuerURL() {
	const key = "issuer.url"
	s := v.c.Issuer.URL
	if s == "" {
		v.errorf(key, "is required; write the URL the issuer is reached at, such as http://localhost:8080/idp")
		return
	}
	u, msg := parseHTTPURL(s, false)
	switch {
	case msg != "":
		v.errorf(key, "%s", msg)
	case strings.HasSuffix(u.Path, "/"):
		v.errorf(key, "%q ends with /; write it without the trailing slash, like http://localhost:8080/idp", u.Redacted())
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !v.c.Server.InsecureAllowHTTP:
		v.errorf(key, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true when TLS ends in front of the gateway", u.Redacted())
	}
}

// issuerSigning checks issuer.signing.
func (v *validator) issuerSigning() {
	s := v.c.Issuer.Signing
	a := s.Algorithm
	if !slices.Contains(signingAlgorithms, a) {
		list := strings.Join(signingAlgorithms, ", ")
		if k := slices.IndexFunc(signingAlgorithms, func(s string) bool { return strings.EqualFold(s, a) }); k >= 0 {
			v.errorf("issuer.signing.algorithm", "%q is not an algorithm name; names are case-sensitive: write %s", a, signingAlgorithms[k])
		} else {
			v.errorf("issuer.signing.algorithm", "%q is not an algorithm the issuer signs with; want one of %s", a, list)
		}
	}
	v.nonNegative("issuer.signing.rotate_every", s.RotateEvery)
	if s.RotateEvery > 0 && s.RotateEvery < Duration(minRotateEvery) {
		v.errorf("issuer.signing.rotate_every", "is %s; want at least 1h, such as 24h, or 0s to never rotate", s.RotateEvery.D())
	}
	if len(s.KeyFiles) > 0 {
		if s.KeyDir != "" {
			v.errorf("issuer.signing.key_files", "and key_dir are both set; keys come either from files given from outside or from a directory the issuer manages")
		}
		if s.RotateEvery > 0 {
			v.errorf("issuer.signing.key_files", "cannot rotate on their own; unset rotate_every and rotate by changing the files")
		}
		for i, f := range s.KeyFiles {
			if msg := checkReadable(f); msg != "" {
				v.errorf(indexPath("issuer.signing.key_files", i), "%s", msg)
			}
		}
	}
}

// issuerTTLs checks the lifetimes of tokens, sessions and consents.
func (v *validator) issuerTTLs() {
	b := v.c.Issuer
	for key, d := range map[string]Duration{
		"issuer.access_token_ttl":  b.AccessTokenTTL,
		"issuer.id_token_ttl":      b.IDTokenTTL,
		"issuer.refresh_token_ttl": b.RefreshTokenTTL,
		"issuer.session_ttl":       b.SessionTTL,
		"issuer.consent_ttl":       b.ConsentTTL,
	} {
		v.nonNegative(key, d)
	}
	if d := b.StoreTimeout; d < 0 || d > 0 && d < Duration(10*time.Millisecond) || d > Duration(30*time.Second) {
		v.errorf("issuer.store_timeout", "is %s; want from 10ms to 30s, such as 1s", d.D())
	}
	if d := b.RefreshRetryGrace; d < 0 || d > Duration(time.Minute) {
		v.errorf("issuer.refresh_retry_grace", "is %s; want from 0s (off) to 1m, such as 10s", d.D())
	}
	tokenTTL := func(key string, d Duration) {
		if d >= 0 && (d < Duration(minTokenTTL) || d > Duration(maxTokenTTL)) {
			v.errorf(key, "is %s; want from 1m to 24h, such as 15m", d.D())
		}
	}
	tokenTTL("issuer.access_token_ttl", b.AccessTokenTTL)
	if b.IDTokenTTL != b.AccessTokenTTL {
		// Equal, it is the default or says nothing new.
		tokenTTL("issuer.id_token_ttl", b.IDTokenTTL)
	}
	if b.RefreshTokenTTL >= 0 && b.RefreshTokenTTL < b.AccessTokenTTL {
		v.errorf("issuer.refresh_token_ttl", "is %s, shorter than access_token_ttl %s; want refresh_token_ttl >= access_token_ttl, such as 720h", b.RefreshTokenTTL.D(), b.AccessTokenTTL.D())
	}
	if d := b.SessionTTL; d >= 0 && d < Duration(minSessionTTL) {
		v.errorf("issuer.session_ttl", "is %s; want at least 1m, such as 12h", d.D())
	}
}

// checkStore reports why s is not memory or a Redis URL
// redis[s]://[user:password@]host[:port][/db]. Messages never show the
// password.
func checkStore(s string) string {
	const want = "want memory, or a Redis URL such as redis://localhost:6379/0 (rediss:// for TLS)"
	if s == StoreMemory {
		return ""
	}
	if !strings.Contains(s, "://") {
		if strings.EqualFold(s, StoreMemory) {
			return fmt.Sprintf("%q is not a store; names are case-sensitive: write memory", s)
		}
		return fmt.Sprintf("%q is not a store; %s", shorten(s), want)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL itself might hold a password
		}
		return fmt.Sprintf("is not a URL (%v); %s", err, want)
	}
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return fmt.Sprintf("%q is not a store: the scheme must be redis or rediss; %s", u.Redacted(), want)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host; %s", u.Redacted(), want)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Sprintf("%q must not have a #fragment; %s", u.Redacted(), want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("port %q of %q is not a number from 1 to 65535", p, u.Redacted())
		}
	}
	if db, ok := strings.CutPrefix(u.Path, "/"); u.Path != "" && (!ok || db != "" && !isDigits(db)) {
		return fmt.Sprintf("%q: the path must be a database number such as /0, or nothing; %s", u.Redacted(), want)
	}
	return ""
}

// issuerClients checks every client, and that client ids are unique.
func (v *validator) issuerClients() {
	ids := map[string]int{}
	for i := range v.c.Issuer.Clients {
		v.issuerClient(i)
		id := v.c.Issuer.Clients[i].ID
		key := indexPath("issuer.clients", i) + ".id"
		if first, dup := ids[id]; dup && id != "" {
			v.errorf(key, "client id %q is already used at line %d; client ids must be unique", id, v.c.line(indexPath("issuer.clients", first)+".id"))
			continue
		}
		ids[id] = i
	}
}

// issuerClient checks one client of the built-in issuer.
func (v *validator) issuerClient(i int) {
	cl := &v.c.Issuer.Clients[i]
	p := indexPath("issuer.clients", i)
	switch {
	case cl.ID == "":
		v.errorf(p+".id", `is required; write the client_id, made of letters, digits, "_", ".", ":" and "-"`)
	case !isClientID(cl.ID):
		v.errorf(p+".id", `%q is not a client id; use only letters, digits, "_", ".", ":" and "-"`, cl.ID)
	}
	v.clientSecret(i)
	v.clientGrants(i)
	v.redirectURIs(p+".redirect_uris", cl.RedirectURIs)
	v.redirectURIs(p+".post_logout_redirect_uris", cl.PostLogoutRedirectURIs)
	if raw := cl.BackchannelLogoutURI; raw != "" {
		k := p + ".backchannel_logout_uri"
		u, msg := parseHTTPURL(raw, true)
		switch {
		case msg != "":
			v.errorf(k, "%s", msg)
		case u.RawQuery != "" || strings.HasSuffix(raw, "?"):
			v.errorf(k, "%q has a ?query; logout tokens are posted as a form, so write the URI without one", u.Redacted())
		case u.Scheme == "http" && !isLoopback(u.Hostname()) && !v.c.Server.InsecureAllowHTTP:
			v.errorf(k, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true", u.Redacted())
		}
	}
	v.scopeList(p+".scopes", cl.Scopes)
	if len(cl.Audiences) == 0 && cl.ID != "" {
		v.errorf(p+".audiences", `lists no audience; want the "aud" values of the client's access tokens, or leave the key out for [%s]`, cl.ID)
	}
	for j, a := range cl.Audiences {
		if strings.TrimSpace(a) == "" {
			v.errorf(indexPath(p+".audiences", j), `is empty; want an "aud" value such as my-api`)
		}
	}
}

// clientSecret checks that a confidential client has one secret and a
// public one none. Messages never show a secret or its hash.
func (v *validator) clientSecret(i int) {
	cl := &v.c.Issuer.Clients[i]
	p := indexPath("issuer.clients", i)
	switch {
	case cl.Public && cl.Secret != "":
		v.errorf(p+".secret", "a public client has no secret; remove it, or set public: false")
	case cl.Public && cl.SecretHash != "":
		v.errorf(p+".secret_hash", "a public client has no secret; remove it, or set public: false")
	case cl.Public:
	case cl.Secret != "" && cl.SecretHash != "":
		v.errorf(p+".secret_hash", "is set along with secret; keep one of them")
	case cl.Secret == "" && cl.SecretHash == "":
		v.errorf(p+".secret", "a confidential client needs secret or secret_hash; set one, or set public: true for a client that uses PKCE without a secret")
	case cl.Secret != "" && len(cl.Secret) < minSecretBytes:
		v.errorf(p+".secret", "is %d bytes; want at least %d random bytes", len(cl.Secret), minSecretBytes)
	case cl.SecretHash != "" && !isBcrypt(cl.SecretHash):
		v.errorf(p+".secret_hash", "%s", bcryptShape)
	}
}

// clientGrants checks a client's grant types against its kind and the
// redirect URIs they need.
func (v *validator) clientGrants(i int) {
	cl := &v.c.Issuer.Clients[i]
	p := indexPath("issuer.clients", i)
	if len(cl.GrantTypes) == 0 {
		v.errorf(p+".grant_types", "lists no grant type; want some of %s, or leave the key out for [authorization_code, refresh_token]", strings.Join(grantTypes, ", "))
		return
	}
	code := slices.Contains(cl.GrantTypes, GrantAuthorizationCode)
	seen := map[string]bool{}
	for j, g := range cl.GrantTypes {
		key := indexPath(p+".grant_types", j)
		switch {
		case !slices.Contains(grantTypes, g):
			v.errorf(key, "%q is not a grant type; want authorization_code, refresh_token or client_credentials", g)
		case seen[g]:
			v.errorf(key, "grant type %s is listed twice; list each grant type once", g)
		case g == GrantRefreshToken && !code:
			v.errorf(key, "refresh_token needs authorization_code in grant_types too; add it, or remove refresh_token")
		case g == GrantClientCredentials && cl.Public:
			v.errorf(key, "client_credentials needs a confidential client; set public: false and a secret, or remove client_credentials")
		}
		seen[g] = true
	}
	if code && len(cl.RedirectURIs) == 0 {
		v.errorf(p+".redirect_uris", "is required with the authorization_code grant; list the exact redirect URIs, such as http://localhost:8080/oauth2/callback")
	}
}

// redirectURIs checks a list of exact redirect URIs: absolute http(s) URLs
// without fragment or wildcard, plain http only on loopback hosts unless
// server.insecure_allow_http.
func (v *validator) redirectURIs(key string, uris []string) {
	seen := map[string]bool{}
	for j, s := range uris {
		k := indexPath(key, j)
		if strings.Contains(s, "*") {
			v.errorf(k, `holds a wildcard "*"; list every redirect URI exactly (RFC 9700 §4.1.3)`)
			continue
		}
		u, msg := parseHTTPURL(s, true)
		switch {
		case msg != "":
			v.errorf(k, "%s", msg)
		case u.Scheme == "http" && !isLoopback(u.Hostname()) && !v.c.Server.InsecureAllowHTTP:
			v.errorf(k, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true", u.Redacted())
		case seen[s]:
			v.errorf(k, "%q is listed twice; list each URI once", u.Redacted())
		}
		seen[s] = true
	}
}

// issuerUsers checks every user, and that usernames and subjects are unique.
func (v *validator) issuerUsers() {
	names := map[string]int{}
	subjects := map[string]int{}
	for i := range v.c.Issuer.Users {
		u := &v.c.Issuer.Users[i]
		p := indexPath("issuer.users", i)
		v.issuerUser(i)
		if first, dup := names[u.Username]; dup && u.Username != "" {
			v.errorf(p+".username", "username %q is already used at line %d; usernames must be unique", u.Username, v.c.line(indexPath("issuer.users", first)+".username"))
		} else if !dup {
			names[u.Username] = i
		}
		if first, dup := subjects[u.Subject]; dup && u.Subject != "" && u.Username != v.c.Issuer.Users[first].Username {
			v.errorf(p+".subject", "subject %q is already the subject of user %q (line %d); subjects must be unique", u.Subject, v.c.Issuer.Users[first].Username, v.c.line(indexPath("issuer.users", first)))
		} else if !dup {
			subjects[u.Subject] = i
		}
	}
}

// issuerUser checks one user of the built-in issuer.
func (v *validator) issuerUser(i int) {
	u := &v.c.Issuer.Users[i]
	p := indexPath("issuer.users", i)
	switch {
	case u.Username == "":
		v.errorf(p+".username", "is required; write the name the user logs in with")
	case !isCleanName(u.Username):
		v.errorf(p+".username", "%q has spaces at either end or control characters; write the name the user logs in with", u.Username)
	}
	switch {
	case u.PasswordHash == "":
		v.errorf(p+".password_hash", "is required; %s", bcryptWant)
	case !isBcrypt(u.PasswordHash):
		v.errorf(p+".password_hash", "%s", bcryptShape)
	}
	switch {
	case u.Subject == u.Username:
		// The default, or the same: the username is checked above.
	case u.Subject == "":
		v.errorf(p+".subject", `is empty; write the user's stable "sub", or leave the key out for the username`)
	case !isCleanName(u.Subject):
		v.errorf(p+".subject", `%q has spaces at either end or control characters; write the user's stable "sub", or leave the key out for the username`, u.Subject)
	}
	for _, name := range v.sortedKeys(p+".claims", maps.Keys(u.Claims)) {
		key := keyPath(p+".claims", name)
		switch {
		case name == "":
			v.errorf(key, "a claim name must not be empty")
		case name == "sub":
			v.errorf(key, "sub is set by the issuer from subject; set subject instead")
		case slices.Contains(reservedClaims, name):
			v.errorf(key, "%s is set by the issuer itself; remove it (reserved: %s)", name, strings.Join(reservedClaims, ", "))
		default:
			if _, ok := jsonValue(u.Claims[name]); !ok {
				v.errorf(key, "holds a %T, or something inside it JSON cannot hold; want strings, numbers, true, false, null, lists and mappings with string keys", u.Claims[name])
			}
		}
	}
}

// Messages about bcrypt hashes; they never show the hash.
const (
	bcryptWant  = "want a bcrypt hash ($2a$, $2b$ or $2y$, a cost from 04 to 31, 60 characters in all), as portcullis hash-password prints it"
	bcryptShape = "is not a bcrypt hash; " + bcryptWant
)

// isBcrypt reports whether h has the shape of a bcrypt hash:
// "$2a$", "$2b$" or "$2y$", two digits of cost from 04 to 31, "$", then 53
// characters of bcrypt's base64 (22 of salt, 31 of hash), 60 in all.
func isBcrypt(h string) bool {
	if len(h) != 60 || !(strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")) || h[6] != '$' {
		return false
	}
	if !isDigits(h[4:6]) {
		return false
	}
	if cost, _ := strconv.Atoi(h[4:6]); cost < 4 || cost > 31 {
		return false
	}
	return !strings.ContainsFunc(h[7:], func(r rune) bool {
		return !(r == '.' || r == '/' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// isClientID reports whether s matches [A-Za-z0-9_.:-]+.
func isClientID(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '_' || r == '.' || r == ':' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
}

// isScopeToken reports whether s is a scope-token of RFC 6749 §3.3: one or
// more of %x21 / %x23-5B / %x5D-7E.
func isScopeToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r < 0x21 || r > 0x7e || r == '"' || r == '\\'
	})
}

// isCleanName reports whether s has no control characters and no spaces at
// either end.
func isCleanName(s string) bool {
	return s == strings.TrimSpace(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// scopeList checks a list of scopes the built-in issuer may grant, at key:
// each a scope name, listed once, built in or described under
// issuer.scopes.
func (v *validator) scopeList(key string, scopes []string) {
	seen := map[string]bool{}
	for j, s := range scopes {
		k := indexPath(key, j)
		_, builtin := builtinScopes[s]
		_, described := v.c.Issuer.Scopes[s]
		switch {
		case !isScopeToken(s):
			v.errorf(k, `%q is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`, s)
		case seen[s]:
			v.errorf(k, "scope %s is listed twice; list each scope once", s)
		case !builtin && !described:
			v.errorf(k, `scope %s is neither built in (openid, profile, email, offline_access) nor described under issuer.scopes; add it there (%s: "what it allows"), or remove it`, s, s)
		}
		seen[s] = true
	}
}
