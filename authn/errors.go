package authn

import (
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/httpsec"
)

// RFC 6750 §3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Failure reasons, used as the "reason" label of metrics and in logs. The set
// is closed so that a metric never grows a label per token.
const (
	ReasonMissing         = "missing"
	ReasonBadRequest      = "bad_request"
	ReasonMalformed       = "malformed"
	ReasonEncrypted       = "encrypted"
	ReasonAlgorithm       = "algorithm"
	ReasonCrit            = "crit"
	ReasonType            = "typ"
	ReasonIssuer          = "issuer"
	ReasonUnknownKey      = "unknown_kid"
	ReasonSignature       = "signature"
	ReasonExpired         = "expired"
	ReasonNotYetValid     = "not_yet_valid"
	ReasonIssuedInFuture  = "issued_in_future"
	ReasonAudience        = "audience"
	ReasonScope           = "scope"
	ReasonClaim           = "claim"
	ReasonKeysUnavailable = "keys_unavailable"
	ReasonRevoked         = "revoked"
	// ReasonRule is a denial by a route's rules, which the proxy
	// evaluates after authentication.
	ReasonRule = "rule"
)

// Error is an authentication or authorization failure of a request: what the
// client is told (status, RFC 6750 code and description) and why, as a
// metric-safe reason. It never contains the token.
type Error struct {
	// Status is 400, 401 or 403.
	Status int
	// Code is the RFC 6750 error code; empty when the request carried no
	// token at all (RFC 6750 §3.1: then no error code is sent).
	Code string
	// Description is a short human-readable text naming the failed check.
	Description string
	// Reason is one of the Reason constants.
	Reason string
	// Scope lists the scopes required, for insufficient_scope.
	Scope string
	// Scheme is SchemeDPoP for a refusal concerning DPoP, answered with a
	// DPoP challenge (RFC 9449 §7.1) besides the Bearer one; "" otherwise.
	Scheme string
	// Nonce, for use_dpop_nonce, goes in the DPoP-Nonce header.
	Nonce string
	// DPoPAlgs are the proof algorithms the DPoP challenge lists.
	DPoPAlgs []string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return "authn: " + e.Description
	}
	return "authn: " + e.Code + ": " + e.Description
}

func invalidToken(reason, desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Reason: reason, Description: desc}
}

func invalidRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Reason: ReasonBadRequest, Description: desc}
}

// errMissing is returned by [Authenticator.Authenticate] for a required route
// when the request carries no token.
var errMissing = &Error{Status: http.StatusUnauthorized, Reason: ReasonMissing, Description: "no token"}

// Challenge returns the RFC 6750 WWW-Authenticate value for e.
func (e *Error) Challenge(realm string) string { return e.ChallengeFor(realm, "") }

// ChallengeFor is Challenge with RFC 9728 §5.1's resource_metadata
// parameter, the URL of the protected resource's metadata, when
// resourceMetadata is not "".
func (e *Error) ChallengeFor(realm, resourceMetadata string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm="`)
	b.WriteString(quotable(realm))
	b.WriteByte('"')
	if resourceMetadata != "" {
		b.WriteString(`, resource_metadata="`)
		b.WriteString(quotable(resourceMetadata))
		b.WriteByte('"')
	}
	if e.Code != "" {
		b.WriteString(`, error="`)
		b.WriteString(e.Code)
		b.WriteByte('"')
		if e.Description != "" {
			b.WriteString(`, error_description="`)
			b.WriteString(quotable(e.Description))
			b.WriteByte('"')
		}
		if e.Scope != "" {
			b.WriteString(`, scope="`)
			b.WriteString(quotable(e.Scope))
			b.WriteByte('"')
		}
	}
	return b.String()
}

// SetChallenges sets the WWW-Authenticate headers of e: the Bearer
// challenge of [Error.ChallengeFor] and, for a refusal that concerns DPoP,
// a DPoP challenge (with the error when it is the proof's, and the
// accepted algorithms) and DPoP-Nonce.
func (e *Error) SetChallenges(h http.Header, realm, resourceMetadata string) {
	if e.Scheme != SchemeDPoP {
		h.Set("WWW-Authenticate", e.ChallengeFor(realm, resourceMetadata))
		return
	}
	// The error is the DPoP challenge's; the Bearer one only says where
	// the resource's metadata is.
	bare := &Error{}
	h.Set("WWW-Authenticate", bare.ChallengeFor(realm, resourceMetadata))
	h.Add("WWW-Authenticate", e.dpopChallenge(e.DPoPAlgs))
	if e.Nonce != "" {
		h.Set("DPoP-Nonce", e.Nonce)
	}
}

// WriteError answers the request with e: its status, a WWW-Authenticate
// challenge for realm and a one-line plain-text body. Nothing else about the
// token is revealed.
func WriteError(w http.ResponseWriter, realm string, e *Error) { WriteErrorFor(w, realm, "", e) }

// WriteErrorFor is WriteError with the resource_metadata parameter of
// [Error.ChallengeFor].
func WriteErrorFor(w http.ResponseWriter, realm, resourceMetadata string, e *Error) {
	h := w.Header()
	e.SetChallenges(h, realm, resourceMetadata)
	httpsec.Set(h, "text/plain; charset=utf-8", httpsec.PlainCSP)
	w.WriteHeader(e.Status)
	msg := e.Description
	if e.Code != "" {
		msg = e.Code + ": " + e.Description
	}
	_, _ = w.Write([]byte(msg + "\n"))
}

// quotable keeps only the characters RFC 6750 §3 allows inside the quoted
// attribute values (%x20-21 / %x23-5B / %x5D-7E).
func quotable(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
