package attack_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/testidp"
	"github.com/portcullis-dev/portcullis/jwks"
)

// tokenCase is one forged or malformed token and the answer it must get.
type tokenCase struct {
	name   string
	path   string // default "/"
	token  string
	status int    // default 401
	code   string // default invalid_token
	desc   string // substring of error_description, when it matters
}

func runTokenCases(t *testing.T, e *tokenEnv, cases []tokenCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, status, code := c.path, c.status, c.code
			if path == "" {
				path = "/"
			}
			if status == 0 {
				status = 401
			}
			if code == "" {
				code = "invalid_token"
			}
			before := e.up.count()
			start := time.Now()
			res, body := e.get(path, c.token)
			if d := time.Since(start); d > time.Second {
				t.Errorf("rejection took %v, want under 1s", d)
			}
			wa := expectDenied(t, res, body, status, code, c.token)
			if c.desc != "" && !strings.Contains(wa, c.desc) {
				t.Errorf("WWW-Authenticate %q does not name %q", wa, c.desc)
			}
			if n := e.up.count(); n != before {
				t.Errorf("a rejected request reached the upstream")
			}
		})
	}
}

// unsigned builds header.payload. with the given alg header value (any
// JSON) and an empty signature, as in the alg=none attacks.
func (e *tokenEnv) unsigned(alg any, sig string) string {
	h := map[string]any{"typ": "JWT", "kid": "k-ES256"}
	if alg != nil {
		h["alg"] = alg
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(e.claims("mallory"))
	return b64(string(hb)) + "." + b64(string(cb)) + "." + sig
}

func TestAlgNone(t *testing.T) {
	e := newTokenEnv(t)
	var cases []tokenCase
	for _, alg := range []string{"none", "None", "NONE", "nOnE", "NoNe", "nonE", "none ", " none", "none\u0000", ""} {
		cases = append(cases, tokenCase{name: "alg " + strings.ToValidUTF8(alg, "?"), token: e.unsigned(alg, ""), desc: "algorithm"})
	}
	cases = append(cases,
		tokenCase{name: "alg none with a signature", token: e.unsigned("none", b64("sig")), desc: "algorithm"},
		tokenCase{name: "alg none with a real ES256 signature", token: func() string {
			good := e.mint("ES256", e.claims("mallory"), nil)
			parts := strings.Split(e.unsigned("none", ""), ".")
			return parts[0] + "." + parts[1] + "." + strings.Split(good, ".")[2]
		}(), desc: "algorithm"},
		tokenCase{name: "alg missing", token: e.unsigned(nil, ""), desc: "algorithm"},
		tokenCase{name: "alg null", token: e.unsigned(json.RawMessage("null"), ""), desc: "algorithm"},
		tokenCase{name: "alg array", token: e.unsigned([]string{"none"}, ""), desc: "algorithm"},
		tokenCase{name: "alg number", token: e.unsigned(0, ""), desc: "algorithm"},
		tokenCase{name: "alg none on the admin route", path: "/admin", token: e.unsigned("none", ""), desc: "algorithm"},
		tokenCase{name: "alg none on the HMAC issuer's route", path: "/legacy", token: e.unsigned("none", ""), desc: "algorithm"},
	)
	runTokenCases(t, e, cases)
}

func TestHMACWithPublicKey(t *testing.T) {
	e := newTokenEnv(t)
	rsaPub := e.keys["RS256"].Public().(*rsa.PublicKey)
	ecPub := e.keys["ES256"].Public().(*ecdsa.PublicKey)
	edPub := e.keys["EdDSA"].Public().(ed25519.PublicKey)
	pkix1, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pkcs1 := x509.MarshalPKCS1PublicKey(rsaPub)
	ecDER, _ := x509.MarshalPKIXPublicKey(ecPub)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	// The JWKS exactly as the issuer publishes it, and one key of it.
	set, err := jwks.Encode([]jwks.Key{{ID: "k-RS256", Algorithm: "RS256", Public: rsaPub}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(set, &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("jwks: %v", err)
	}
	hmacWith := func(m jwt.SigningMethod, kid string, secret []byte, iss string) string {
		c := e.claims("mallory")
		if iss != "" {
			c["iss"] = iss
		}
		tok := jwt.NewWithClaims(m, jwt.MapClaims(c))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	keys := []struct {
		name   string
		kid    string
		secret []byte
	}{
		{"RSA PKIX PEM", "k-RS256", pemOf("PUBLIC KEY", pkix1)},
		{"RSA PKIX PEM without newline", "k-RS256", []byte(strings.TrimSpace(string(pemOf("PUBLIC KEY", pkix1))))},
		{"RSA PKCS1 PEM", "k-RS256", pemOf("RSA PUBLIC KEY", pkcs1)},
		{"RSA PKIX DER", "k-RS256", pkix1},
		{"RSA PKCS1 DER", "k-RS256", pkcs1},
		{"RSA modulus", "k-RS256", rsaPub.N.Bytes()},
		{"RSA JWK", "k-RS256", doc.Keys[0]},
		{"RSA JWKS document", "k-RS256", set},
		{"EC PKIX PEM", "k-ES256", pemOf("PUBLIC KEY", ecDER)},
		{"EC PKIX DER", "k-ES256", ecDER},
		{"Ed25519 PEM", "k-EdDSA", pemOf("PUBLIC KEY", edDER)},
		{"Ed25519 raw", "k-EdDSA", edPub},
	}
	var cases []tokenCase
	for _, k := range keys {
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS512} {
			cases = append(cases, tokenCase{name: m.Alg() + " with " + k.name, token: hmacWith(m, k.kid, k.secret, ""), desc: "algorithm"})
		}
	}
	cases = append(cases,
		tokenCase{name: "HS256 with the legacy secret claiming issuer A", token: hmacWith(jwt.SigningMethodHS256, "k-RS256", []byte(legacySecret), ""), desc: "algorithm"},
		tokenCase{name: "HS256 with a public key claiming the legacy issuer", path: "/legacy", token: hmacWith(jwt.SigningMethodHS256, "k-RS256", pemOf("PUBLIC KEY", pkix1), "https://legacy.example"), desc: "signature"},
		tokenCase{name: "HS384 with the legacy secret (not in its allow-list)", path: "/legacy", token: hmacWith(jwt.SigningMethodHS384, "", []byte(legacySecret), "https://legacy.example"), desc: "algorithm"},
	)
	runTokenCases(t, e, cases)
}

func TestAlgorithmNotAllowed(t *testing.T) {
	e := newTokenEnv(t)
	withAlg := func(k *testidp.Key, alg string, claims map[string]any) string {
		return testidp.Mint(t, &testidp.Key{ID: k.ID, Alg: alg, Private: k.Private}, claims, nil)
	}
	rsa := e.keys["RS256"]
	bClaims := e.claimsFor(e.b, "mallory")
	es384 := testidp.NewKey(t, "ES384", "k-ES256")
	es512 := testidp.NewKey(t, "ES512", "k-ES256")
	runTokenCases(t, e, []tokenCase{
		{name: "RS384 with A's RSA key", token: withAlg(rsa, "RS384", e.claims("mallory")), desc: "algorithm"},
		{name: "RS512 with A's RSA key", token: withAlg(rsa, "RS512", e.claims("mallory")), desc: "algorithm"},
		{name: "PS384 with A's RSA key", token: withAlg(rsa, "PS384", e.claims("mallory")), desc: "algorithm"},
		{name: "PS512 with A's RSA key", token: withAlg(rsa, "PS512", e.claims("mallory")), desc: "algorithm"},
		{name: "ES384 under A's ES256 kid", token: testidp.Mint(t, es384, e.claims("mallory"), nil), desc: "algorithm"},
		{name: "ES512 under A's ES256 kid", token: testidp.Mint(t, es512, e.claims("mallory"), nil), desc: "algorithm"},
		{name: "RS256 claiming ES256-only issuer B", token: withAlg(rsa, "RS256", bClaims), desc: "algorithm"},
		{name: "EdDSA claiming ES256-only issuer B", token: withAlg(e.keys["EdDSA"], "EdDSA", bClaims), desc: "algorithm"},
		{name: "RS256 header on the ES256 kid", token: testidp.Mint(t, &testidp.Key{ID: "k-ES256", Alg: "RS256", Private: rsa.Private}, e.claims("mallory"), nil), desc: "no key"},
		{name: "PS256 header on the RS256 kid", token: testidp.Mint(t, &testidp.Key{ID: "k-RS256", Alg: "PS256", Private: rsa.Private}, e.claims("mallory"), nil)},
		{name: "ES256 header on the EdDSA kid", token: testidp.Mint(t, &testidp.Key{ID: "k-EdDSA", Alg: "ES256", Private: e.keys["ES256"].Private}, e.claims("mallory"), nil), desc: "no key"},
		{name: "unknown alg name", token: e.unsigned("XS256", b64("sig")), desc: "algorithm"},
	})
}

func TestECDSAZeroSignature(t *testing.T) {
	// CVE-2022-21449 ("psychic signatures"): r = s = 0 verified everything
	// in Java 15-18. Every variant must fail the signature check.
	e := newTokenEnv(t)
	good := e.mint("ES256", e.claims("mallory"), nil)
	input := good[:strings.LastIndexByte(good, '.')]
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	one := big.NewInt(1).FillBytes(make([]byte, 32))
	zero := make([]byte, 32)
	sig := func(b ...[]byte) string {
		return input + "." + base64.RawURLEncoding.EncodeToString(append(append([]byte{}, b[0]...), b[1]...))
	}
	runTokenCases(t, e, []tokenCase{
		{name: "r=s=0 (64 zero bytes)", token: sig(zero, zero), desc: "signature"},
		{name: "r=s=0 ASN.1 DER", token: input + "." + base64.RawURLEncoding.EncodeToString([]byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00}), desc: "signature"},
		{name: "r=s=n (curve order)", token: sig(n, n), desc: "signature"},
		{name: "r=0 s=1", token: sig(zero, one), desc: "signature"},
		{name: "r=1 s=0", token: sig(one, zero), desc: "signature"},
		{name: "65 zero bytes", token: input + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 65)), desc: "signature"},
		{name: "r=s=0 under EdDSA", token: func() string {
			t := e.mint("EdDSA", e.claims("mallory"), nil)
			return t[:strings.LastIndexByte(t, '.')] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		}(), desc: "signature"},
	})
}

func TestSignatureStrippedOrTampered(t *testing.T) {
	e := newTokenEnv(t)
	good := e.mint("ES256", e.claims("mallory"), nil)
	parts := strings.Split(good, ".")
	other := strings.Split(e.mint("ES256", e.claims("alice"), nil), ".")
	rsaTok := strings.Split(e.mint("RS256", e.claims("mallory"), nil), ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	sub, _ := json.Marshal(e.with(func(c map[string]any) { c["sub"] = "admin" }))
	runTokenCases(t, e, []tokenCase{
		{name: "signature stripped, trailing dot kept", token: parts[0] + "." + parts[1] + ".", desc: "signature"},
		{name: "signature truncated by one character", token: good[:len(good)-1]},
		{name: "signature truncated to half", token: parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/2]},
		{name: "signature with a character appended", token: good + "A", desc: "signature"},
		{name: "signature with one character flipped", token: parts[0] + "." + parts[1] + "." + flip(parts[2], 10), desc: "signature"},
		{name: "signature of another token", token: parts[0] + "." + parts[1] + "." + other[2], desc: "signature"},
		{name: "payload of another token", token: parts[0] + "." + other[1] + "." + parts[2], desc: "signature"},
		{name: "payload re-encoded with sub changed", token: parts[0] + "." + b64(string(sub)) + "." + parts[2], desc: "signature"},
		{name: "RS256 signature truncated to 255 bytes", token: rsaTok[0] + "." + rsaTok[1] + "." + rsaTok[2][:340], desc: "signature"},
		{name: "signature in padded base64", token: good + "==", desc: ""},
		{name: "signature in standard base64", token: parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+/", desc: ""},
	})
}

func TestKeyURLHeadersAreNeverFetched(t *testing.T) {
	e := newTokenEnv(t)
	attacker := testidp.NewKey(t, "ES256", "attacker")
	pub := attacker.Public().(*ecdsa.PublicKey)
	point, err := pub.Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		t.Fatal(err)
	}
	jwk := map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "attacker",
		"x": base64.RawURLEncoding.EncodeToString(point[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(point[33:]),
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: e.clk.Now().Add(-time.Hour), NotAfter: e.clk.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, attacker.Private)
	if err != nil {
		t.Fatal(err)
	}
	x5c := []string{base64.StdEncoding.EncodeToString(der)}
	// The attacker signs with its own key under A's kid, and under its own.
	asA := &testidp.Key{ID: "k-ES256", Alg: "ES256", Private: attacker.Private}
	var cases []tokenCase
	for _, h := range []struct {
		name string
		hdr  map[string]any
	}{
		{"jku", map[string]any{"jku": e.trap.URL + "/jwks"}},
		{"x5u", map[string]any{"x5u": e.trap.URL + "/cert.pem"}},
		{"jwk", map[string]any{"jwk": jwk}},
		{"x5c", map[string]any{"x5c": x5c}},
		{"jku and jwk", map[string]any{"jku": e.trap.URL + "/jwks", "jwk": jwk}},
		{"kid as URL", map[string]any{"jku": nil}},
	} {
		hdr := h.hdr
		own := map[string]any{}
		for k, v := range hdr {
			own[k] = v
		}
		if h.name == "kid as URL" {
			own["kid"] = e.trap.URL + "/key"
			hdr = map[string]any{"kid": e.trap.URL + "/key"}
		}
		cases = append(cases,
			tokenCase{name: h.name + " with the attacker's kid", token: testidp.Mint(t, attacker, e.claims("mallory"), own), desc: "kid"},
			tokenCase{name: h.name + " with A's kid", token: testidp.Mint(t, asA, e.claims("mallory"), hdr)},
		)
	}
	runTokenCases(t, e, cases)
	if n := e.trap.hits.Load(); n != 0 {
		t.Errorf("the attacker's server was fetched %d times", n)
	}
}

func TestHostileKid(t *testing.T) {
	e := newTokenEnv(t)
	attacker := testidp.NewKey(t, "ES256", "attacker")
	kid := func(v any) string { return testidp.Mint(t, attacker, e.claims("mallory"), map[string]any{"kid": v}) }
	runTokenCases(t, e, []tokenCase{
		{name: "path traversal", token: kid("../../../../../../etc/passwd"), desc: "kid"},
		{name: "path traversal to /dev/null", token: kid("../../../../../../dev/null"), desc: "kid"},
		{name: "absolute path", token: kid("/proc/self/environ"), desc: "kid"},
		{name: "encoded traversal", token: kid("..%2f..%2f..%2fetc%2fpasswd"), desc: "kid"},
		{name: "SQL quote", token: kid("' OR '1'='1"), desc: "kid"},
		{name: "double quote", token: kid(`k-ES256" OR "1"="1`), desc: "kid"},
		{name: "shell", token: kid("k-ES256; rm -rf / #"), desc: "kid"},
		{name: "CRLF", token: kid("k-ES256\r\nX-Injected: 1"), desc: "kid"},
		{name: "NUL", token: kid("k-ES256\u0000"), desc: "kid"},
		{name: "trailing space", token: kid("k-ES256 "), desc: "kid"},
		{name: "A's kid with the attacker's key", token: kid("k-ES256"), desc: "signature"},
		{name: "object", token: kid(map[string]any{"$ne": ""}), desc: "kid"},
		{name: "array", token: kid([]string{"k-ES256"}), desc: "kid"},
		{name: "number", token: kid(1), desc: "kid"},
		{name: "bool", token: kid(true), desc: "kid"},
		{name: "null", token: kid(json.RawMessage("null")), desc: "kid"},
		{name: "8 KiB", token: kid(strings.Repeat("k", 8<<10)), desc: "kid"},
		{name: "unicode look-alike", token: kid("k-ЕS256"), desc: "kid"},
	})
	if n := e.trap.hits.Load(); n != 0 {
		t.Errorf("the attacker's server was fetched %d times", n)
	}
}

func TestCritAndSerialisations(t *testing.T) {
	e := newTokenEnv(t)
	good := e.mint("ES256", e.claims("mallory"), nil)
	parts := strings.Split(good, ".")
	flattened, _ := json.Marshal(map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]})
	general, _ := json.Marshal(map[string]any{"payload": parts[1], "signatures": []map[string]string{{"protected": parts[0], "signature": parts[2]}}})
	jweHeader := b64(`{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k-RS256"}`)
	runTokenCases(t, e, []tokenCase{
		{name: "crit exp", token: e.mint("ES256", e.claims("mallory"), map[string]any{"crit": []string{"exp"}, "exp": 1}), desc: "critical"},
		{name: "crit b64 false", token: e.mint("ES256", e.claims("mallory"), map[string]any{"crit": []string{"b64"}, "b64": false}), desc: "critical"},
		{name: "crit unknown extension", token: e.mint("ES256", e.claims("mallory"), map[string]any{"crit": []string{"x-portcullis-bypass"}, "x-portcullis-bypass": true}), desc: "critical"},
		{name: "crit empty list", token: e.mint("ES256", e.claims("mallory"), map[string]any{"crit": []string{}}), desc: "critical"},
		{name: "crit as string", token: e.mint("ES256", e.claims("mallory"), map[string]any{"crit": "exp"}), desc: "critical"},
		{name: "JWE compact", token: jweHeader + ".ZW5j." + "aXY." + "Y2lwaGVy." + "dGFn", desc: "encrypted"},
		{name: "JWE with empty key", token: jweHeader + "..aXY.Y2lwaGVy.dGFn", desc: "encrypted"},
		{name: "JWS JSON flattened", token: string(flattened)},
		{name: "JWS JSON general", token: string(general)},
		{name: "JWS JSON base64url-wrapped", token: b64(string(flattened))},
		{name: "unencoded payload", token: parts[0] + "." + `{"sub":"admin"}` + "." + parts[2]},
	})
}

func TestTokenShapes(t *testing.T) {
	e := newTokenEnv(t)
	good := e.mint("ES256", e.claims("mallory"), nil)
	parts := strings.Split(good, ".")
	runTokenCases(t, e, []tokenCase{
		{name: "one part", token: parts[1], desc: "compact JWS"},
		{name: "two parts", token: parts[0] + "." + parts[1], desc: "compact JWS"},
		{name: "four parts", token: good + ".x", desc: "compact JWS"},
		{name: "five parts", token: good + ".x.y", desc: "encrypted"},
		{name: "six parts", token: good + ".x.y.z", desc: "compact JWS"},
		{name: "only dots", token: "..", desc: "malformed"},
		{name: "many dots", token: strings.Repeat(".", 1000), desc: "compact JWS"},
		{name: "header not base64", token: "!!!." + parts[1] + "." + parts[2], desc: "bearer"},
		{name: "header not JSON", token: b64("not json") + "." + parts[1] + "." + parts[2], desc: "malformed"},
		{name: "header JSON array", token: b64(`["alg","ES256"]`) + "." + parts[1] + "." + parts[2], desc: "malformed"},
		{name: "payload JSON array", token: e.signRaw(e.keys["ES256"], `{"alg":"ES256","kid":"k-ES256"}`, `["sub","admin"]`), desc: "malformed"},
		{name: "payload JSON string", token: e.signRaw(e.keys["ES256"], `{"alg":"ES256","kid":"k-ES256"}`, `"admin"`), desc: "malformed"},
		{name: "payload with trailing data", token: e.signRaw(e.keys["ES256"], `{"alg":"ES256","kid":"k-ES256"}`, e.payload("mallory")+`}{"sub":"admin"}`), desc: "malformed"},
		{name: "payload empty", token: e.signRaw(e.keys["ES256"], `{"alg":"ES256","kid":"k-ES256"}`, ``), desc: "malformed"},
	})
}

func TestDuplicateAndCaseVariantClaims(t *testing.T) {
	// Go's encoding/json fills struct fields case-insensitively and keeps
	// the last duplicate; claims must be read exactly, duplicates refused.
	e := newTokenEnv(t)
	k := e.keys["ES256"]
	hdr := `{"alg":"ES256","kid":"k-ES256","typ":"JWT"}`
	without := func(drop ...string) string {
		c := e.claims("mallory")
		for _, d := range drop {
			delete(c, d)
		}
		b, _ := json.Marshal(c)
		return string(b[:len(b)-1])
	}
	p := e.payload("mallory")
	runTokenCases(t, e, []tokenCase{
		{name: "duplicate sub", path: "/admin", token: e.signRaw(k, hdr, p+`,"sub":"admin"}`), desc: "duplicate"},
		{name: "duplicate iss, foreign last", token: e.signRaw(k, hdr, p+`,"iss":"https://evil.example"}`), desc: "duplicate"},
		{name: "duplicate exp, expired last", token: e.signRaw(k, hdr, p+`,"exp":1}`), desc: "duplicate"},
		{name: "duplicate aud", token: e.signRaw(k, hdr, p+`,"aud":"other"}`), desc: "duplicate"},
		{name: "duplicate scope", token: e.signRaw(k, hdr, without("scope")+`,"scope":"write","scope":"read"}`), desc: "duplicate"},
		{name: "duplicate groups", path: "/admin", token: e.signRaw(k, hdr, without("groups")+`,"groups":["dev"],"groups":["admin"]}`), desc: "duplicate"},
		{name: "duplicate via unicode escape", token: e.signRaw(k, hdr, p+`,"\u0073ub":"admin"}`), desc: "duplicate"},
		{name: "duplicate exp via escape", token: e.signRaw(k, hdr, p+`,"\u0065xp":1}`), desc: "duplicate"},
		// Policies read nested claims (realm_access.roles): a first-wins
		// parser would read user where a last-wins one reads admin.
		{name: "nested duplicate", token: e.signRaw(k, hdr, p+`,"realm_access":{"roles":["user"],"roles":["admin"]}}`), desc: "duplicate"},
		{name: "duplicate in an object in a list", token: e.signRaw(k, hdr, p+`,"orgs":[{"id":"a","id":"b"}]}`), desc: "duplicate"},
		{name: "ISS instead of iss", token: e.signRaw(k, hdr, without("iss")+`,"ISS":"`+e.a.Issuer+`"}`), desc: "iss"},
		{name: "Exp instead of exp", token: e.signRaw(k, hdr, without("exp")+`,"Exp":9999999999}`), desc: "exp"},
		{name: "AUD instead of aud", token: e.signRaw(k, hdr, without("aud")+`,"AUD":"api"}`), desc: "aud"},
		{name: "Scope instead of scope", token: e.signRaw(k, hdr, without("scope")+`,"Scope":"read"}`), status: 403, code: "insufficient_scope"},
		{name: "Groups instead of groups", path: "/admin", token: e.signRaw(k, hdr, without("groups")+`,"Groups":["admin"]}`), status: 403, code: "insufficient_scope"},
		{name: "nbf appended after the other claims", token: e.signRaw(k, hdr, p+`,"nbf":`+itoa(e.clk.Now().Add(time.Hour).Unix())+`}`), desc: "not valid yet"},
		{name: "duplicate alg in header, none last", token: func() string {
			in := b64(`{"alg":"ES256","kid":"k-ES256","alg":"none"}`) + "." + b64(p+"}")
			return in + "."
		}()},
	})
}

func itoa(n int64) string { return big.NewInt(n).String() }

func TestTimeClaims(t *testing.T) {
	e := newTokenEnv(t)
	now := e.clk.Now()
	k := e.keys["ES256"]
	hdr := `{"alg":"ES256","kid":"k-ES256"}`
	set := func(name string, v any) string {
		return e.mint("ES256", e.with(func(c map[string]any) { c[name] = v }), nil)
	}
	rawSet := func(name, v string) string {
		c := e.claims("mallory")
		delete(c, name)
		b, _ := json.Marshal(c)
		return e.signRaw(k, hdr, string(b[:len(b)-1])+`,"`+name+`":`+v+`}`)
	}
	del := func(name string) string {
		return e.mint("ES256", e.with(func(c map[string]any) { delete(c, name) }), nil)
	}
	future := now.Add(time.Hour).Unix()
	runTokenCases(t, e, []tokenCase{
		{name: "exp missing", token: del("exp"), desc: "exp"},
		{name: "exp as string", token: set("exp", itoa(future)), desc: "exp"},
		{name: "exp as empty string", token: set("exp", ""), desc: "exp"},
		{name: "exp null", token: rawSet("exp", "null"), desc: "exp"},
		{name: "exp true", token: set("exp", true), desc: "exp"},
		{name: "exp array", token: set("exp", []int64{future}), desc: "exp"},
		{name: "exp object", token: set("exp", map[string]any{"$gt": 0}), desc: "exp"},
		{name: "exp huge", token: set("exp", 1e300), desc: "exp"},
		{name: "exp overflowing float", token: rawSet("exp", "1e400"), desc: "exp"},
		{name: "exp beyond year 9999", token: set("exp", int64(253402300800)), desc: "exp"},
		{name: "exp int64 max", token: rawSet("exp", "9223372036854775807"), desc: "exp"},
		{name: "exp negative", token: set("exp", -1), desc: "exp"},
		{name: "exp zero", token: set("exp", 0), desc: "expired"},
		{name: "exp past beyond leeway", token: set("exp", now.Add(-31*time.Second).Unix()), desc: "expired"},
		{name: "nbf as string", token: set("nbf", itoa(now.Unix())), desc: "nbf"},
		{name: "nbf huge", token: set("nbf", 1e300), desc: "nbf"},
		{name: "nbf negative", token: set("nbf", -1), desc: "nbf"},
		{name: "nbf in the future", token: set("nbf", future), desc: "not valid yet"},
		{name: "iat as string", token: set("iat", itoa(now.Unix())), desc: "iat"},
		{name: "iat huge", token: set("iat", 1e300), desc: "iat"},
		{name: "iat negative", token: set("iat", -5), desc: "iat"},
		{name: "iat in the future", token: set("iat", future), desc: "iat"},
	})
}

func TestAudience(t *testing.T) {
	e := newTokenEnv(t)
	set := func(v any) string { return e.mint("ES256", e.with(func(c map[string]any) { c["aud"] = v }), nil) }
	runTokenCases(t, e, []tokenCase{
		{name: "aud empty string", token: set(""), desc: "aud"},
		{name: "aud empty array", token: set([]string{}), desc: "aud"},
		{name: "aud array of empty string", token: set([]string{""}), desc: "aud"},
		{name: "aud number", token: set(7), desc: "aud"},
		{name: "aud array with number", token: set([]any{7, "api"}), desc: "aud"},
		{name: "aud object", token: set(map[string]any{"api": true}), desc: "aud"},
		{name: "aud null", token: set(nil), desc: "aud"},
		{name: "aud substring", token: set("ap"), desc: "aud"},
		{name: "aud superstring", token: set("apix"), desc: "aud"},
		{name: "aud upper case", token: set("API"), desc: "aud"},
		{name: "aud trailing space", token: set("api "), desc: "aud"},
		{name: "aud space-separated", token: set("other api"), desc: "aud"},
		{name: "aud missing", token: e.mint("ES256", e.with(func(c map[string]any) { delete(c, "aud") }), nil), desc: "aud"},
		{name: "aud of the legacy route on the app route", token: set("legacy-api"), desc: "aud"},
		{name: "aud api on the legacy route", path: "/legacy", token: set("api"), desc: "aud"},
	})
}

func TestTypAndIssuerConfusion(t *testing.T) {
	e := newTokenEnv(t)
	cClaims := func() map[string]any { return e.claimsFor(e.c, "mallory") }
	idToken := cClaims()
	idToken["nonce"] = "n-123"
	idToken["aud"] = "api"
	runTokenCases(t, e, []tokenCase{
		{name: "id_token (typ JWT) as access token", token: e.mintWith(e.cKey, idToken, map[string]any{"typ": "JWT"}), desc: "typ"},
		{name: "typ missing", token: e.mintWith(e.cKey, cClaims(), map[string]any{"typ": nil}), desc: "typ"},
		{name: "typ JOSE", token: e.mintWith(e.cKey, cClaims(), map[string]any{"typ": "JOSE"}), desc: "typ"},
		{name: "typ id_token+jwt", token: e.mintWith(e.cKey, cClaims(), map[string]any{"typ": "id_token+jwt"}), desc: "typ"},
		{name: "typ at+jwt with a trailing space", token: e.mintWith(e.cKey, cClaims(), map[string]any{"typ": "at+jwt "}), desc: "typ"},
		{name: "typ as array", token: e.mintWith(e.cKey, cClaims(), map[string]any{"typ": []string{"at+jwt"}}), desc: "typ"},
		{name: "typ prefixed twice", token: e.mintWith(e.cKey, cClaims(), map[string]any{"typ": "application/application/at+jwt"}), desc: "typ"},
		{name: "A's key claiming issuer B under a shared kid", token: e.mint("ES256", e.claimsFor(e.b, "mallory"), nil), desc: "signature"},
		{name: "B's key claiming issuer A under a shared kid", token: e.mintWith(e.bKey, e.claims("mallory"), nil), desc: "signature"},
		{name: "A's key claiming issuer C", token: e.mint("ES256", e.claimsFor(e.c, "mallory"), map[string]any{"typ": "at+jwt"})},
		{name: "C's key claiming issuer A", token: e.mintWith(e.cKey, e.claims("mallory"), nil), desc: "kid"},
		{name: "A's key claiming the legacy issuer", path: "/legacy", token: e.mint("ES256", e.with(func(c map[string]any) {
			c["iss"], c["aud"] = "https://legacy.example", "legacy-api"
		}), nil), desc: "algorithm"},
		{name: "untrusted issuer", token: e.mint("ES256", e.with(func(c map[string]any) { c["iss"] = "https://evil.example" }), nil), desc: "issuer"},
		{name: "issuer with trailing slash", token: e.mint("ES256", e.with(func(c map[string]any) { c["iss"] = e.a.Issuer + "/" }), nil), desc: "issuer"},
		{name: "issuer upper case", token: e.mint("ES256", e.with(func(c map[string]any) { c["iss"] = strings.ToUpper(e.a.Issuer) }), nil), desc: "issuer"},
		{name: "issuer as array", token: e.mint("ES256", e.with(func(c map[string]any) { c["iss"] = []string{e.a.Issuer} }), nil), desc: "iss"},
		{name: "issuer missing", token: e.mint("ES256", e.with(func(c map[string]any) { delete(c, "iss") }), nil), desc: "iss"},
	})
	t.Run("typ at+jwt passes, in any case and with application/", func(t *testing.T) {
		for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt"} {
			res, body := e.get("/", e.mintWith(e.cKey, cClaims(), map[string]any{"typ": typ}))
			if res.StatusCode != 200 {
				t.Errorf("typ %q: %d %s %s", typ, res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
			}
		}
	})
}

func TestHugeTokensAreRejectedFastInBoundedMemory(t *testing.T) {
	e := newTokenEnv(t)
	k := e.keys["ES256"]
	hdr := `{"alg":"ES256","kid":"k-ES256"}`
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	good := e.mint("ES256", e.claims("mallory"), nil)
	cases := []tokenCase{
		{name: "just over 16 KiB", token: good + strings.Repeat("A", 16<<10), desc: "too long"},
		{name: "1 MB of dots", token: strings.Repeat(".", 1<<20), desc: "too long"},
		{name: "1 MB of letters", token: strings.Repeat("a", 1<<20), desc: "too long"},
		{name: "1 MB token with a valid prefix", token: good + "." + strings.Repeat("a", 1<<20), desc: "too long"},
		{name: "2 MB of base64", token: strings.Repeat("eyJh", 1<<19), desc: "too long"},
		{name: "payload nested 5000 deep", token: e.signRaw(k, hdr, e.payload("mallory")+`,"x":`+deep(5000)+`}`), desc: "malformed"},
		{name: "payload nested 33 deep", token: e.signRaw(k, hdr, e.payload("mallory")+`,"x":`+deep(33)+`}`), desc: "malformed"},
		{name: "payload of nested objects", token: e.signRaw(k, hdr, e.payload("mallory")+`,"x":`+strings.Repeat(`{"a":`, 1000)+"1"+strings.Repeat("}", 1000)+`}`), desc: "malformed"},
		{name: "header nested 5000 deep", token: b64(`{"alg":"ES256","kid":"k-ES256","x":`+deep(5000)+`}`) + "." + b64(e.payload("m")+"}") + ".c2ln"},
	}
	// A genuinely signed token with many claims (the duplicate check is
	// quadratic in the worst case) must still be judged fast.
	many := e.signRaw(k, hdr, e.payload("mallory")+func() string {
		var b strings.Builder
		for i := range 900 {
			b.WriteString(`,"k` + itoa(int64(i)) + `":1`)
		}
		return b.String()
	}()+`}`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	runTokenCases(t, e, cases)
	for range 3 {
		for _, c := range cases[:5] {
			e.get("/", c.token)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 64<<20 {
		t.Errorf("heap grew by %d MB over the batch", grew>>20)
	}
	t.Run("payload with 900 claims", func(t *testing.T) {
		start := time.Now()
		res, body := e.get("/", many)
		if time.Since(start) > time.Second {
			t.Errorf("took %v", time.Since(start))
		}
		if res.StatusCode != 200 {
			t.Errorf("a genuinely signed token with many claims: %d %s %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
		}
	})
}
