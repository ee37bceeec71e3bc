// Package dpop verifies DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for each request, so that a token bound to that key (cnf.jkt)
// is worth nothing to whoever copies it. The gateway checks proofs beside
// DPoP-bound access tokens; the built-in issuer checks them at its token
// endpoint before it binds a token to the proof's key.
package dpop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// DefaultAlgorithms are the proof algorithms accepted when a Verifier names
// none.
var DefaultAlgorithms = []string{"ES256", "ES384", "RS256", "PS256", "EdDSA"}

// keyFamily is the JWK kty each supported algorithm needs.
var keyFamily = map[string]string{
	"ES256": "EC", "ES384": "EC", "ES512": "EC",
	"RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
	"PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
	"EdDSA": "OKP", "Ed25519": "OKP",
}

// signingMethod is alg's JWS verifier. Ed25519 is the fully-specified name
// of EdDSA over Ed25519 (RFC 9864), which clients such as oauth4webapi
// sign proofs with; the Ed25519 key type check is the OKP family's and
// the signature's own.
func signingMethod(alg string) jwt.SigningMethod {
	if alg == "Ed25519" {
		return jwt.SigningMethodEdDSA
	}
	return jwt.GetSigningMethod(alg)
}

// privateMembers are JWK members only a private key has (RFC 7518 §6).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Error codes of a refused proof (RFC 9449 §7.1, §8).
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
	// CodeInvalidToken: the proof is good but does not fit the token: a
	// key other than the token's, or an ath of another token.
	CodeInvalidToken = "invalid_token"
)

// Error is a refused proof: Code is one of the Code constants, Description
// says why in a line fit for a client.
type Error struct {
	Code, Description string
}

func (e *Error) Error() string { return "dpop: " + e.Code + ": " + e.Description }

func invalid(format string, a ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, a...)}
}

// ReplayCache remembers the proofs seen, so that each is accepted once.
type ReplayCache interface {
	// Seen records key until expiry and reports whether it was recorded
	// already. An error means the cache cannot say; the proof is refused.
	Seen(ctx context.Context, key string, expiry time.Time) (bool, error)
}

// Verifier checks proofs. It is safe for concurrent use.
type Verifier struct {
	algs   []string
	maxAge time.Duration
	leeway time.Duration
	now    func() time.Time
	replay ReplayCache
	nonces *Nonces

	// keys caches parsed jwk headers: a client signs every proof with the
	// same key, so its JSON repeats byte for byte.
	keyMu sync.Mutex
	keys  map[string]publicKey
}

// publicKey is a proof's jwk, parsed.
type publicKey struct {
	raw any    // *ecdsa.PublicKey, *rsa.PublicKey or ed25519.PublicKey
	kty string // its JWK kty
	jkt string // its RFC 7638 thumbprint
}

// maxCachedKeys bounds Verifier.keys; past it the cache starts over.
const maxCachedKeys = 4096

// publicKey parses a proof's jwk header for alg, from the cache when the
// same JSON was seen before.
func (v *Verifier) publicKey(jwkJSON json.RawMessage, alg string) (publicKey, error) {
	v.keyMu.Lock()
	pk, ok := v.keys[string(jwkJSON)]
	v.keyMu.Unlock()
	if !ok {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(jwkJSON, &members); err != nil {
			return pk, invalid("the proof's jwk is not a JSON object")
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return pk, invalid("the proof's jwk holds a private key")
			}
		}
		key, err := jwk.ParseKey(jwkJSON)
		if err != nil {
			return pk, invalid("the proof's jwk is not a public key")
		}
		if err := jwk.Export(key, &pk.raw); err != nil {
			return pk, invalid("the proof's jwk is not a public key")
		}
		thumb, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return pk, invalid("the proof's jwk has no thumbprint")
		}
		pk.kty, pk.jkt = key.KeyType().String(), base64.RawURLEncoding.EncodeToString(thumb)
		v.keyMu.Lock()
		if len(v.keys) >= maxCachedKeys {
			v.keys = map[string]publicKey{}
		}
		v.keys[string(jwkJSON)] = pk
		v.keyMu.Unlock()
	}
	if pk.kty != keyFamily[alg] {
		return pk, invalid("the proof's jwk does not fit alg %s", alg)
	}
	return pk, nil
}

// Config configures a [Verifier].
type Config struct {
	// Algorithms are the accepted proof algorithms; nil means
	// DefaultAlgorithms. Only asymmetric ones exist here.
	Algorithms []string
	// MaxAge bounds how old a proof's iat may be (and, with Leeway, how far
	// in the future); default 60s. A proof's jti is remembered for
	// MaxAge+Leeway.
	MaxAge, Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replay is where seen proofs are kept; required.
	Replay ReplayCache
	// Nonces, when set, requires every proof to carry a current server
	// nonce (RFC 9449 §8); nil requires none.
	Nonces *Nonces
}

// New checks cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{algs: cfg.Algorithms, maxAge: cfg.MaxAge, leeway: cfg.Leeway, now: cfg.Now, replay: cfg.Replay, nonces: cfg.Nonces,
		keys: map[string]publicKey{}}
	if v.algs == nil {
		v.algs = DefaultAlgorithms
	}
	for _, a := range v.algs {
		if _, ok := keyFamily[a]; !ok {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric JWS algorithm", a)
		}
	}
	// EdDSA with the only curve a JWK verifier here takes is Ed25519: the
	// one accepts the other's name too.
	if slices.Contains(v.algs, "EdDSA") && !slices.Contains(v.algs, "Ed25519") {
		v.algs = append(slices.Clone(v.algs), "Ed25519")
	}
	if v.maxAge <= 0 {
		v.maxAge = 60 * time.Second
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.replay == nil {
		return nil, errors.New("dpop: a replay cache is required")
	}
	return v, nil
}

// Algorithms are the accepted algorithms, for the algs parameter of a
// challenge and dpop_signing_alg_values_supported.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// Nonces are the server nonces proofs must carry; nil when none.
func (v *Verifier) Nonces() *Nonces { return v.nonces }

// Request is what a proof must fit.
type Request struct {
	// Method and URL are the request's as the client saw it; URL is
	// absolute, its query and fragment are ignored.
	Method, URL string
	// AccessToken, when set, must be the proof's ath (its SHA-256); at a
	// token endpoint it is "" and a proof with ath is fine.
	AccessToken string
	// JKT, when set, must be the thumbprint of the proof's key: the cnf.jkt
	// of the token presented with it.
	JKT string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's public key,
	// base64url: what cnf.jkt of a token bound to it says.
	JKT      string
	JTI      string
	IssuedAt time.Time
}

// maxProofBytes bounds a proof before it is decoded.
const maxProofBytes = 8 << 10

type header struct {
	Typ string          `json:"typ"`
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
}

type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.Number     `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
	Extra json.RawMessage `json:"-"`
}

// Verify checks a proof against r as RFC 9449 §4.3 lists, and records it
// as seen. Every refusal is an *[Error]; an error of the replay cache is
// returned as it is (the caller answers 503).
func (v *Verifier) Verify(ctx context.Context, proof string, r Request) (*Proof, error) {
	if proof == "" {
		return nil, invalid("the DPoP header is missing")
	}
	if len(proof) > maxProofBytes {
		return nil, invalid("the proof is too large")
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 || parts[2] == "" {
		return nil, invalid("the proof is not a compact JWS")
	}
	var h header
	if err := decodeSegment(parts[0], &h); err != nil {
		return nil, invalid("the proof's header is not base64url JSON")
	}
	switch {
	case h.Typ != "dpop+jwt":
		return nil, invalid("the proof's typ is not dpop+jwt")
	case !slices.Contains(v.algs, h.Alg):
		return nil, invalid("the proof's alg %q is not accepted", h.Alg)
	case len(h.JWK) == 0:
		return nil, invalid("the proof has no jwk header")
	}
	pk, perr := v.publicKey(h.JWK, h.Alg)
	if perr != nil {
		return nil, perr
	}
	raw := pk.raw
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, invalid("the proof's signature is not base64url")
	}
	method := signingMethod(h.Alg)
	if method == nil || method.Verify(parts[0]+"."+parts[1], sig, raw) != nil {
		return nil, invalid("the proof's signature does not verify with its jwk")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, invalid("the proof's claims are not base64url")
	}
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, invalid("the proof's claims are not a JSON object")
	}
	p := &Proof{JKT: pk.jkt, JTI: c.JTI}
	if err := v.checkClaims(&c, r, p); err != nil {
		return nil, err
	}
	if r.JKT != "" && r.JKT != p.JKT {
		return nil, &Error{Code: CodeInvalidToken, Description: "the proof is signed with a key other than the token's"}
	}
	if r.AccessToken != "" {
		sum := sha256.Sum256([]byte(r.AccessToken))
		switch {
		case c.ATH == nil:
			return nil, invalid("the proof has no ath")
		case *c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]):
			return nil, &Error{Code: CodeInvalidToken, Description: "the proof's ath is of another token"}
		}
	}
	if v.nonces != nil {
		switch {
		case c.Nonce == nil:
			return nil, &Error{Code: CodeUseNonce, Description: "the proof needs the server's nonce"}
		case !v.nonces.Valid(*c.Nonce):
			return nil, &Error{Code: CodeUseNonce, Description: "the proof's nonce is not current"}
		}
	}
	// Last: a proof refused for another reason is not spent.
	seen, err := v.replay.Seen(ctx, p.JKT+"."+p.JTI, p.IssuedAt.Add(v.maxAge+v.leeway))
	if err != nil {
		return nil, fmt.Errorf("dpop: replay cache: %w", err)
	}
	if seen {
		return nil, invalid("the proof was used before")
	}
	return p, nil
}

func (v *Verifier) checkClaims(c *claims, r Request, p *Proof) error {
	if c.JTI == "" || len(c.JTI) > 256 {
		return invalid("the proof has no jti")
	}
	if c.HTM != r.Method {
		return invalid("the proof's htm is not the request's method")
	}
	want, err1 := normalURL(r.URL)
	got, err2 := normalURL(c.HTU)
	switch {
	case err2 != nil:
		return invalid("the proof's htu is not an absolute http(s) URL")
	case err1 != nil || got != want:
		return invalid("the proof's htu is not the request's URL")
	}
	iat, err := c.IAT.Int64()
	if err != nil {
		f, ferr := c.IAT.Float64()
		if ferr != nil {
			return invalid("the proof has no iat")
		}
		iat = int64(f)
	}
	p.IssuedAt = time.Unix(iat, 0)
	now := v.now()
	switch {
	case p.IssuedAt.Before(now.Add(-v.maxAge - v.leeway)):
		return invalid("the proof is too old")
	case p.IssuedAt.After(now.Add(v.leeway + 5*time.Second)):
		return invalid("the proof is issued in the future")
	}
	return nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// normalURL is u compared as RFC 9449 §4.3 says: without query and
// fragment, scheme and host in lower case, without a default port, with the
// path's percent-encoding normalised (RFC 3986 §6.2.2) and "" read as "/".
func normalURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "HTTP" && u.Scheme != "HTTPS") || u.Host == "" || u.User != nil {
		return "", errors.New("not an absolute http(s) URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	if p := u.Port(); p != "" && (scheme == "http" && p == "80" || scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	path := (&url.URL{Path: u.Path}).EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint, base64url, of a public
// JWK given as JSON: what cnf.jkt holds.
func Thumbprint(jwkJSON []byte) (string, error) {
	key, err := jwk.ParseKey(jwkJSON)
	if err != nil {
		return "", err
	}
	t, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}
