package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/dpop/prooftest"
	"github.com/portcullis-dev/portcullis/internal/nodeidp"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// DPoP with a real third-party provider: node's oidc-provider issues a
// machine client a DPoP-bound JWT access token (client_credentials with a
// resource indicator), and the gateway accepts it only with a proof of the
// same key.

// dpopGateway is the configuration of a gateway trusting the provider
// %[1]s's access tokens for the audience %[2]s, with one route to the
// upstream %[3]s.
const dpopGateway = `server: {listen: "127.0.0.1:0", public_url: "%[4]s"}
admin: {listen: off}
issuers:
  - issuer: "%[1]s"
    audiences: ["%[2]s"]
    algorithms: [RS256]
routes:
  - name: api
    path_prefix: /
    upstream: "%[3]s"
    forward_headers: {X-Auth-Request-User: sub}
`

func TestNodeProviderDPoPTokenAtTheGateway(t *testing.T) {
	machine := nodeidp.Client{ID: "machine", Secret: "machine-client-secret-0123456789", GrantTypes: []string{"client_credentials"}}
	p := nodeidp.Start(t, machine)
	ln, base := testgw.Listen(t)
	resource := base + "/api"
	up := testgw.Upstream(t)
	testgw.Start(t, testgw.Options{Listener: ln, Logger: testgw.Logger(t, slog.LevelInfo, nil), Config: func(string) string {
		return fmt.Sprintf(dpopGateway, p.Issuer, resource, up, base)
	}})

	k := prooftest.NewKey(t)
	tok, typ := p.ClientCredentials(t, machine, resource, "api:read",
		k.Proof(t, "POST", p.Discovery.TokenEndpoint, "", time.Now(), nil))
	if typ != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", typ)
	}
	if jkt := cnfJKT(t, tok); jkt != k.JKT {
		t.Fatalf("access token cnf.jkt %q, want the key's %q", jkt, k.JKT)
	}

	u := base + "/api/x"
	c := &http.Client{Timeout: 10 * time.Second}
	send := func(auth, proof string) (*http.Response, string) {
		t.Helper()
		h := http.Header{"Authorization": {auth}}
		if proof != "" {
			h.Set("DPoP", proof)
		}
		return testgw.Send(t, c, "GET", u, nil, h)
	}

	res, body := send("DPoP "+tok, k.Proof(t, "GET", u, tok, time.Now(), nil))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Auth-Request-User":["machine"]`) {
		t.Fatalf("DPoP with a proof: %d %q, want the upstream's answer for sub machine", res.StatusCode, body)
	}

	res, body = send("Bearer "+tok, "")
	if res.StatusCode != http.StatusUnauthorized || !hasChallenge(res, `DPoP `, `error="invalid_token"`) {
		t.Fatalf("the bound token as Bearer: %d %q %q, want 401 with a DPoP invalid_token challenge", res.StatusCode, res.Header.Values("WWW-Authenticate"), body)
	}

	res, body = send("DPoP "+tok, "")
	if res.StatusCode != http.StatusUnauthorized || !hasChallenge(res, `DPoP `, `error="invalid_dpop_proof"`) {
		t.Fatalf("DPoP without a proof: %d %q %q, want 401 invalid_dpop_proof", res.StatusCode, res.Header.Values("WWW-Authenticate"), body)
	}

	other := prooftest.NewKey(t)
	res, body = send("DPoP "+tok, other.Proof(t, "GET", u, tok, time.Now(), nil))
	if res.StatusCode != http.StatusUnauthorized || !hasChallenge(res, `DPoP `, `error="invalid_token"`) && !hasChallenge(res, `DPoP `, `error="invalid_dpop_proof"`) {
		t.Fatalf("DPoP with another key's proof: %d %q %q, want 401 with a DPoP challenge", res.StatusCode, res.Header.Values("WWW-Authenticate"), body)
	}
}

// cnfJKT is the cnf.jkt claim of the JWT tok, read without verifying it.
func cnfJKT(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Cnf.JKT
}

// hasChallenge reports whether a WWW-Authenticate header of res starts
// with scheme and contains every one of parts.
func hasChallenge(res *http.Response, scheme string, parts ...string) bool {
	for _, v := range res.Header.Values("WWW-Authenticate") {
		if !strings.HasPrefix(v, scheme) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(v, p)
		}
		if ok {
			return true
		}
	}
	return false
}
