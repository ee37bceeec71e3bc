package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/jwks"
)

// Statuses of a [Check].
const (
	Pass = "PASS"
	Fail = "FAIL"
	Skip = "SKIP"
)

// ErrNotChecked may be wrapped by an error of [Issuer.Revoked] to say that
// the answer is not known where the check runs (say, a command-line tool
// that does not hold the running server's revocation list).
// [Authenticator.Explain] then reports the revocation check as skipped and
// judges the rest of the token; [Authenticator.Verify] treats it like any
// other error of Revoked, as a technical failure.
var ErrNotChecked = errors.New("authn: not checked here")

// Check is one step of token verification as [Authenticator.Explain]
// reports it.
type Check struct {
	// Name names the check: format, header, issuer, algorithm, typ, key,
	// signature, exp, nbf, iat, sub, revocation, aud, scope, claims or
	// "claim NAME".
	Name string
	// Status is [Pass], [Fail] or [Skip].
	Status string
	// Detail says why, in a few words. It never contains the token; values
	// read from the token are shortened and quoted when they hold anything
	// but printable characters.
	Detail string
	// Unverified is set when the check read a payload whose signature was
	// not verified: the gateway would have stopped before it.
	Unverified bool
}

// Explanation is the outcome of [Authenticator.Explain].
type Explanation struct {
	// Checks are every check, in the order the gateway runs them.
	Checks []Check
	// Err is what the gateway's own verification and authorization
	// returned: nil when it accepts the token, an *[Error] for a bad token,
	// or an error satisfying [IsUnavailable] when no verdict was possible.
	Err error
	// Identity is the verified identity; nil unless Err is nil.
	Identity *Identity
}

// Allowed reports whether the gateway accepts the token for the policy.
func (e *Explanation) Allowed() bool { return e.Err == nil }

// Status is the HTTP status the gateway answers, or 0 when it accepts the
// token and forwards the request.
func (e *Explanation) Status() int {
	var ae *Error
	switch {
	case e.Err == nil:
		return 0
	case errors.As(e.Err, &ae):
		return ae.Status
	}
	return http.StatusServiceUnavailable
}

// Result says in one sentence what the gateway does with the token.
func (e *Explanation) Result() string {
	var ae *Error
	switch {
	case e.Err == nil:
		return "the gateway accepts the token"
	case errors.As(e.Err, &ae):
		code := ae.Code
		if code == "" {
			code = ae.Reason
		}
		return fmt.Sprintf("the gateway answers %d %s (%s)", ae.Status, code, ae.Description)
	}
	return fmt.Sprintf("the gateway answers %d: no verdict is possible (%v)", http.StatusServiceUnavailable, e.Err)
}

// Explain judges token against p as the gateway would and reports every
// check, passed, failed or skipped, and why. The verdict (Err, Identity) is
// that of [Authenticator.Verify] and [Authenticator.Authorize] themselves;
// the checks are worked out alongside with the same helpers. After a failed
// signature the payload is still read, unverified, so that every check is
// shown; such checks are marked [Check.Unverified].
//
// Explain may fetch the issuer's keys, as Verify does. It is meant for
// diagnostics: it does more work than Verify and is not rate limited.
func (a *Authenticator) Explain(ctx context.Context, token string, p *Policy) *Explanation {
	if p == nil {
		p = &Policy{}
	}
	b := a.skippingUnchecked()
	e := &Explanation{}
	id, err := b.Verify(ctx, token)
	if err == nil {
		err = b.Authorize(id, p)
	}
	if err == nil {
		e.Identity = id
	}
	e.Err = err
	x := &explainer{a: a, ctx: ctx, p: p, now: a.now()}
	x.run(token)
	e.Checks = x.checks
	if err != nil && !slices.ContainsFunc(e.Checks, func(c Check) bool { return c.Status == Fail }) {
		// Every refusal should have its check above; never show a refused
		// token as all clear.
		desc := err.Error()
		var ae *Error
		if errors.As(err, &ae) {
			desc = ae.Description
		}
		e.Checks = append(e.Checks, Check{Name: "verify", Status: Fail, Detail: desc})
	}
	return e
}

// skippingUnchecked returns a copy of a whose issuers' revocation lists
// answer "not revoked" where their real answer is [ErrNotChecked].
func (a *Authenticator) skippingUnchecked() *Authenticator {
	b := *a
	b.issuers = make(map[string]*Issuer, len(a.issuers))
	for name, iss := range a.issuers {
		c := *iss
		if orig := iss.Revoked; orig != nil {
			c.Revoked = func(ctx context.Context, jti string) (bool, error) {
				revoked, err := orig(ctx, jti)
				if errors.Is(err, ErrNotChecked) {
					return false, nil
				}
				return revoked, err
			}
		}
		b.issuers[name] = &c
	}
	return &b
}

// explainer works out the checks of one token.
type explainer struct {
	a   *Authenticator
	ctx context.Context
	p   *Policy
	now time.Time

	checks     []Check
	unverified bool // the signature was not verified: claims are hearsay

	jws    *jws // the token as the gateway decodes it
	claims map[string]any
	alg    string
	kid    string
	iss    *Issuer
	keys   []jwks.Key // verification keys that fit the token's alg
	secret []byte     // or the issuer's HMAC secret
}

func (x *explainer) add(name, status, format string, args ...any) {
	x.checks = append(x.checks, Check{
		Name: name, Status: status, Detail: fmt.Sprintf(format, args...),
		Unverified: x.unverified && status != Skip,
	})
}

// skip marks the named checks as skipped for one reason.
func (x *explainer) skip(why string, names ...string) {
	for _, n := range names {
		x.checks = append(x.checks, Check{Name: n, Status: Skip, Detail: why})
	}
}

// run adds every check, in the order the gateway runs them.
func (x *explainer) run(token string) {
	all := []string{"header", "issuer", "algorithm", "typ", "key", "signature"}
	if !x.format(token) {
		x.skip("the token could not be decoded", all...)
		x.skip("the token could not be decoded", x.claimCheckNames()...)
		return
	}
	x.header()
	x.issuer()
	x.algorithm()
	x.typ()
	x.key()
	x.signature()
	x.times()
	x.subject()
	x.revocation()
	x.audience()
	x.scope()
	x.requiredClaims()
}

func (x *explainer) claimCheckNames() []string {
	names := []string{"exp", "nbf", "iat", "sub", "revocation", "aud", "scope"}
	if len(x.p.Claims) == 0 {
		return append(names, "claims")
	}
	for _, n := range sortedKeys(x.p.Claims) {
		names = append(names, "claim "+n)
	}
	return names
}

// format checks the size and the compact serialisation and decodes the
// header and payload with the gateway's own parser, signature unchecked.
func (x *explainer) format(token string) bool {
	if len(token) > x.a.maxLen {
		x.add("format", Fail, "token is %d bytes, over the limit of %d", len(token), x.a.maxLen)
		return false
	}
	switch n := strings.Count(token, ".") + 1; n {
	case 3:
	case 5:
		x.add("format", Fail, "5 segments: an encrypted token (JWE), which the gateway does not accept")
		return false
	default:
		x.add("format", Fail, "%d segment(s), want 3 (header.payload.signature)", n)
		return false
	}
	t, err := splitJWS(token, nil)
	if err != nil {
		x.add("format", Fail, "%s", malformedDetail(err))
		return false
	}
	x.jws, x.claims = t, t.claims
	// The signature is decoded last, as the gateway does: when only it is
	// broken, the header and payload can still be shown.
	if _, err := t.signature(nil); err != nil {
		x.add("format", Fail, "the signature is not base64url")
	} else {
		x.add("format", Pass, "compact JWS, 3 segments, %d bytes", len(token))
	}
	return true
}

// malformedDetail names, from splitJWS's typed error, what could not be
// decoded, without quoting any of the token.
func malformedDetail(err error) string {
	var je *jwsError
	if !errors.As(err, &je) {
		return "the token is malformed"
	}
	part := "the " + je.part
	switch {
	case errors.Is(err, errNotBase64):
		return part + " is not base64url"
	case errors.Is(err, errDuplicateClaim) && je.part == "payload":
		return "the payload names a claim twice"
	case errors.Is(err, errDuplicateClaim):
		return "the header names a member twice"
	case errors.Is(err, errNestTooDeep):
		return part + " nests too deeply"
	case je.part == "header":
		return "the header is not a JSON object"
	}
	return "the payload is not a valid JSON object"
}

func (x *explainer) header() {
	h := x.jws.header
	raw, ok := h["alg"]
	alg, isStr := raw.(string)
	switch {
	case !ok:
		x.add("header", Fail, "alg is missing")
		return
	case !isStr:
		x.add("header", Fail, "alg is not a string")
		return
	}
	x.alg = alg
	desc := "alg " + show(alg)
	if raw, ok := h["kid"]; ok {
		kid, isStr := raw.(string)
		if !isStr {
			x.add("header", Fail, "%s, kid is not a string", desc)
			return
		}
		x.kid = kid
		desc += ", kid " + show(kid)
	} else {
		desc += ", no kid"
	}
	if typ, ok := h["typ"].(string); ok {
		desc += ", typ " + show(typ)
	}
	if _, ok := h["crit"]; ok {
		// RFC 7515 §4.1.11: the gateway understands no extension.
		x.add("header", Fail, "%s, crit set: the gateway understands no critical extension", desc)
		return
	}
	for _, name := range [...]string{"jku", "jwk", "x5u", "x5c"} {
		if _, ok := h[name]; ok {
			desc += ", " + name + " ignored (keys come from configuration only)"
		}
	}
	x.add("header", Pass, "%s", desc)
}

func (x *explainer) issuer() {
	raw, ok := x.claims["iss"]
	name, isStr := raw.(string)
	switch {
	case !ok:
		x.add("issuer", Fail, "iss is missing")
	case !isStr:
		x.add("issuer", Fail, "iss is not a string")
	case x.a.issuers[name] == nil:
		x.add("issuer", Fail, "iss %s is not a configured issuer (configured: %s)", show(name), showList(sortedKeys(x.a.issuers)))
	default:
		x.iss = x.a.issuers[name]
		x.add("issuer", Pass, "iss %s is configured", show(name))
	}
}

func (x *explainer) algorithm() {
	alg := x.alg
	switch {
	case alg == "":
		x.skip("no alg in the header", "algorithm")
	case alg == "none":
		x.add("algorithm", Fail, "alg none (an unsigned token) is never accepted")
	case supportedAlgs[alg] == "" || jwt.GetSigningMethod(alg) == nil:
		x.add("algorithm", Fail, "%s is not an algorithm the gateway verifies", show(alg))
	case !x.a.allowAlg[alg]:
		x.add("algorithm", Fail, "%s is in no issuer's allow-list", alg)
	case x.iss == nil:
		x.skip("no trusted issuer to check "+alg+" against", "algorithm")
	case !contains(x.iss.Algorithms, alg):
		x.add("algorithm", Fail, "%s is not in the issuer's allow-list %v", alg, x.iss.Algorithms)
	default:
		x.add("algorithm", Pass, "%s is in the issuer's allow-list %v", alg, x.iss.Algorithms)
	}
}

func (x *explainer) typ() {
	switch {
	case x.iss == nil:
		x.skip("no trusted issuer", "typ")
	case x.iss.Typ == "":
		x.skip("the issuer requires none", "typ")
	case typMatches(x.jws.header["typ"], x.iss.Typ):
		x.add("typ", Pass, "%s matches the required %s", show(x.jws.header["typ"].(string)), x.iss.Typ)
	default:
		have := "missing"
		if s, ok := x.jws.header["typ"].(string); ok {
			have = show(s)
		}
		x.add("typ", Fail, "typ %s, the issuer requires %s", have, x.iss.Typ)
	}
}

// key chooses the verification keys as the gateway's key function does.
func (x *explainer) key() {
	fam := supportedAlgs[x.alg]
	switch {
	case x.iss == nil:
		x.skip("no trusted issuer", "key")
		return
	case fam == "" || x.alg == "none" || jwt.GetSigningMethod(x.alg) == nil:
		x.skip("no usable algorithm", "key")
		return
	case fam == "HMAC":
		if len(x.iss.HMACSecret) == 0 {
			x.add("key", Fail, "the issuer has no HMAC secret")
			return
		}
		x.secret = x.iss.HMACSecret
		x.add("key", Pass, "the issuer's configured HMAC secret (never a key from a key set)")
		return
	case x.iss.Keys == nil:
		x.add("key", Fail, "the issuer has no key set")
		return
	}
	which := "kid " + show(x.kid)
	if x.kid == "" {
		which = "no kid: any key"
	}
	keys, err := x.iss.Keys.Keys(x.ctx, x.kid)
	switch {
	case errors.Is(err, jwks.ErrNotLoaded), err != nil && x.ctx.Err() != nil:
		x.add("key", Fail, "the issuer's keys could not be loaded (%v); the gateway answers 503", err)
		return
	case err != nil:
		x.add("key", Fail, "%s not found in the issuer's key set (%s)", which, x.kidList())
		return
	}
	var fit, unfit []string
	for _, k := range keys {
		if (k.Algorithm == "" || k.Algorithm == x.alg) && keyFits(x.alg, k.Public) {
			x.keys = append(x.keys, k)
			fit = append(fit, describeKey(k))
		} else {
			unfit = append(unfit, describeKey(k))
		}
	}
	if len(x.keys) == 0 {
		x.add("key", Fail, "%s found, but no key fits %s: %s", which, x.alg, strings.Join(unfit, ", "))
		return
	}
	x.add("key", Pass, "%s found in the issuer's key set (%s)", which, strings.Join(fit, ", "))
}

// kidList lists the key IDs the issuer's key set has, when they are known
// without another fetch.
func (x *explainer) kidList() string {
	all, err := x.iss.Keys.Keys(x.ctx, "")
	if err != nil || len(all) == 0 {
		return "it has no keys"
	}
	kids := make([]string, 0, len(all))
	for _, k := range all {
		kids = append(kids, show(k.ID))
	}
	return "kids: " + strings.Join(kids, " ")
}

// describeKey says what a key is: "EC P-256", "RSA 2048", "OKP Ed25519",
// with its JWK alg when it has one.
func describeKey(k jwks.Key) string {
	d := keyType(k.Public)
	if k.Algorithm != "" {
		d += " " + k.Algorithm
	}
	return d
}

// keyType names a public key's type and size or curve.
func keyType(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "OKP Ed25519"
	}
	return "unknown key type"
}

func (x *explainer) signature() {
	if len(x.keys) == 0 && x.secret == nil {
		x.skip("no key to check it with", "signature")
		x.unverified = true
		return
	}
	sig, err := x.jws.signature(nil)
	if err != nil {
		x.add("signature", Fail, "not base64url: the gateway stops here; the checks below read the unverified payload")
		x.unverified = true
		return
	}
	// The gateway's own verification, key by key.
	x.jws.alg = x.alg
	if verifySignature(x.jws, sig, x.keys, x.secret) {
		x.add("signature", Pass, "valid")
		return
	}
	x.add("signature", Fail, "invalid: the gateway stops here; the checks below read the unverified payload")
	x.unverified = true
}

// times checks exp, nbf and iat as verifyClaims does.
func (x *explainer) times() {
	var leeway time.Duration
	lw := "leeway 0s (no trusted issuer)"
	if x.iss != nil {
		leeway = x.iss.Leeway
		lw = "leeway " + shortDuration(leeway)
	}
	exp, ok, err := numericDate(x.claims, "exp")
	switch {
	case err != nil:
		x.add("exp", Fail, "%v", err)
	case !ok:
		x.add("exp", Fail, "not set: the gateway requires exp")
	case x.now.After(exp.Add(leeway)):
		x.add("exp", Fail, "expired %s, %s", x.when(exp), lw)
	default:
		x.add("exp", Pass, "expires %s, %s", x.when(exp), lw)
	}
	nbf, ok, err := numericDate(x.claims, "nbf")
	switch {
	case err != nil:
		x.add("nbf", Fail, "%v", err)
	case !ok:
		x.skip("not set", "nbf")
	case x.now.Add(leeway).Before(nbf):
		x.add("nbf", Fail, "not valid before %s, %s", x.when(nbf), lw)
	default:
		x.add("nbf", Pass, "valid since %s", x.when(nbf))
	}
	iat, ok, err := numericDate(x.claims, "iat")
	switch {
	case err != nil:
		x.add("iat", Fail, "%v", err)
	case !ok:
		x.skip("not set", "iat")
	case x.now.Add(leeway).Before(iat):
		x.add("iat", Fail, "issued in the future, %s, %s", x.when(iat), lw)
	default:
		x.add("iat", Pass, "%s", x.when(iat))
	}
}

// when renders t with its distance from now: "2026-11-24T12:15:00Z (in 14m)".
func (x *explainer) when(t time.Time) string {
	d := t.Sub(x.now)
	rel := "now"
	switch {
	case d >= time.Second:
		rel = "in " + shortDuration(d)
	case d <= -time.Second:
		rel = shortDuration(-d) + " ago"
	}
	return t.UTC().Format(time.RFC3339) + " (" + rel + ")"
}

// shortDuration renders d without zero units: seconds under an hour,
// minutes above: 30s, 14m, 14m5s, 1h, 25h3m.
func shortDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
