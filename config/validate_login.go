package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Bounds of the browser login's settings.
const (
	minCookieSecretBytes = 32
	minCookieMaxAge      = time.Minute
	maxCookieMaxAge      = 720 * time.Hour
)

// login checks the login: section, when there is one.
func (v *validator) login() {
	l := v.c.Login
	if l == nil {
		if v.c.has("login") {
			// "login:" with nothing under it.
			v.errorf("login.issuer", "is required; write the issuer URL of the OpenID provider, such as http://localhost:8080/idp, or remove the login: key")
		}
		return
	}
	v.loginIssuer()
	switch {
	case l.ClientID == "":
		v.errorf("login.client_id", "is required; write the gateway's client_id at the provider, such as portcullis")
	case !isCleanName(l.ClientID):
		v.errorf("login.client_id", "%q has spaces at either end or control characters; write the gateway's client_id at the provider", l.ClientID)
	}
	v.loginScopes()
	v.loginPrefix()
	base := strings.TrimSuffix(v.c.Server.PublicURL, "/")
	v.loginURL("login.redirect_url", l.RedirectURL, base+l.Prefix+"/callback")
	v.loginURL("login.post_logout_redirect_url", l.PostLogoutRedirectURL, base+"/")
	v.loginCookie()
	v.cookieSecret()
	v.allowedRedirectHosts()
	v.nonNegative("login.refresh_before", l.RefreshBefore)
	if d := l.ProviderTimeout; d < 0 || d > 0 && d < Duration(100*time.Millisecond) || d > Duration(time.Minute) {
		v.errorf("login.provider_timeout", "is %s; want from 100ms to 1m, such as 10s", d.D())
	}
	if sc := l.SessionCache; sc.Entries < 0 {
		v.errorf("login.session_cache.entries", "is %d; want a number of sessions such as 10000, or 0 to turn the cache off", sc.Entries)
	} else if sc.Entries > 0 && sc.Bytes <= 0 {
		v.errorf("login.session_cache.bytes", "is %d; want a positive number of bytes, such as 16777216", sc.Bytes)
	}
	switch s := l.SessionStore; {
	case s == SessionStoreCookie:
	case strings.EqualFold(s, SessionStoreCookie):
		v.errorf("login.session_store", "%q is not a session store; names are case-sensitive: write %s", s, strings.ToLower(s))
	default:
		v.storeName("login.session_store", "session store", s, "cookie, ")
	}
	v.backchannelLogout()
	v.loginBuiltin()
}

// storeName checks a store key: memory, redis (the built-in issuer's
// Redis) or a Redis URL; more lists other names the key takes.
func (v *validator) storeName(key, what, s, more string) {
	switch {
	case s == SessionStoreMemory:
	case s == SessionStoreRedis:
		if v.c.Issuer == nil || !strings.HasPrefix(v.c.Issuer.Store, "redis") {
			v.errorf(key, "redis shares the built-in issuer's Redis, and issuer.store is not a Redis URL; write a Redis URL here, such as redis://localhost:6379/0")
		}
	case strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://"):
		if msg := checkStore(s); msg != "" {
			v.errorf(key, "%s", msg)
		}
	case strings.EqualFold(s, SessionStoreMemory) || strings.EqualFold(s, SessionStoreRedis):
		v.errorf(key, "%q is not a %s; names are case-sensitive: write %s", s, what, strings.ToLower(s))
	default:
		v.errorf(key, "%q is not a %s; want %smemory, redis (the issuer's Redis) or a Redis URL such as redis://localhost:6379/0", shorten(s), what, more)
	}
}

// backchannelLogout checks the back-channel logout keys: they mean
// nothing without login.backchannel_logout, and the logout store of
// sessions kept in Redis is that Redis.
func (v *validator) backchannelLogout() {
	l := v.c.Login
	if !l.BackchannelLogout {
		for _, k := range []struct {
			key string
			set bool
		}{{"login.backchannel_logout_require_typ", l.BackchannelLogoutRequireTyp}, {"login.logout_store", l.LogoutStore != ""}} {
			if k.set {
				v.errorf(k.key, "has no effect without login.backchannel_logout: true; set that too, or remove this key")
			}
		}
		return
	}
	if l.LogoutStore != l.SessionStore || l.SessionStore == SessionStoreCookie { // else checked as the session store
		v.storeName("login.logout_store", "logout store", l.LogoutStore, "")
	}
	if s := l.SessionStore; s != SessionStoreCookie && s != SessionStoreMemory && l.LogoutStore != s {
		v.errorf("login.logout_store", "is %q, but sessions live in Redis (login.session_store), where a logout deletes them and its token ids are kept; remove this key", shorten(l.LogoutStore))
	}
}

// loginIssuer checks login.issuer, and that the tokens it issues are
// trusted: the gateway verifies a session's token like any other.
func (v *validator) loginIssuer() {
	const key = "login.issuer"
	s := v.c.Login.Issuer
	if s == "" {
		v.errorf(key, "is required; write the issuer URL of the OpenID provider, such as http://localhost:8080/idp")
		return
	}
	u, msg := parseHTTPURL(s, false)
	switch {
	case msg != "":
		v.errorf(key, "%s", msg)
		return
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !v.c.Server.InsecureAllowHTTP:
		v.errorf(key, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true when TLS ends in front of the provider", u.Redacted())
		return
	}
	if b := v.c.Issuer; b != nil && s != b.URL && strings.TrimSuffix(s, "/") == b.URL {
		v.errorf(key, "%q is the built-in issuer's URL with a trailing slash; write it exactly as issuer.url: %s", s, b.URL)
		return
	}
	if !slices.ContainsFunc(v.c.Issuers, func(is Issuer) bool { return is.Issuer == s }) {
		v.errorf(key, "%q is not listed under issuers, so the tokens the login gets would be refused; add it there with its audiences", s)
	}
}

// loginScopes checks login.scopes, which must ask for openid.
func (v *validator) loginScopes() {
	const key = "login.scopes"
	scopes := v.c.Login.Scopes
	if len(scopes) == 0 {
		v.errorf(key, "lists no scope; want openid and the others to ask for, or leave the key out for [%s]", strings.Join(defaultLoginScopes, ", "))
		return
	}
	seen := map[string]bool{}
	for j, s := range scopes {
		k := indexPath(key, j)
		switch {
		case !isScopeToken(s):
			v.errorf(k, `%q is not a scope name; want one word of printable ASCII without spaces, '"' or '\'`, s)
		case seen[s]:
			v.errorf(k, "scope %s is listed twice; list each scope once", s)
		}
		seen[s] = true
	}
	if !seen["openid"] {
		v.errorf(key, "does not hold openid, without which the provider sends no ID token; add it")
	}
}

// loginPrefix checks login.prefix, which must be a path of its own: the
// gateway's endpoints are matched before any route and beside the built-in
// issuer's.
func (v *validator) loginPrefix() {
	const key = "login.prefix"
	p := v.c.Login.Prefix
	if msg := checkPath(p, "write it like /oauth2"); msg != "" {
		v.errorf(key, "%s", msg)
		return
	}
	if strings.HasSuffix(p, "/") {
		v.errorf(key, "%q ends with /; write it without the trailing slash, like /oauth2", p)
		return
	}
	for i, r := range v.c.Routes {
		rp := r.PathPrefix
		if rp != "/" {
			rp = strings.TrimSuffix(rp, "/")
		}
		if rp == p {
			v.errorf(key, "%q is also the path_prefix of route %q (line %d), which the gateway's own endpoints would hide; change one of them",
				p, r.Name, v.c.line(indexPath("routes", i)+".path_prefix"))
		}
	}
	if b := v.c.Issuer; b != nil {
		u, err := url.Parse(b.URL)
		if err != nil || u.Path == "" || strings.HasSuffix(u.Path, "/") {
			return // the issuer serves fixed paths at the root, or its URL is reported
		}
		ip := u.Path
		if p == ip || strings.HasPrefix(p, ip+"/") || strings.HasPrefix(ip, p+"/") {
			v.errorf(key, "%q overlaps %s, the path of the built-in issuer (issuer.url, line %d); give the gateway's endpoints a path of their own, such as /oauth2",
				p, ip, v.c.line("issuer.url"))
		}
	}
}

// loginURL checks an absolute URL of the login section. One equal to its
// default, derived, is made of server.public_url and login.prefix, which
// are checked themselves.
func (v *validator) loginURL(key, s, derived string) {
	if s == derived {
		return
	}
	u, msg := parseHTTPURL(s, true)
	switch {
	case msg != "":
		v.errorf(key, "%s", msg)
	case u.Scheme == "http" && !isLoopback(u.Hostname()) && !v.c.Server.InsecureAllowHTTP:
		v.errorf(key, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true", u.Redacted())
	}
}

// loginCookie checks the session cookie's name, flags, lifetime and domain.
func (v *validator) loginCookie() {
	c := &v.c.Login.Cookie
	switch {
	case !isToken(c.Name):
		v.errorf("login.cookie.name", "%q is not a cookie name; use letters, digits, - and _, such as _portcullis", c.Name)
	case hasFoldPrefix(c.Name, "__Host-"), hasFoldPrefix(c.Name, "__Secure-"):
		pre, _, _ := strings.Cut(c.Name[2:], "-")
		v.errorf("login.cookie.name", "%q starts with __%s-; write the name without it: the gateway adds __Host- or __Secure- itself", c.Name, pre)
	}
	if !c.Secure && !v.c.Server.InsecureAllowHTTP {
		if u, msg := parseHTTPURL(v.c.Server.PublicURL, false); msg == "" && !isLoopback(u.Hostname()) {
			v.errorf("login.cookie.secure", "is false, so browsers would send the session cookie over plain http to %s; set it to true, or set server.insecure_allow_http: true when TLS ends in front of the gateway", u.Hostname())
		}
	}
	if d := c.MaxAge; d >= 0 && (d < Duration(minCookieMaxAge) || d > Duration(maxCookieMaxAge)) {
		v.errorf("login.cookie.max_age", "is %s; want from 1m to 720h, such as 12h", d.D())
	}
	v.nonNegative("login.cookie.max_age", c.MaxAge)
	v.cookieDomain()
}

// cookieDomain checks login.cookie.domain: a host name that covers the host
// of the redirect URL, where the cookie is set, or browsers refuse it.
func (v *validator) cookieDomain() {
	const key = "login.cookie.domain"
	d := v.c.Login.Cookie.Domain
	switch {
	case d == "":
		return
	case strings.HasPrefix(d, "."):
		v.errorf(key, "%q starts with a dot; write %s, which covers its subdomains too", d, strings.TrimLeft(d, "."))
		return
	}
	if msg := checkHost(d); msg != "" {
		v.errorf(key, "%s", msg)
		return
	}
	u, msg := parseHTTPURL(v.c.Login.RedirectURL, true)
	if msg != "" {
		return // reported on login.redirect_url
	}
	if host := strings.ToLower(u.Hostname()); host != strings.ToLower(d) && !strings.HasSuffix(host, "."+strings.ToLower(d)) {
		v.errorf(key, "%q does not cover %s, the host of login.redirect_url, so browsers would refuse the session cookie; set that host or a parent domain of it, or leave it empty", d, host)
	}
}

// cookieSecret checks the keys of the session cookie. Messages never show a
// key.
func (v *validator) cookieSecret() {
	const key = "login.cookie.secret"
	keys := v.c.Login.Cookie.Secret
	if len(keys) == 0 || len(keys) == 1 && keys[0] == "" {
		v.errorf(key, `is required; write at least 32 random bytes from the environment, such as "${PORTCULLIS_COOKIE_SECRET}", or a list of keys to rotate them`)
		return
	}
	// Written as a list, each key has a line of its own.
	indexed := len(keys) > 1 || v.c.has(indexPath(key, 0))
	seen := map[string]int{}
	for i, s := range keys {
		k := key
		if indexed {
			k = indexPath(key, i)
		}
		if len(s) < minCookieSecretBytes {
			v.errorf(k, "is %d bytes; want at least %d random bytes, such as openssl rand -base64 32 prints", len(s), minCookieSecretBytes)
		} else if first, dup := seen[s]; dup {
			v.errorf(k, "is the same key as secret[%d]; list each key once", first)
		} else {
			seen[s] = i
		}
	}
}

// allowedRedirectHosts checks login.allowed_redirect_hosts: host names, or
// ".example.com" for every subdomain of example.com.
func (v *validator) allowedRedirectHosts() {
	const key = "login.allowed_redirect_hosts"
	seen := map[string]bool{}
	for j, h := range v.c.Login.AllowedRedirectHosts {
		k := indexPath(key, j)
		name := strings.TrimPrefix(h, ".")
		switch {
		case strings.HasPrefix(h, "*."):
			v.errorf(k, "%q holds a wildcard; write %s for every subdomain of %s", h, h[1:], h[2:])
		case name == "" || checkHost(name) != "":
			v.errorf(k, "%q is not a host; want a host name such as app.example.com, or .example.com for every subdomain of example.com", h)
		case seen[h]:
			v.errorf(k, "%q is listed twice; list each host once", h)
		}
		seen[h] = true
	}
}

// loginBuiltin checks, when the login uses the built-in issuer, that the
// issuer has the gateway's client and would accept what the login sends:
// its redirect URL, grant, scopes and secret.
func (v *validator) loginBuiltin() {
	l, b := v.c.Login, v.c.Issuer
	if b == nil || l.Issuer != b.URL || l.ClientID == "" {
		return
	}
	const key = "login.client_id"
	i := slices.IndexFunc(b.Clients, func(c IssuerClient) bool { return c.ID == l.ClientID })
	if i < 0 {
		v.errorf(key, "the built-in issuer has no client %q; add it under issuer.clients with redirect_uris: [%s], or change login.client_id", l.ClientID, l.RedirectURL)
		return
	}
	cl := &b.Clients[i]
	client := fmt.Sprintf("client %q of the built-in issuer (line %d)", cl.ID, v.c.line(indexPath("issuer.clients", i)))
	if !slices.Contains(cl.RedirectURIs, l.RedirectURL) {
		v.errorf(key, "%s does not list the redirect URL %s in its redirect_uris; add it there, or set login.redirect_url to one it lists", client, l.RedirectURL)
	}
	if !slices.Contains(cl.GrantTypes, GrantAuthorizationCode) {
		v.errorf(key, "%s lacks the authorization_code grant the login uses; add it to its grant_types", client)
	}
	var missing []string
	for _, s := range l.Scopes {
		if !slices.Contains(cl.Scopes, s) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		v.errorf("login.scopes", "%s may not get %s; add them to its scopes, or remove them here", client, strings.Join(missing, ", "))
	}
	switch {
	case cl.Public && l.ClientSecret != "":
		v.errorf("login.client_secret", "is set, but %s is public and refuses secrets; remove client_secret, or make the client confidential", client)
	case !cl.Public && l.ClientSecret == "":
		v.errorf("login.client_secret", "is empty, but %s is confidential; set it to the client's secret, or make the client public", client)
	case cl.Secret != "" && l.ClientSecret != cl.Secret:
		v.errorf("login.client_secret", "differs from the secret of %s; set both from the same environment variable", client)
	}
}

// hasFoldPrefix reports whether s starts with prefix, ignoring case.
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
