package issuer

import (
	"net/http"
	"net/url"
	"slices"
)

// Resource indicators (RFC 8707). A client names the protected resources
// it wants a token for with one or more "resource" parameters at the
// authorization and token endpoints; the access token's "aud" is then
// those resources and nothing else, so a token obtained for one API is
// refused by every other. Only the resources the configuration protects
// (Config.Resources, [Issuer.SetResources]) are accepted: anything else is invalid_target.

// maxResources bounds the resource parameters of one request.
const maxResources = 8

// errInvalidTarget is RFC 8707 §2's error for a resource the issuer does
// not issue tokens for.
func errInvalidTarget(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_target", desc: desc}
}

// checkResources validates the resource parameters of a request: each an
// absolute URI without fragment (RFC 8707 §2), each one this issuer issues
// tokens for. It returns them deduplicated, in the order given; nil when
// there are none.
func (i *Issuer) checkResources(vals []string) ([]string, *oauthError) {
	if len(vals) == 0 {
		return nil, nil
	}
	if len(vals) > maxResources {
		return nil, errInvalidTarget("too many resource parameters")
	}
	served := *i.resources.Load()
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		u, err := url.Parse(v)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "":
			return nil, errInvalidTarget("resource must be an absolute URI")
		case u.Fragment != "" || u.RawFragment != "" || len(v) > 0 && v[len(v)-1] == '#':
			return nil, errInvalidTarget("resource must not have a fragment")
		case !served[v]:
			return nil, errInvalidTarget("resource " + v + " is not served by this authorization server")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// narrowResources applies the resource parameters of a token request to a
// grant that was authorized for granted (RFC 8707 §2.2): the token is for
// the requested ones, which must all be granted; with none requested it is
// for all granted. A grant authorized without resources may name any the
// issuer serves.
func (i *Issuer) narrowResources(requested []string, granted []string) ([]string, *oauthError) {
	req, oe := i.checkResources(requested)
	switch {
	case oe != nil:
		return nil, oe
	case len(req) == 0:
		return granted, nil
	case len(granted) > 0 && !subset(req, granted):
		return nil, errInvalidTarget("resource was not part of the authorization grant")
	}
	return req, nil
}
