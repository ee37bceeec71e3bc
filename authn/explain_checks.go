package authn

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The checks of a verified payload, and how values read from a token are
// shown on a terminal.

func (x *explainer) subject() {
	sub, err := stringClaim(x.claims, "sub")
	switch {
	case err != nil:
		x.add("sub", Fail, "%v", err)
	case sub == "":
		x.skip("not set", "sub")
	default:
		x.add("sub", Pass, "%s", show(sub))
	}
}

func (x *explainer) revocation() {
	jti, err := stringClaim(x.claims, "jti")
	switch {
	case err != nil:
		x.add("revocation", Fail, "%v", err)
		return
	case x.iss == nil:
		x.skip("no trusted issuer", "revocation")
		return
	case x.iss.Revoked == nil:
		x.skip("the issuer keeps no revocation list", "revocation")
		return
	case jti == "":
		x.add("revocation", Fail, "jti missing: the issuer's tokens need one to be checked for revocation")
		return
	}
	revoked, err := x.iss.Revoked(x.ctx, jti)
	switch {
	case errors.Is(err, ErrNotChecked):
		why := strings.TrimPrefix(err.Error(), ErrNotChecked.Error()+": ")
		x.skip(fmt.Sprintf("jti %s not checked: %s", show(jti), why), "revocation")
	case err != nil:
		x.add("revocation", Fail, "jti %s: the revocation list did not answer (%v); the gateway answers 503", show(jti), err)
	case revoked:
		x.add("revocation", Fail, "jti %s is revoked", show(jti))
	default:
		x.add("revocation", Pass, "jti %s is not revoked", show(jti))
	}
}

func (x *explainer) audience() {
	have, err := audience(x.claims)
	if err != nil {
		x.add("aud", Fail, "%v", err)
		return
	}
	want, whose := x.p.Audiences, "the route's"
	if len(want) == 0 {
		want, whose = nil, "the issuer's"
		if x.iss != nil {
			want = x.iss.Audiences
		}
	}
	switch {
	case len(have) == 0:
		x.add("aud", Fail, "aud missing; %s audiences are %s", whose, showList(want))
	case len(want) == 0:
		x.add("aud", Fail, "%s: %s audiences are none", showList(have), whose)
	case anyIn(have, want):
		for _, h := range have {
			if h != "" && contains(want, h) {
				x.add("aud", Pass, "%s contains %s", showList(have), show(h))
				return
			}
		}
	default:
		x.add("aud", Fail, "%s contains none of %s audiences %s", showList(have), whose, showList(want))
	}
}

func (x *explainer) scope() {
	granted, err := scopes(x.claims)
	if err != nil {
		x.add("scope", Fail, "%v", err)
		return
	}
	if len(x.p.Scopes) == 0 {
		x.skip("the route requires none", "scope")
		return
	}
	id := &Identity{Scopes: granted}
	var missing []string
	for _, s := range x.p.Scopes {
		if !id.HasScope(s) {
			missing = append(missing, s)
		}
	}
	grantedList := "none"
	if len(granted) > 0 {
		grantedList = showWords(granted)
	}
	if len(missing) > 0 {
		x.add("scope", Fail, "missing %s (granted: %s)", strings.Join(missing, " "), grantedList)
		return
	}
	x.add("scope", Pass, "granted %s (requires %s)", grantedList, strings.Join(x.p.Scopes, " "))
}

func (x *explainer) requiredClaims() {
	if len(x.p.Claims) == 0 {
		x.skip("the route requires none", "claims")
		return
	}
	id := &Identity{Claims: x.claims}
	for _, name := range sortedKeys(x.p.Claims) {
		want := x.p.Claims[name]
		v, ok := id.Claim(name)
		matched := id.claimMatches(name, want)
		_, isArr := v.([]any)
		switch {
		case !ok:
			x.add("claim "+name, Fail, "not set; want one of %s", showList(want))
		case matched && isArr:
			x.add("claim "+name, Pass, "%s contains %s", showValue(v), show(firstMatch(v, want)))
		case matched:
			x.add("claim "+name, Pass, "%s is one of %s", showValue(v), showList(want))
		case isArr:
			x.add("claim "+name, Fail, "%s contains none of %s", showValue(v), showList(want))
		default:
			x.add("claim "+name, Fail, "%s is not one of %s", showValue(v), showList(want))
		}
	}
}

// firstMatch returns the first element of the array claim v that is in
// want.
func firstMatch(v any, want []string) string {
	arr, _ := v.([]any)
	for _, e := range arr {
		if s, ok := scalarString(e); ok && contains(want, s) {
			return s
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// maxShown bounds how much of a value read from a token is shown.
const maxShown = 64

// show renders an untrusted string for a terminal: shortened, and quoted
// when it is empty or holds spaces, quotes or anything unprintable.
func show(s string) string {
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	if s == "" || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '"' || r == '[' || r == ']'
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// showList renders a list as [a b c], each element shown, at most 16.
func showList(list []string) string {
	return "[" + showWords(list) + "]"
}

func showWords(list []string) string {
	out := make([]string, 0, min(len(list), 17))
	for i, s := range list {
		if i == 16 {
			out = append(out, fmt.Sprintf("…%d more", len(list)-16))
			break
		}
		out = append(out, show(s))
	}
	return strings.Join(out, " ")
}

// showValue renders a claim value: scalars as strings, arrays as lists,
// anything else by its kind.
func showValue(v any) string {
	if arr, ok := v.([]any); ok {
		parts := make([]string, 0, len(arr))
		for _, e := range arr {
			if s, ok := scalarString(e); ok {
				parts = append(parts, s)
			} else {
				parts = append(parts, kindOf(e))
			}
		}
		return showList(parts)
	}
	if s, ok := scalarString(v); ok {
		return show(s)
	}
	return kindOf(v)
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "(an object)"
	case []any:
		return "(an array)"
	}
	return "(a value)"
}
