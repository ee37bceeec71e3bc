package authn

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Identity is a verified caller: who they are, who vouched for them and what
// they may do. It is immutable once returned and safe to share.
type Identity struct {
	// Subject is "sub"; may be empty for tokens without one.
	Subject string
	// Issuer is "iss", exactly as configured.
	Issuer string
	// Audience is "aud" as a list.
	Audience []string
	// Scopes are the granted scopes from "scope" and "scp".
	Scopes []string
	// ID is "jti"; may be empty.
	ID string
	// Expiry is "exp"; IssuedAt and NotBefore are zero when absent.
	Expiry, IssuedAt, NotBefore time.Time
	// Claims are all claims of the token, decoded case-sensitively, numbers
	// as json.Number. Do not modify.
	Claims map[string]any
	// Token is the raw token the identity was verified from.
	Token string
	// Source is where the token was found.
	Source Source
	// Binding is how the token is sender-constrained: BindingNone,
	// BindingDPoP (cnf.jkt) or BindingX5T (cnf["x5t#S256"]); BindingValue
	// is the thumbprint.
	Binding, BindingValue string
}

// registered are the claims that describe the token rather than the user;
// WithClaims never copies them.
var registered = map[string]bool{"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true,
	"iat": true, "jti": true, "azp": true, "nonce": true, "at_hash": true, "c_hash": true,
	"auth_time": true, "sid": true, "scope": true, "scp": true, "client_id": true, "acr": true, "amr": true, "typ": true}

// WithClaims returns a copy of id whose Claims also hold the user claims of
// extra that id lacks (a browser session adds its id_token's email, name or
// groups to an access token that carries none). Claims of id always win.
func (id *Identity) WithClaims(extra map[string]any) *Identity {
	if len(extra) == 0 {
		return id
	}
	cp := *id
	cp.Claims = make(map[string]any, len(id.Claims)+len(extra))
	for k, v := range extra {
		if !registered[k] {
			cp.Claims[k] = v
		}
	}
	for k, v := range id.Claims {
		cp.Claims[k] = v
	}
	return &cp
}

// Claim returns a claim by exact name, else by dotted path into nested
// objects ("realm_access.roles"). A name containing dots that exists as is
// wins over the path.
func (id *Identity) Claim(name string) (any, bool) {
	if v, ok := id.Claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = id.Claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// ClaimString renders a claim for an HTTP header: strings as they are,
// numbers and booleans in JSON form, arrays of those joined with commas.
// Objects, nulls and empty arrays give ok == false.
func (id *Identity) ClaimString(name string) (string, bool) {
	v, ok := id.Claim(name)
	if !ok {
		return "", false
	}
	if arr, isArr := v.([]any); isArr {
		parts := make([]string, 0, len(arr))
		for _, e := range arr {
			if s, ok := scalarString(e); ok {
				parts = append(parts, s)
			}
		}
		if len(parts) == 0 {
			return "", false
		}
		return strings.Join(parts, ","), true
	}
	return scalarString(v)
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// HasScope reports whether s was granted.
func (id *Identity) HasScope(s string) bool {
	for _, g := range id.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

// claimMatches reports whether the claim has one of want: a scalar equals
// one, or an array contains one.
func (id *Identity) claimMatches(name string, want []string) bool {
	v, ok := id.Claim(name)
	if !ok {
		return false
	}
	if arr, isArr := v.([]any); isArr {
		for _, e := range arr {
			if s, ok := scalarString(e); ok && contains(want, s) {
				return true
			}
		}
		return false
	}
	s, ok := scalarString(v)
	return ok && contains(want, s)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
