package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/oidcclient"
)

const (
	audience   = "bench"
	cookieName = "_portcullis"
	tokenTTL   = 6 * time.Hour // far beyond any bounded run
)

// signer is one signing key of the bench issuer.
type signer struct {
	method jwt.SigningMethod
	key    crypto.Signer
	kid    string
}

// keys holds the issuer's RSA-2048 and P-256 keys.
type keys struct {
	issuer string
	rs, es signer
}

func newKeys(issuer string) (*keys, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &keys{
		issuer: issuer,
		rs:     signer{jwt.SigningMethodRS256, rk, "bench-rs256"},
		es:     signer{jwt.SigningMethodES256, ek, "bench-es256"},
	}, nil
}

// writeJWKS writes the public key set the JWKS role serves.
func (k *keys) writeJWKS(path string) error {
	doc, err := jwks.Encode([]jwks.Key{
		{ID: k.rs.kid, Algorithm: "RS256", Public: k.rs.key.Public()},
		{ID: k.es.kid, Algorithm: "ES256", Public: k.es.key.Public()},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(path, doc, 0o600)
}

// mint signs a valid access token for subject sub.
func (k *keys) mint(s signer, sub string, now time.Time) (string, error) {
	t := jwt.NewWithClaims(s.method, jwt.MapClaims{
		"iss":   k.issuer,
		"sub":   sub,
		"aud":   audience,
		"iat":   now.Unix(),
		"exp":   now.Add(tokenTTL).Unix(),
		"jti":   sub,
		"scope": "openid profile",
	})
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// writeTokens writes n distinct valid tokens signed by s, one a line, using
// every CPU (no load runs while they are made).
func (k *keys) writeTokens(path string, s signer, n int, prefix string) error {
	now := time.Now()
	toks := make([]string, n)
	errs := make([]error, runtime.NumCPU())
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < n; i += len(errs) {
				toks[i], errs[w] = k.mint(s, prefix+strconv.Itoa(i), now)
				if errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return writeLines(path, toks)
}

// writeInvalid writes n tokens that must all be refused, cycling through
// three kinds: random garbage, and well-formed RS256 and ES256 tokens with
// a random unknown kid (each one can make a gateway refetch the key set)
// and a random signature.
func (k *keys) writeInvalid(path string, n int) error {
	return writeLines(path, k.invalid(n))
}

// invalid returns n tokens that must all be refused, as writeInvalid
// writes them.
func (k *keys) invalid(n int) []string {
	b64 := base64.RawURLEncoding.EncodeToString
	payload := b64(must(json.Marshal(map[string]any{
		"iss": k.issuer, "sub": "mallory", "aud": audience, "exp": time.Now().Add(tokenTTL).Unix(),
	})))
	toks := make([]string, n)
	for i := range toks {
		switch i % 3 {
		case 0:
			junk := make([]byte, 24+i%40)
			_, _ = rand.Read(junk)
			toks[i] = b64(junk[:8]) + "." + b64(junk[8:]) + "." + rand.Text()
		case 1, 2:
			alg, sigLen := "RS256", 256
			if i%3 == 2 {
				alg, sigLen = "ES256", 64
			}
			kid := make([]byte, 8)
			sig := make([]byte, sigLen)
			_, _ = rand.Read(kid)
			_, _ = rand.Read(sig)
			head := fmt.Sprintf(`{"alg":%q,"typ":"JWT","kid":%q}`, alg, hex.EncodeToString(kid))
			toks[i] = b64([]byte(head)) + "." + payload + "." + b64(sig)
		}
	}
	return toks
}

// sessionCookie returns a Cookie header carrying a browser session for tok,
// sealed as portcullis' login does with the configured cookie secret.
func sessionCookie(secret []byte, tok, sub string, now time.Time) (string, error) {
	codec, err := oidcclient.NewCookieCodec(oidcclient.CookieConfig{Secrets: [][]byte{secret}, Secure: false})
	if err != nil {
		return "", err
	}
	s := oidcclient.Session{AccessToken: tok, Subject: sub, Expiry: now.Add(tokenTTL), Started: now}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	rec := httptest.NewRecorder()
	if err := codec.Seal(rec, nil, cookieName, b, 11*time.Hour); err != nil {
		return "", err
	}
	var parts []string
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge > 0 && c.Value != "" {
			parts = append(parts, (&http.Cookie{Name: c.Name, Value: c.Value}).String())
		}
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("bench: session cookie: nothing sealed")
	}
	return strings.Join(parts, "; "), nil
}

func writeLines(path string, lines []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// gatewayConfig is the portcullis configuration under test: one issuer
// whose keys come from the JWKS role, one required route to the upstream,
// forwarding the subject, and a login section so browser sessions work.
// The cookie secret is read from BENCH_COOKIE_SECRET.
func gatewayConfig(listen, admin, issuer, upstream, grpcUpstream string, refetch time.Duration) string {
	h2c, grpcRoute := "", ""
	if grpcUpstream != "" {
		// The gRPC scenarios: cleartext HTTP/2 on the listener, and a
		// route to the h2c upstream.
		h2c = "  h2c: true\n"
		grpcRoute = fmt.Sprintf(`  - name: bench-grpc
    path_prefix: /bench.Echo
    upstream: %q
    auth: required
    forward_headers:
      X-Auth-Request-User: sub
`, "h2c://"+strings.TrimPrefix(grpcUpstream, "http://"))
	}
	return fmt.Sprintf(`# Generated by go run ./bench.
server:
  listen: %q
%sadmin:
  listen: %q
log:
  level: warn
issuers:
  - issuer: %q
    jwks_uri: %q
    audiences: [%s]
    algorithms: [RS256, ES256]
    jwks_refetch_interval: %s
login:
  issuer: %q
  client_id: bench
  cookie:
    name: %s
    secret: "${BENCH_COOKIE_SECRET}"
    secure: false
routes:
%s  - name: bench-rules
    path_prefix: /rules
    upstream: %[11]q
    auth: required
    forward_headers:
      X-Auth-Request-User: sub
    rules:
      - deny: 'request.method == "DELETE"'
      - allow: '"admin" in scopes'
      - allow: 'request.path.startsWith("/rules/") && claims.sub != ""'
  - name: bench
    path_prefix: /
    upstream: %[11]q
    auth: required
    forward_headers:
      X-Auth-Request-User: sub
`, listen, h2c, admin, issuer, issuer+"/jwks", audience, refetch, issuer, cookieName, grpcRoute, upstream)
}

// costs measures the time an RS256 token takes to make with every CPU
// signing, and an RS256 and ES256 signature check on one core: they size
// the token files.
func (k *keys) costs() (signRS, verifyRS, verifyES time.Duration, err error) {
	now := time.Now()
	verify := func(s signer) (time.Duration, error) {
		tok, err := k.mint(s, "probe", now)
		if err != nil {
			return 0, err
		}
		i := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
		if err != nil {
			return 0, err
		}
		const n = 100
		start := time.Now()
		for range n {
			if err := s.method.Verify(tok[:i], sig, s.key.Public()); err != nil {
				return 0, err
			}
		}
		return time.Since(start) / n, nil
	}
	const perCPU = 10
	start := time.Now()
	if err := k.writeTokens(os.DevNull, k.rs, perCPU*runtime.NumCPU(), "probe-"); err != nil {
		return 0, 0, 0, err
	}
	signRS = time.Since(start) / time.Duration(perCPU*runtime.NumCPU())
	if verifyRS, err = verify(k.rs); err != nil {
		return 0, 0, 0, err
	}
	verifyES, err = verify(k.es)
	return signRS, verifyRS, verifyES, err
}

// tokenCount is how many distinct tokens one run of d can use: the fastest
// a gateway could answer them on one core is a proxy path 1.5× quicker
// than the baseline's (which measured base req/s) plus one signature check
// each; 10% is added on top.
func tokenCount(base float64, d, verify time.Duration) int {
	if base <= 0 {
		return 1000
	}
	perRequest := 1/(1.5*base) + verify.Seconds()
	return int(1.1*d.Seconds()/perRequest) + 1
}
