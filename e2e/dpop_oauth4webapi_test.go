package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/dpoptest"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// DPoP (RFC 9449) with a real client library, npm's oauth4webapi, against
// the built-in issuer and the gateway: it discovers the issuer, gets
// DPoP-bound tokens (client_credentials, and a public client's code +
// refresh with dpop_jkt), follows the server nonces of both, and calls a
// route that requires sender-constrained tokens. Proofs it made are then
// replayed and misused by hand, each refused with the error RFC 9449 §7.1
// gives it.

// oauth4webapiConfig is a gateway whose built-in issuer hands out DPoP
// tokens, with server nonces. The api route also answers on the exact
// host localhost (another origin for the client, so it holds no nonce for
// it yet). %[1]s is the gateway's base URL, %[2]s the upstream, %[3]s
// alice's password hash.
const oauth4webapiConfig = `
server:
  public_url: "%[1]s"
  dpop: {nonce: true}
admin: {listen: off}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [demo-api]
    algorithms: [ES256]
routes:
  - name: api
    path_prefix: /api
    upstream: %[2]q
    require_sender_constraint: dpop
    forward_headers: {X-Auth-Request-User: sub}
  - name: api-localhost
    host: localhost
    path_prefix: /api
    upstream: %[2]q
    require_sender_constraint: dpop
issuer:
  url: "%[1]s/idp"
  clients:
    - id: machine
      secret: machine-secret-0123456789
      grant_types: [client_credentials]
      scopes: [read]
      audiences: [demo-api]
    - id: cli
      public: true
      first_party: true
      redirect_uris: ["http://127.0.0.1:53682/callback"]
      grant_types: [authorization_code, refresh_token]
      scopes: [openid, offline_access, read]
  scopes: {read: "Read your data"}
  users:
    - username: alice
      password_hash: %[3]q
`

func TestOAuth4WebAPIDPoP(t *testing.T) {
	up := testgw.Upstream(t)
	g := testgw.Start(t, testgw.Options{Config: func(base string) string {
		return fmt.Sprintf(oauth4webapiConfig, base, up, testgw.AliceHash())
	}})
	c := dpoptest.Start(t, "ES256")
	md, err := c.Discover(g.URL + "/idp")
	if err != nil {
		t.Fatal(err)
	}
	if algs, _ := md["dpop_signing_alg_values_supported"].([]any); !containsAny(algs, "ES256") || !containsAny(algs, "Ed25519") {
		t.Errorf("dpop_signing_alg_values_supported %v", md["dpop_signing_alg_values_supported"])
	}

	// client_credentials: the issuer asks for its nonce first (400
	// use_dpop_nonce with DPoP-Nonce), oauth4webapi retries with it.
	tok, err := c.ClientCredentials("machine", "machine-secret-0123456789", "read", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Sent) != 2 || tok.Sent[0].Status != 400 || tok.Sent[0].DPoPNonce == "" || tok.Sent[1].Status != 200 ||
		proofClaims(t, tok.Sent[1].DPoP)["nonce"] != tok.Sent[0].DPoPNonce {
		t.Errorf("token requests %+v", tok.Sent)
	}
	if !strings.EqualFold(tok.TokenType, "DPoP") {
		t.Errorf("token_type %q", tok.TokenType)
	}
	if jkt := cnfJKT(t, tok.AccessToken); jkt == "" || jkt != c.JKT() {
		t.Errorf("cnf.jkt %q, the client's key %q", jkt, c.JKT())
	}

	// The gateway on an origin the client has no nonce for: 401
	// use_dpop_nonce, then the retry with the gateway's nonce passes.
	local := strings.Replace(g.URL, "127.0.0.1", "localhost", 1) + "/api/hello"
	r, err := c.Call("GET", local+"?q=1", "")
	if err != nil || r.Status != 200 {
		t.Fatalf("call at localhost: %+v %v", r, err)
	}
	if len(r.Sent) != 2 || r.Sent[0].Status != 401 || r.Sent[0].DPoPNonce == "" ||
		!strings.Contains(r.Sent[0].WWWAuthenticate, `DPoP error="use_dpop_nonce"`) || r.Sent[1].Scheme != "DPoP" {
		t.Errorf("nonce round trip at the gateway: %+v", r.Sent)
	}
	// At the issuer's origin the nonce it has already is the gateway's too.
	u := g.URL + "/api/hello"
	r, err = c.Call("POST", u, `{"a":1}`)
	if err != nil || r.Status != 200 || len(r.Sent) != 1 {
		t.Fatalf("call: %+v %v", r, err)
	}
	if !strings.Contains(r.Body, `"X-Auth-Request-User":["machine"]`) || strings.Contains(r.Body, "Dpop") {
		t.Errorf("upstream saw %s", r.Body)
	}
	used := r.Sent[0].DPoP

	// A proof oauth4webapi made, sent by hand, passes: the refusals below
	// are the proofs', not the sending's.
	if st, _ := send(t, "GET", u, "DPoP", tok.AccessToken, c.Proof("GET", u, "", dpoptest.ThisKey)); st != 200 {
		t.Fatalf("its own fresh proof: %d", st)
	}
	cases := []struct {
		name, method, scheme, proof, error string
	}{
		{"replayed", "POST", "DPoP", used, "invalid_dpop_proof"},
		{"wrong htm", "POST", "DPoP", c.Proof("GET", u, "", dpoptest.ThisKey), "invalid_dpop_proof"},
		{"wrong htu", "GET", "DPoP", c.Proof("GET", g.URL+"/api/other", "", dpoptest.ThisKey), "invalid_dpop_proof"},
		{"another key", "GET", "DPoP", c.Proof("GET", u, "", dpoptest.OtherKey), "invalid_token"},
		{"stale iat", "GET", "DPoP", c.Proof("GET", u, "", dpoptest.Stale), "invalid_dpop_proof"},
		{"no ath", "GET", "DPoP", c.Proof("GET", u, "", dpoptest.NoATH), "invalid_dpop_proof"},
		{"as Bearer", "GET", "Bearer", "", "invalid_token"},
		{"no proof", "GET", "DPoP", "", "invalid_dpop_proof"},
	}
	for _, tc := range cases {
		st, wa := send(t, tc.method, u, tc.scheme, tok.AccessToken, tc.proof)
		if st != 401 || !strings.Contains(wa, `error="`+tc.error+`"`) {
			t.Errorf("%s: %d %s, want 401 %s", tc.name, st, wa, tc.error)
		}
	}

	// A public client with an Ed25519 key: dpop_jkt and a resource at
	// authorize (oauth4webapi's code exchange sends no resource: the grant
	// keeps it), code and refresh tokens bound to its key.
	pc := dpoptest.Start(t, "EdDSA")
	if _, err := pc.Discover(g.URL + "/idp"); err != nil {
		t.Fatal(err)
	}
	authURL := pc.AuthorizationURL(dpoptest.AuthRequest{ClientID: "cli", RedirectURI: "http://127.0.0.1:53682/callback",
		Scope: "openid offline_access read", Resource: g.URL + "/api", DPoPJKT: true})
	if q := mustQuery(t, authURL); q.Get("dpop_jkt") != pc.JKT() {
		t.Errorf("authorization URL %s", authURL)
	}
	var consent string
	back, err := userAgent(t, testgw.NewBrowser(t), g.URL, &consent)(authURL)
	if err != nil {
		t.Fatal(err)
	}
	tok, err = pc.ExchangeCode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(tok.TokenType, "DPoP") || tok.RefreshToken == "" || tok.IDTokenSub == "" || cnfJKT(t, tok.AccessToken) != pc.JKT() {
		t.Errorf("code exchange: %+v", tok)
	}
	if h := proofHeader(t, tok.Sent[len(tok.Sent)-1].DPoP); h["alg"] != "Ed25519" {
		t.Errorf("oauth4webapi's EdDSA proof header %v", h)
	}
	if r, err := pc.Call("GET", u, ""); err != nil || r.Status != 200 {
		t.Errorf("call with the code's token: %+v %v", r, err)
	}
	first := tok.AccessToken
	tok, err = pc.Refresh("")
	if err != nil || !strings.EqualFold(tok.TokenType, "DPoP") || tok.AccessToken == first || cnfJKT(t, tok.AccessToken) != pc.JKT() {
		t.Fatalf("refresh: %+v %v", tok, err)
	}
	if r, err := pc.Call("GET", u, ""); err != nil || r.Status != 200 {
		t.Errorf("call with the refreshed token: %+v %v", r, err)
	}
	// Its refresh token is bound to its key: without a proof it is
	// refused and not spent, oauth4webapi's next refresh still works.
	res, err := http.PostForm(g.URL+"/idp/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"cli"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "invalid_grant") {
		t.Errorf("refresh without a proof: %d %s", res.StatusCode, body)
	}
	if tok, err = pc.Refresh(""); err != nil || cnfJKT(t, tok.AccessToken) != pc.JKT() {
		t.Fatalf("refresh after the refused one: %+v %v", tok, err)
	}
	// The public client's token is no use to the first client's key.
	if st, wa := send(t, "GET", u, "DPoP", tok.AccessToken, c.Proof("GET", u, tok.AccessToken, dpoptest.ThisKey)); st != 401 || !strings.Contains(wa, `error="invalid_token"`) {
		t.Errorf("another client's key: %d %s", st, wa)
	}
}

// send makes a request with Authorization scheme+" "+token and, when not
// "", the proof, and returns the status and WWW-Authenticate.
func send(t *testing.T, method, u, scheme, token, proof string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	req.Header.Set("Authorization", scheme+" "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, strings.Join(res.Header.Values("WWW-Authenticate"), ", ")
}

func proofClaims(t *testing.T, proof string) jwt.MapClaims {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(proof, c); err != nil {
		t.Fatalf("proof %q: %v", proof, err)
	}
	return c
}

func proofHeader(t *testing.T, proof string) map[string]any {
	t.Helper()
	// Not jwt's parser: it knows no alg "Ed25519".
	seg, _, _ := strings.Cut(proof, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	var h map[string]any
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("proof %q: header %q", proof, raw)
	}
	return h
}

func containsAny(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Query()
}
