// Package testidp is a real token issuer for tests: an httptest server with
// OpenID discovery and a JWKS endpoint whose key set can be changed
// mid-test, hit counters, an outage switch, and token minting with real
// RSA, ECDSA and Ed25519 keys.
package testidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/jwks"
)

// Key is a signing key with its kid and algorithm.
type Key struct {
	ID      string
	Alg     string
	Private crypto.Signer
}

// Public returns the public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// NewKey makes a key for alg: RS*/PS* RSA-2048, ES256/384/512 on the
// matching curve, EdDSA Ed25519. RSA keys come from a small pool generated
// once per test binary, since generating them is slow.
func NewKey(t testing.TB, alg, kid string) *Key {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		rsaOnce.Do(func() {
			for range 4 {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				rsaKeys = append(rsaKeys, k)
			}
		})
		priv = rsaKeys[rsaIndex.Add(1)%uint32(len(rsaKeys))]
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("testidp: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Key{ID: kid, Alg: alg, Private: priv}
}

var rsaIndex atomic.Uint32

// Server is an issuer: discovery at /.well-known/openid-configuration and
// keys at /jwks.
type Server struct {
	*httptest.Server
	// Issuer is the issuer identifier, the server's URL.
	Issuer string

	mu       sync.Mutex
	keys     []*Key
	jwksHits atomic.Int64
	discHits atomic.Int64
	down     atomic.Bool
	// Gate, when set before a request, is received from before the JWKS is
	// served, so a test can hold a fetch open.
	gate atomic.Pointer[hold]
	// CacheControl is sent with the JWKS when set.
	cacheControl atomic.Pointer[string]
	noCacheSeen  atomic.Int64
}

// New starts an issuer publishing keys; it is closed when the test ends.
func New(t testing.TB, keys ...*Key) *Server {
	t.Helper()
	s := &Server{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("/jwks", s.jwks)
	s.Server = httptest.NewServer(mux)
	s.Issuer = s.URL
	t.Cleanup(s.Close)
	return s
}

func (s *Server) discovery(w http.ResponseWriter, _ *http.Request) {
	s.discHits.Add(1)
	if s.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":   s.Issuer,
		"jwks_uri": s.URL + "/jwks",
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.jwksHits.Add(1)
	if r.Header.Get("Cache-Control") == "no-cache" {
		s.noCacheSeen.Add(1)
	}
	if h := s.gate.Load(); h != nil {
		h.once.Do(func() { close(h.arrived) })
		<-h.release
	}
	if s.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	pub := make([]jwks.Key, 0, len(s.keys))
	for _, k := range s.keys {
		pub = append(pub, jwks.Key{ID: k.ID, Algorithm: k.Alg, Public: k.Public()})
	}
	s.mu.Unlock()
	body, err := jwks.Encode(pub)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if cc := s.cacheControl.Load(); cc != nil {
		w.Header().Set("Cache-Control", *cc)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(body)
}

// Publish replaces the published key set.
func (s *Server) Publish(keys ...*Key) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// SetDown makes discovery and JWKS answer 503 (true) or work again (false).
func (s *Server) SetDown(down bool) { s.down.Store(down) }

type hold struct {
	once, rel sync.Once
	arrived   chan struct{}
	release   chan struct{}
}

// Hold makes JWKS requests wait until release is called; arrived is closed
// when the first held request reaches the server.
func (s *Server) Hold() (arrived <-chan struct{}, release func()) {
	h := &hold{arrived: make(chan struct{}), release: make(chan struct{})}
	s.gate.Store(h)
	return h.arrived, func() {
		h.rel.Do(func() {
			s.gate.CompareAndSwap(h, nil)
			close(h.release)
		})
	}
}

// SetCacheControl sets the Cache-Control header of JWKS responses.
func (s *Server) SetCacheControl(v string) { s.cacheControl.Store(&v) }

// JWKSHits is the number of JWKS requests served so far.
func (s *Server) JWKSHits() int64 { return s.jwksHits.Load() }

// NoCacheHits is the number of JWKS requests that sent Cache-Control: no-cache.
func (s *Server) NoCacheHits() int64 { return s.noCacheSeen.Load() }

// Claims returns typical access-token claims for sub, valid for an hour
// from now.
func (s *Server) Claims(sub string, now time.Time) map[string]any {
	return map[string]any{
		"iss":   s.Issuer,
		"sub":   sub,
		"aud":   "api",
		"scope": "read write",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"jti":   sub + "-" + now.Format("150405.000000000"),
	}
}

// Mint signs claims with k (kid and alg from k) plus extra header fields.
func Mint(t testing.TB, k *Key, claims map[string]any, header map[string]any) string {
	t.Helper()
	m := jwt.GetSigningMethod(k.Alg)
	if m == nil {
		t.Fatalf("testidp: no signing method %s", k.Alg)
	}
	tok := jwt.NewWithClaims(m, jwt.MapClaims(claims))
	if k.ID != "" {
		tok.Header["kid"] = k.ID
	}
	for h, v := range header {
		if v == nil {
			delete(tok.Header, h)
			continue
		}
		tok.Header[h] = v
	}
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatalf("testidp: sign: %v", err)
	}
	return s
}

// SignInput signs a JWS signing input (header.payload) with k and returns
// the base64url signature, for tokens whose payload is written by hand.
func SignInput(t testing.TB, k *Key, input string) string {
	t.Helper()
	sig, err := jwt.GetSigningMethod(k.Alg).Sign(input, k.Private)
	if err != nil {
		t.Fatalf("testidp: sign: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig)
}
