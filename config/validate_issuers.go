package config

import (
	"slices"
	"strings"
	"time"
)

// algorithms lists the JWS algorithms an issuer may allow, by the name RFC
// 7518 and RFC 8037 give them, with the least key size in bytes of the HMAC
// ones (RFC 7518 §3.2: at least the hash output).
var (
	algorithms = []string{
		"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512",
	}
	hmacKeyBytes = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}
)

// issuers checks every issuer, and that each is listed once.
func (v *validator) issuers() {
	seen := map[string]int{}
	for i := range v.c.Issuers {
		v.issuer(i)
		iss := v.c.Issuers[i].Issuer
		key := indexPath("issuers", i) + ".issuer"
		if first, dup := seen[iss]; dup && iss != "" {
			v.errorf(key, "%q is already listed as issuers[%d] (line %d); list each issuer once", iss, first, v.c.line(indexPath("issuers", first)+".issuer"))
			continue
		}
		seen[iss] = i
	}
}

// issuer checks one entry of issuers.
func (v *validator) issuer(i int) {
	is := &v.c.Issuers[i]
	p := indexPath("issuers", i)
	if is.Issuer == "" {
		v.errorf(p+".issuer", `is required; write the exact "iss" value of its tokens, like https://idp.example.com`)
	} else if _, msg := parseHTTPURL(is.Issuer, false); msg != "" {
		v.errorf(p+".issuer", "%s", msg)
	}
	if is.JWKSURI != "" {
		if _, msg := parseHTTPURL(is.JWKSURI, true); msg != "" {
			v.errorf(p+".jwks_uri", "%s", msg)
		}
	}
	v.issuerFetch(i)
	for j, a := range is.Audiences {
		if strings.TrimSpace(a) == "" {
			v.errorf(indexPath(p+".audiences", j), `is empty; want an "aud" value such as my-api`)
		}
	}
	v.algorithms(i)
	if is.HMACSecret != "" {
		need := 32
		for _, a := range is.Algorithms {
			need = max(need, hmacKeyBytes[a])
		}
		if len(is.HMACSecret) < need {
			v.errorf(p+".hmac_secret", "is %d bytes; want at least %d random bytes for the algorithms listed (RFC 7518 §3.2, RFC 8725 §3.5)", len(is.HMACSecret), need)
		}
	}
	v.nonNegative(p+".leeway", is.Leeway)
	v.nonNegative(p+".jwks_min_age", is.JWKSMinAge)
	v.nonNegative(p+".jwks_max_age", is.JWKSMaxAge)
	v.nonNegative(p+".jwks_refetch_interval", is.JWKSRefetchInterval)
	if d := is.JWKSFetchTimeout; d < 0 || d > 0 && d < Duration(100*time.Millisecond) || d > Duration(time.Minute) {
		v.errorf(p+".jwks_fetch_timeout", "is %s; want from 100ms to 1m, such as 5s", d.D())
	}
	if is.JWKSMinAge > is.JWKSMaxAge {
		v.errorf(p+".jwks_min_age", "is %s, longer than jwks_max_age %s; want jwks_min_age <= jwks_max_age", is.JWKSMinAge.D(), is.JWKSMaxAge.D())
	}
	if is.Typ != "" && !isMediaType(is.Typ) {
		v.errorf(p+".typ", "%q is not a type name; write it like at+jwt or application/at+jwt, without spaces", is.Typ)
	}
}

// algorithms checks an issuer's algorithm allow-list against its key
// sources: HS* needs hmac_secret, and asymmetric algorithms need keys from
// discovery or jwks_uri, which an issuer with hmac_secret only has through
// jwks_uri.
func (v *validator) algorithms(i int) {
	is := &v.c.Issuers[i]
	p := indexPath("issuers", i)
	if len(is.Algorithms) == 0 {
		v.errorf(p+".algorithms", "lists no algorithm; want some of %s, or leave the key out for [ES256, RS256]", strings.Join(algorithms, ", "))
		return
	}
	hasHMAC := false
	seen := map[string]bool{}
	for j, a := range is.Algorithms {
		key := indexPath(p+".algorithms", j)
		switch {
		case strings.EqualFold(a, "none"):
			v.errorf(key, "%q is never allowed: it accepts unsigned tokens that anyone can forge (RFC 8725 §2.1, §3.1)", a)
		case !slices.Contains(algorithms, a):
			if k := slices.IndexFunc(algorithms, func(s string) bool { return strings.EqualFold(s, a) }); k >= 0 {
				v.errorf(key, "%q is not an algorithm name; names are case-sensitive: write %s", a, algorithms[k])
			} else {
				v.errorf(key, "%q is not a supported algorithm; want one of %s", a, strings.Join(algorithms, ", "))
			}
		case seen[a]:
			v.errorf(key, "algorithm %s is listed twice; list each algorithm once", a)
		case hmacKeyBytes[a] > 0:
			seen[a], hasHMAC = true, true
			if is.HMACSecret == "" {
				v.errorf(key, "algorithm %s needs hmac_secret on this issuer; set it, or remove %s", a, a)
			}
		default:
			seen[a] = true
			if is.HMACSecret != "" && is.JWKSURI == "" {
				v.errorf(key, "algorithm %s needs keys from jwks_uri, but an issuer with hmac_secret does not use discovery; set jwks_uri, or remove %s", a, a)
			}
		}
	}
	if is.HMACSecret != "" && !hasHMAC {
		v.errorf(p+".hmac_secret", "is set but algorithms lists none of HS256, HS384, HS512; add one, or remove the secret")
	}
}

// isMediaType reports whether s is a token or a token/token pair, the forms
// of a JOSE "typ" (at+jwt, application/at+jwt).
func isMediaType(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	return isToken(typ) && (!ok || isToken(sub))
}

// issuerFetch refuses fetching an issuer's keys (its jwks_uri, or discovery
// at the issuer URL) over plain http from a host that is not loopback,
// unless server.insecure_allow_http: keys fetched that way can be swapped
// by anyone on the path. Issuers whose keys are not fetched (HMAC only, or
// the built-in issuer, verified in-process) are not affected.
func (v *validator) issuerFetch(i int) {
	is := &v.c.Issuers[i]
	p := indexPath("issuers", i)
	key, raw := p+".jwks_uri", is.JWKSURI
	if raw == "" {
		builtin := v.c.Issuer != nil && is.Issuer == v.c.Issuer.URL
		if is.HMACSecret != "" || builtin {
			return
		}
		key, raw = p+".issuer", is.Issuer
	}
	u, msg := parseHTTPURL(raw, raw == is.JWKSURI)
	if msg != "" || u.Scheme != "http" || isLoopback(u.Hostname()) || v.c.Server.InsecureAllowHTTP {
		return
	}
	v.errorf(key, "%q is plain http on a host that is not loopback, so the issuer's keys would be fetched unauthenticated; use https, or set server.insecure_allow_http: true", u.Redacted())
}
