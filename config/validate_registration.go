package config

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/uripattern"
)

// registrationGrantTypes are the grants a dynamically registered client
// may get.
var registrationGrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}

// Bounds of issuer.registration.
const minRegistrationUnusedTTL = time.Minute

// issuerRegistration checks issuer.registration, enabled or not, unless
// it is off and wholly zero (not even defaults filled in).
func (v *validator) issuerRegistration() {
	const p = "issuer.registration"
	r := &v.c.Issuer.Registration
	if !r.Enabled && reflect.ValueOf(*r).IsZero() {
		// Off and left empty, as a [Config] built in code leaves it.
		return
	}
	seen := map[string]bool{}
	for j, s := range r.RedirectURIs {
		k := indexPath(p+".redirect_uris", j)
		pat, err := uripattern.Parse(s)
		if err != nil {
			v.errorf(k, "%q: %v; write a pattern such as https://*.example.com/callback or https://app.example.com:*/callback", redactedPattern(s), err)
			continue
		}
		if strings.HasPrefix(pat.String(), "http://") && !isLoopback(strings.Trim(patternHost(pat.String()), "[]")) && !v.c.Server.InsecureAllowHTTP {
			v.errorf(k, "%q is plain http on a host that is not loopback; use https, or set server.insecure_allow_http: true", s)
			continue
		}
		if seen[pat.String()] {
			v.errorf(k, "%q is listed twice; list each pattern once", s)
		}
		seen[pat.String()] = true
	}
	v.registrationGrants()
	v.registrationScopes()
	if r.MaxClients < 1 {
		v.errorf(p+".max_clients", "is %d; want at least 1 client, such as 1000", r.MaxClients)
	}
	if r.UnusedTTL < Duration(minRegistrationUnusedTTL) {
		v.errorf(p+".unused_ttl", "is %s; want at least 1m, such as 720h", r.UnusedTTL.D())
	}
	if t := r.InitialAccessToken; t != "" && (len(t) < minSecretBytes || strings.TrimSpace(t) != t) {
		v.errorf(p+".initial_access_token", "is %d bytes; want at least %d random bytes without spaces at either end, from the environment, such as \"${PORTCULLIS_REGISTRATION_TOKEN}\"", len(t), minSecretBytes)
	}
}

// redactedPattern is s for messages, without what looks like user info.
func redactedPattern(s string) string {
	scheme, after, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority := after
	if i := strings.IndexAny(after, "/?#"); i >= 0 {
		authority = after[:i]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		return scheme + "://xxxxx@" + after[i+1:]
	}
	return s
}

// patternHost returns the host of a parsed pattern's String, brackets
// kept, without port.
func patternHost(s string) string {
	_, after, _ := strings.Cut(s, "://")
	if i := strings.IndexAny(after, "/?"); i >= 0 {
		after = after[:i]
	}
	if strings.HasPrefix(after, "[") {
		if i := strings.IndexByte(after, ']'); i >= 0 {
			return after[:i+1]
		}
	}
	if i := strings.LastIndexByte(after, ':'); i >= 0 {
		return after[:i]
	}
	return after
}

// registrationGrants checks issuer.registration.grant_types.
func (v *validator) registrationGrants() {
	const key = "issuer.registration.grant_types"
	gs := v.c.Issuer.Registration.GrantTypes
	if len(gs) == 0 {
		v.errorf(key, "lists no grant type; want authorization_code, optionally with refresh_token, or leave the key out for [authorization_code, refresh_token]")
		return
	}
	code := slices.Contains(gs, GrantAuthorizationCode)
	seen := map[string]bool{}
	for j, g := range gs {
		k := indexPath(key, j)
		switch {
		case g == GrantClientCredentials:
			v.errorf(k, "client_credentials needs a confidential client, and registered clients are public; remove it")
		case !slices.Contains(registrationGrantTypes, g):
			v.errorf(k, "%q is not a grant type registered clients may get; want authorization_code or refresh_token", g)
		case seen[g]:
			v.errorf(k, "grant type %s is listed twice; list each grant type once", g)
		case g == GrantRefreshToken && !code:
			v.errorf(k, "refresh_token needs authorization_code in grant_types too; add it, or remove refresh_token")
		}
		seen[g] = true
	}
}

// registrationScopes checks issuer.registration.scopes as the scopes of
// issuer.clients are checked.
func (v *validator) registrationScopes() {
	const key = "issuer.registration.scopes"
	scopes := v.c.Issuer.Registration.Scopes
	if len(scopes) == 0 {
		v.errorf(key, "lists no scope; want the scopes registered clients may get, or leave the key out for [openid, profile, email, offline_access]")
		return
	}
	v.scopeList(key, scopes)
}
