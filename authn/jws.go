package authn

import (
	"encoding/base64"
	"errors"
	"strings"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// b64 decodes JWS segments: unpadded base64url, strictly (no stray bits,
// no padding, no line breaks), as golang-jwt's WithStrictDecoding does.
var b64 = base64.RawURLEncoding.Strict()

// jws is a compact JWS taken apart once: each segment decoded in one
// base64 pass, header and claims decoded once into maps. Nothing in it is
// trusted until the signature is checked.
type jws struct {
	header map[string]any
	claims map[string]any
	alg    string
	signed string // header.payload: what the signature covers
	sig    string // the signature segment, still encoded
}

// jwsError says which part of a compact JWS could not be decoded, and why:
// errNotBase64, errDuplicateClaim, errNestTooDeep or another JSON error.
// The gateway and explain both read it, so they always agree.
type jwsError struct {
	part string // "header" or "payload"
	err  error
}

func (e *jwsError) Error() string { return "jws " + e.part + ": " + e.err.Error() }
func (e *jwsError) Unwrap() error { return e.err }

var errNotBase64 = errors.New("not base64url")

// splitJWS splits a token with exactly two dots and decodes its header and
// payload, nothing else: no algorithm check, and the signature is left
// encoded. Its errors are *jwsError.
func splitJWS(token string, buf []byte) (*jws, error) {
	d1 := strings.IndexByte(token, '.')
	d2 := d1 + 1 + strings.IndexByte(token[d1+1:], '.')
	t := &jws{signed: token[:d2], sig: token[d2+1:]}
	h, err := decodeSegment(token[:d1], buf)
	if err != nil {
		return nil, &jwsError{"header", errNotBase64}
	}
	if t.header, err = decodeObject(h); err != nil {
		return nil, &jwsError{"header", err}
	}
	p, err := decodeSegment(token[d1+1:d2], buf)
	if err != nil {
		return nil, &jwsError{"payload", errNotBase64}
	}
	if t.claims, err = decodeObject(p); err != nil {
		return nil, &jwsError{"payload", err}
	}
	return t, nil
}

// parseJWS is splitJWS for the gateway, with its failures as typed
// reasons, in the order golang-jwt's parser fails so reasons stay the
// same: a malformed header or payload, then an algorithm that is missing
// or unknown.
func parseJWS(token string, buf []byte) (*jws, error) {
	t, err := splitJWS(token, buf)
	switch {
	case err != nil && errors.Is(err, errDuplicateClaim) && err.(*jwsError).part == "payload":
		return nil, invalidToken(ReasonMalformed, "duplicate claim")
	case err != nil:
		return nil, invalidToken(ReasonMalformed, "token is malformed")
	}
	alg, ok := t.header["alg"].(string)
	if !ok || jwt.GetSigningMethod(alg) == nil {
		return nil, invalidToken(ReasonAlgorithm, "algorithm not allowed")
	}
	t.alg = alg
	return t, nil
}

// decodeSegment decodes one base64url segment into buf when it fits, so the
// usual token decodes without allocating for its bytes (the maps copy what
// they keep).
func decodeSegment(seg string, buf []byte) ([]byte, error) {
	n := b64.DecodedLen(len(seg))
	if n > cap(buf) {
		buf = make([]byte, n)
	}
	// Decode only reads its source: viewing the string's bytes in place
	// saves a copy of every segment.
	n, err := b64.Decode(buf[:n], unsafe.Slice(unsafe.StringData(seg), len(seg)))
	return buf[:n], err
}

// signature decodes the signature segment.
func (t *jws) signature(buf []byte) ([]byte, error) {
	sig, err := decodeSegment(t.sig, buf)
	if err != nil {
		return nil, invalidToken(ReasonMalformed, "token is malformed")
	}
	return sig, nil
}
