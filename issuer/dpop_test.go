package issuer_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/dpop"
	"github.com/portcullis-dev/portcullis/internal/dpop/prooftest"
	"github.com/portcullis-dev/portcullis/issuer"
)

// tokenWithProof posts a token request with a DPoP header (none when
// proof is "") as client id (secret "" for a public client, in the form).
func tokenWithProof(t *testing.T, p *idp, id, secret, proof string, v url.Values) (int, map[string]any, http.Header) {
	t.Helper()
	if secret == "" {
		v.Set("client_id", id)
	}
	req, _ := http.NewRequest("POST", p.url+"/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("non-JSON %d: %s", res.StatusCode, raw)
	}
	return res.StatusCode, out, res.Header
}

func cnfOf(t *testing.T, tok string) any {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c["cnf"]
}

func TestDPoPBoundTokensFromTheIssuer(t *testing.T) {
	var p *idp
	p = newIDPWith(t, func(c *issuer.Config) {
		c.Resources = []string{mcpResource}
		c.Registration = &issuer.Registration{}
		v, err := dpop.New(dpop.Config{Now: c.Now, Replay: dpop.NewMemoryReplay(100, c.Now)})
		if err != nil {
			t.Fatal(err)
		}
		c.DPoP = v
	})
	k, other := prooftest.NewKey(t), prooftest.NewKey(t)
	proof := func(key *prooftest.Key) string { return key.Proof(t, "POST", p.url+"/token", "", p.clock.Now(), nil) }
	cc := url.Values{"grant_type": {"client_credentials"}}

	st, out, _ := tokenWithProof(t, p, "machine", machineSecret, proof(k), cc)
	if st != 200 || out["token_type"] != "DPoP" || fmt.Sprint(cnfOf(t, out["access_token"].(string))) != fmt.Sprint(map[string]any{"jkt": k.JKT}) {
		t.Fatalf("client_credentials with a proof: %d %v", st, out)
	}
	st, out, _ = tokenWithProof(t, p, "machine", machineSecret, "", cc)
	if st != 200 || out["token_type"] != "Bearer" || cnfOf(t, out["access_token"].(string)) != nil {
		t.Errorf("without a proof: %d %v", st, out)
	}
	bad := k.Proof(t, "POST", "https://elsewhere.example.com/token", "", p.clock.Now(), nil)
	if st, out, _ := tokenWithProof(t, p, "machine", machineSecret, bad, cc); st != 400 || out["error"] != "invalid_dpop_proof" {
		t.Errorf("a proof for another URL: %d %v", st, out)
	}
	replayed := proof(k)
	tokenWithProof(t, p, "machine", machineSecret, replayed, cc)
	if st, out, _ := tokenWithProof(t, p, "machine", machineSecret, replayed, cc); st != 400 || out["error"] != "invalid_dpop_proof" {
		t.Errorf("a replayed proof: %d %v", st, out)
	}

	// A public client's refresh token is bound to the key (RFC 9449 §5).
	_, reg := p.register(t, mcpClient(loopbackCB), "")
	id := reg["client_id"].(string)
	authURL, verifier := p.pkceAuth(id, loopbackCB, nil)
	back := p.loginAt(t, browser(), authURL, "alice-password", "http://127.0.0.1:53682/")
	st, out, _ = tokenWithProof(t, p, id, "", proof(k), url.Values{"grant_type": {"authorization_code"},
		"code": {back.Query().Get("code")}, "redirect_uri": {loopbackCB}, "code_verifier": {verifier}})
	if st != 200 || out["token_type"] != "DPoP" || out["refresh_token"] == nil {
		t.Fatalf("code exchange with a proof: %d %v", st, out)
	}
	rt := out["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	for name, pr := range map[string]string{"no proof": "", "another key": proof(other)} {
		if st, out, _ := tokenWithProof(t, p, id, "", pr, refresh); st != 400 || out["error"] != "invalid_grant" {
			t.Errorf("refresh with %s: %d %v", name, st, out)
		}
	}
	if st, out, _ := tokenWithProof(t, p, id, "", proof(k), refresh); st != 200 || out["token_type"] != "DPoP" {
		t.Errorf("refresh with the key: %d %v", st, out)
	}

	_, raw := get(t, http.DefaultClient, p.url+"/.well-known/openid-configuration")
	if !strings.Contains(raw, `"dpop_signing_alg_values_supported"`) {
		t.Errorf("discovery lacks dpop_signing_alg_values_supported")
	}
}

// TestDPoPJKTAndBoundClients: dpop_jkt at the authorization endpoint binds
// the code to a key (RFC 9449 §10); a client with DPoPBoundAccessTokens
// gets no token without a proof.
func TestDPoPJKTAndBoundClients(t *testing.T) {
	var p *idp
	p = newIDPWith(t, func(c *issuer.Config) {
		c.Registration = &issuer.Registration{}
		v, _ := dpop.New(dpop.Config{Now: c.Now, Replay: dpop.NewMemoryReplay(100, c.Now)})
		c.DPoP = v
		c.Clients = append(c.Clients, issuer.Client{ID: "bound", Secret: "bound-secret-0123456789",
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, DPoPBoundAccessTokens: true})
	})
	k, other := prooftest.NewKey(t), prooftest.NewKey(t)
	proof := func(key *prooftest.Key) string { return key.Proof(t, "POST", p.url+"/token", "", p.clock.Now(), nil) }

	cc := url.Values{"grant_type": {"client_credentials"}}
	if st, out, _ := tokenWithProof(t, p, "bound", "bound-secret-0123456789", "", cc); st != 400 || out["error"] != "invalid_dpop_proof" {
		t.Errorf("a DPoP-bound client without a proof: %d %v", st, out)
	}
	if st, out, _ := tokenWithProof(t, p, "bound", "bound-secret-0123456789", proof(k), cc); st != 200 || out["token_type"] != "DPoP" {
		t.Errorf("a DPoP-bound client with a proof: %d %v", st, out)
	}

	_, reg := p.register(t, mcpClient(loopbackCB), "")
	id := reg["client_id"].(string)
	code := func() (string, string) {
		authURL, verifier := p.pkceAuth(id, loopbackCB, url.Values{"dpop_jkt": {k.JKT}})
		back := p.loginAt(t, browser(), authURL, "alice-password", "http://127.0.0.1:53682/")
		return back.Query().Get("code"), verifier
	}
	exchange := func(c, verifier, pr string) (int, map[string]any) {
		st, out, _ := tokenWithProof(t, p, id, "", pr, url.Values{"grant_type": {"authorization_code"},
			"code": {c}, "redirect_uri": {loopbackCB}, "code_verifier": {verifier}})
		return st, out
	}
	for name, pr := range map[string]string{"no proof": "", "another key": proof(other)} {
		c, v := code()
		if st, out := exchange(c, v, pr); st != 400 || out["error"] != "invalid_dpop_proof" {
			t.Errorf("code with dpop_jkt, %s: %d %v", name, st, out)
		}
	}
	c, v := code()
	if st, out := exchange(c, v, proof(k)); st != 200 || out["token_type"] != "DPoP" {
		t.Errorf("code with dpop_jkt and its key: %d %v", st, out)
	}
	authURL, _ := p.pkceAuth(id, loopbackCB, url.Values{"dpop_jkt": {"not-a-thumbprint"}})
	res, _ := get(t, browser(), authURL)
	if loc, _ := res.Location(); loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("a malformed dpop_jkt: %d %v", res.StatusCode, loc)
	}
}
