package authn

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/dpop"
)

// DPoP checks the proofs of DPoP-bound tokens (RFC 9449).
type DPoP struct {
	// Verifier checks proofs and remembers them.
	Verifier *dpop.Verifier
	// URL is the request's URL as the client saw it, the htu its proof
	// must name: the public URL, or the original URL a trusted proxy
	// reports.
	URL func(*http.Request) string
}

// ReasonDPoP is a refusal for DPoP: a bad or missing proof, a bound token
// sent as a bearer token, a bearer token where only bound ones pass.
const ReasonDPoP = "dpop"

// SchemeDPoP is the Error.Scheme of refusals that concern DPoP.
const SchemeDPoP = "DPoP"

// Binding kinds of a token (Identity.Binding).
const (
	BindingNone = ""
	BindingDPoP = "dpop" // cnf.jkt (RFC 9449)
	BindingX5T  = "x5t"  // cnf["x5t#S256"] (RFC 8705)
	// BindingAny, as Policy.RequireBinding, takes either binding.
	BindingAny = "any"
)

// binding reads the token's confirmation claim (RFC 7800 cnf).
func binding(m map[string]any) (kind, value string) {
	cnf, ok := m["cnf"].(map[string]any)
	if !ok {
		return BindingNone, ""
	}
	if j, ok := cnf["jkt"].(string); ok && j != "" {
		return BindingDPoP, j
	}
	if x, ok := cnf["x5t#S256"].(string); ok && x != "" {
		return BindingX5T, x
	}
	return BindingNone, ""
}

func dpopError(code, desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Reason: ReasonDPoP, Description: desc, Scheme: SchemeDPoP}
}

// checkSender checks that a token is presented as its binding says: a
// DPoP-bound token with "Authorization: DPoP" and a valid proof of its key
// for this request, any other token as a bearer token (and not where the
// policy wants DPoP).
func (a *Authenticator) checkSender(r *http.Request, id *Identity, scheme string, p *Policy) error {
	kind, value := id.Binding, id.BindingValue
	if want := p.RequireBinding; want != "" && kind != want && (want != BindingAny || kind == BindingNone) {
		what := map[string]string{BindingDPoP: "DPoP-bound tokens", BindingX5T: "tokens bound to the client certificate",
			BindingAny: "sender-constrained tokens (DPoP or client certificate)"}[want]
		if want == BindingX5T {
			return invalidToken(ReasonDPoP, "this route takes "+what+" only")
		}
		return dpopError(CodeInvalidToken, "this route takes "+what+" only")
	}
	switch {
	case kind == BindingX5T:
		return a.checkCert(r, value, scheme)
	case scheme != SchemeDPoP && kind == BindingDPoP:
		// RFC 9449 §7.1: a DPoP-bound token as a bearer token is refused.
		return dpopError(CodeInvalidToken, "the token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof")
	case scheme != SchemeDPoP:
		return nil
	case a.dpop == nil:
		return dpopError(CodeInvalidToken, "DPoP is not accepted here")
	case kind != BindingDPoP:
		return dpopError(CodeInvalidToken, "the token is not bound to a DPoP key; send it as a bearer token")
	}
	proofs := r.Header.Values("Dpop")
	if len(proofs) != 1 {
		return dpopError(dpop.CodeInvalidProof, "send exactly one DPoP header")
	}
	_, err := a.dpop.Verifier.Verify(r.Context(), proofs[0], dpop.Request{
		Method: r.Method, URL: a.dpop.URL(r), AccessToken: id.Token, JKT: value,
	})
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		e := dpopError(de.Code, de.Description)
		if n := a.dpop.Verifier.Nonces(); n != nil && de.Code == dpop.CodeUseNonce {
			e.Nonce = n.Current()
		}
		return e
	case err != nil:
		return err // the replay cache cannot say: 503
	}
	return nil
}

// checkCert checks a token bound to a client certificate (RFC 8705 §3):
// the request's certificate must be the one whose SHA-256 thumbprint the
// token names.
func (a *Authenticator) checkCert(r *http.Request, x5t, scheme string) error {
	if scheme == SchemeDPoP {
		return dpopError(CodeInvalidToken, "the token is bound to a client certificate, not to a DPoP key; send it as a bearer token")
	}
	if a.cert == nil {
		return invalidToken(ReasonDPoP, "certificate-bound tokens (RFC 8705) are not accepted here: no client certificates are configured")
	}
	got := a.cert(r)
	switch {
	case got == "":
		return invalidToken(ReasonDPoP, "the token is bound to a client certificate and the request has none")
	case subtle.ConstantTimeCompare([]byte(got), []byte(x5t)) != 1:
		return invalidToken(ReasonDPoP, "the token is bound to another client certificate")
	}
	return nil
}

// dpopChallenge is the DPoP challenge of e (RFC 9449 §7.1).
func (e *Error) dpopChallenge(algs []string) string {
	var b strings.Builder
	b.WriteString("DPoP")
	sep := " "
	if e.Code != "" {
		b.WriteString(` error="` + e.Code + `"`)
		sep = ", "
		if e.Description != "" {
			b.WriteString(`, error_description="` + quotable(e.Description) + `"`)
		}
	}
	if len(algs) > 0 {
		b.WriteString(sep + `algs="` + strings.Join(algs, " ") + `"`)
	}
	return b.String()
}

// ExplainDPoP adds the sender-constraint check to e, an explanation of
// token on policy p, as the gateway runs it for a request with method and
// url (absolute) carrying proof in its DPoP header ("" for none; the token
// then counts as sent as a bearer token). The proof is checked by v, whose
// replay cache should be the explainer's own. Nothing is added for an
// unbound token sent without a proof where bearer tokens pass.
func (e *Explanation) ExplainDPoP(ctx context.Context, v *dpop.Verifier, p *Policy, token, proof, method, url string) {
	if e.Err != nil || e.Identity == nil {
		if proof != "" {
			e.Checks = append(e.Checks, Check{Name: "dpop", Status: Skip, Detail: "the token is refused before the proof is checked"})
		}
		return
	}
	fail := func(err *Error) {
		err.DPoPAlgs = v.Algorithms()
		e.Err, e.Identity = err, nil
		e.Checks = append(e.Checks, Check{Name: "dpop", Status: Fail, Detail: err.Description})
	}
	id := e.Identity
	switch {
	case id.Binding == BindingX5T:
		fail(invalidToken(ReasonDPoP, "the token is bound to a client certificate (RFC 8705), which explain cannot present"))
		return
	case proof == "" && id.Binding == BindingDPoP:
		fail(dpopError(CodeInvalidToken, "the token is DPoP-bound (cnf.jkt "+id.BindingValue+"): pass its proof with --dpop, and --method and --url"))
		return
	case proof == "" && p.RequireBinding != "":
		fail(dpopError(CodeInvalidToken, "this route takes DPoP-bound tokens only"))
		return
	case proof == "":
		return
	case id.Binding != BindingDPoP:
		fail(dpopError(CodeInvalidToken, "the token is not bound to a DPoP key; send it as a bearer token"))
		return
	}
	pr, err := v.Verify(ctx, proof, dpop.Request{Method: method, URL: url, AccessToken: token, JKT: id.BindingValue})
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		fail(dpopError(de.Code, de.Description))
	case err != nil:
		fail(&Error{Status: http.StatusServiceUnavailable, Reason: ReasonDPoP, Description: err.Error()})
	default:
		e.Checks = append(e.Checks, Check{Name: "dpop", Status: Pass,
			Detail: "a proof of the token's key " + pr.JKT + " for " + method + " " + url})
	}
}
