package authn

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"
)

// errDuplicateClaim is a name repeated in one object of a token's header
// or payload: refused, because a parser that takes the first and one that
// takes the last would read different tokens (RFC 8725 §3.11, RFC 7519 §4).
var errDuplicateClaim = errors.New("duplicate claim name")

// maxNesting bounds how deep a payload's JSON may nest; a token has no
// business being deeper, and the bound keeps hostile inputs cheap.
const maxNesting = 32

// maxNumericDate is 9999-12-31T23:59:59Z; later dates are refused as garbage.
const maxNumericDate = 253402300799

// numericDate reads an RFC 7519 NumericDate. present is false when the claim
// is absent; an error means it is there but not a sane JSON number.
func numericDate(m map[string]any, name string) (t time.Time, present bool, err error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, errors.New(name + " is not a number")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, errors.New(name + " is out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// stringClaim reads an optional string claim.
func stringClaim(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", errors.New(name + " is not a string")
	}
	return s, nil
}

// audience reads "aud": a string or an array of strings (RFC 7519 §4.1.3).
func audience(m map[string]any) ([]string, error) {
	v, ok := m["aud"]
	if !ok {
		return nil, nil
	}
	switch a := v.(type) {
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("aud is not a string or an array of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("aud is not a string or an array of strings")
}

// scopes reads "scope" (RFC 8693/9068: space-separated string) and "scp"
// (an array, or a space-separated string as some providers send it).
func scopes(m map[string]any) ([]string, error) {
	var out []string
	for _, name := range [...]string{"scope", "scp"} {
		v, ok := m[name]
		if !ok {
			continue
		}
		switch s := v.(type) {
		case string:
			out = append(out, strings.Fields(s)...)
		case []any:
			for _, e := range s {
				str, ok := e.(string)
				if !ok {
					return nil, errors.New(name + " is not a string or an array of strings")
				}
				out = append(out, str)
			}
		default:
			return nil, errors.New(name + " is not a string or an array of strings")
		}
	}
	return out, nil
}
