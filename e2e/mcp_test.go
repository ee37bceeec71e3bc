package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/mcptest"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

// The MCP authorization flow with the official MCP TypeScript SDK on both
// sides: its Streamable HTTP server is the upstream, its client, with the
// SDK's own OAuth support, knows nothing but the gateway's /mcp URL. It
// gets a 401, reads the protected resource metadata, the built-in issuer's
// metadata, registers itself, logs alice in (the test browser plays the
// user on the login and consent pages), and calls a tool that sees the
// identity headers. The gateway's configuration is README.md's example.

const adminToken = "admin-token-0123456789abcdef"

// readmeMCP is the YAML example under README.md's "Clients that discover
// everything" for a gateway at base in front of the MCP server upstream,
// with an admin token and the second route other, each an own resource.
// store, when not "", is issuer.store.
func readmeMCP(t *testing.T, base, upstream, store string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(b), "## Clients that discover everything")
	_, block, ok := strings.Cut(sec, "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no yaml block under ## Clients that discover everything")
	}
	for _, want := range []string{"https://gw.example.com", "http://127.0.0.1:3000", `"$2a$10$..."`, "registration:\n    enabled: true"} {
		if !strings.Contains(block, want) {
			t.Fatalf("README.md's MCP example lacks %q:\n%s", want, block)
		}
	}
	block = strings.ReplaceAll(block, "https://gw.example.com", base)
	block = strings.ReplaceAll(block, "http://127.0.0.1:3000", upstream)
	block = strings.ReplaceAll(block, `"$2a$10$..."`, fmt.Sprintf("%q\n      claims: {email: alice@example.com}", testgw.AliceHash()))
	block = strings.Replace(block, "routes:\n", "routes:\n  - name: other\n    path_prefix: /other\n    upstream: \""+upstream+"\"\n", 1)
	if store != "" {
		block = strings.Replace(block, "issuer:\n  url:", "issuer:\n  store: \""+store+"\"\n  url:", 1)
	}
	return block + "admin:\n  token: " + adminToken + "\n"
}

// userAgent plays alice's browser for an authorization URL: it signs in
// at the built-in issuer, allows on the consent page, and returns the
// redirect back to the client's loopback address (never followed).
func userAgent(t *testing.T, b *testgw.Browser, base string, sawConsent *string) func(string) (string, error) {
	return func(authURL string) (string, error) {
		res, body := b.Do("GET", authURL, nil, nil)
		for range 10 {
			switch {
			case res.StatusCode == http.StatusFound || res.StatusCode == http.StatusSeeOther:
				loc, _ := res.Location()
				if loc.Host != strings.TrimPrefix(base, "http://") {
					return loc.String(), nil
				}
				res, body = b.Do("GET", loc.String(), nil, nil)
			case strings.Contains(body, `name="password"`):
				res, body = b.SubmitLogin(base, body)
			case strings.Contains(body, `value="allow"`):
				*sawConsent = body
				f := testgw.HiddenFields(body)
				f.Set("action", "allow")
				res, body = b.Do("POST", base+"/idp/authorize", f, nil)
			default:
				return "", fmt.Errorf("unexpected page %d: %s", res.StatusCode, body)
			}
		}
		return "", fmt.Errorf("too many hops from %s", authURL)
	}
}

func TestMCPClientDiscoversRegistersAndCallsATool(t *testing.T) {
	srv := mcptest.StartServer(t)
	g := testgw.Start(t, testgw.Options{Admin: true,
		Config: func(base string) string { return readmeMCP(t, base, srv.URL, "") }})
	var consent string
	res, err := mcptest.RunClient(t, context.Background(), mcptest.ClientOptions{
		ServerURL: g.URL + "/mcp", ClientName: "SDK test client", Scope: "openid email offline_access",
		Authorize: userAgent(t, testgw.NewBrowser(t), g.URL, &consent),
	})
	if err != nil {
		t.Fatalf("MCP client: %v\n%s", err, res.Log)
	}
	if res.Headers["x-auth-request-user"] != "alice" || res.Headers["x-auth-request-email"] != "alice@example.com" {
		t.Errorf("the tool saw %v", res.Headers)
	}
	if _, ok := res.Headers["authorization"]; ok {
		t.Errorf("the token reached the MCP server: %v", res.Headers)
	}
	au, _ := url.Parse(res.AuthURL)
	if q := au.Query(); q.Get("resource") != g.URL+"/mcp" || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != res.ClientID {
		t.Errorf("authorization request %s", res.AuthURL)
	}
	for _, want := range []string{"SDK test client", "not verified", "127.0.0.1:"} {
		if !strings.Contains(consent, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(res.AccessToken, claims); err != nil || claims["aud"] != g.URL+"/mcp" {
		t.Errorf("access token aud %v (%v)", claims["aud"], err)
	}

	// The refresh token cannot be turned to another resource: the grant
	// was for /mcp.
	if st, out := refreshRaw(t, g.URL, res.ClientID, res.RefreshToken, g.URL+"/other"); st != 400 || out["error"] != "invalid_target" {
		t.Errorf("refresh for /other: %d %v", st, out)
	}
	// A token the same client got for another resource of the gateway is
	// refused at /mcp, with the challenge that starts discovery again.
	tok := authorizeFor(t, g.URL, res.ClientID, g.URL+"/other", userAgent(t, testgw.NewBrowser(t), g.URL, &consent))
	call := func(path, token string) *http.Response {
		req, _ := http.NewRequest("POST", g.URL+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r
	}
	if r := call("/mcp", tok); r.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(r.Header.Get("WWW-Authenticate"), `resource_metadata="`+g.URL+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Errorf("a token for /other at /mcp: %d %s", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := call("/other", tok); r.StatusCode == http.StatusUnauthorized {
		t.Errorf("the token for /other at /other: %d", r.StatusCode)
	}
	// The refresh could not be turned to a resource nobody protects.
	if st, out := refreshRaw(t, g.URL, res.ClientID, res.RefreshToken, "https://unknown.example.com/"); st != 400 || out["error"] != "invalid_target" {
		t.Errorf("refresh for an unknown resource: %d %v", st, out)
	}

	// README's curl line deletes the client; it can refresh no more.
	line := readmeLine(t, "curl -X DELETE", "/admin/clients/")
	line = strings.Replace(line, "http://127.0.0.1:9090", g.AdminURL, 1)
	line = line[:strings.LastIndex(line, "/")+1] + res.ClientID
	cmd := exec.Command("sh", "-c", line+" -s -o /dev/null -w '%{http_code}'")
	cmd.Env = append(os.Environ(), "ADMIN_TOKEN="+adminToken)
	out, err := cmd.Output()
	if err != nil || string(out) != "204" {
		t.Fatalf("%s: %s %v", line, out, err)
	}
	if st, out := refreshRaw(t, g.URL, res.ClientID, res.RefreshToken, ""); st != 401 || out["error"] != "invalid_client" {
		t.Errorf("refresh after deletion: %d %v", st, out)
	}
}

// authorizeFor runs the authorization code flow with PKCE for public
// client clientID and resource, through agent, and returns the access
// token.
func authorizeFor(t *testing.T, base, clientID, resource string, agent func(string) (string, error)) string {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	redirect := "http://127.0.0.1:40002/callback"
	authURL := base + "/idp/authorize?" + url.Values{"client_id": {clientID}, "response_type": {"code"},
		"redirect_uri": {redirect}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}, "scope": {"openid"}, "resource": {resource}}.Encode()
	back, err := agent(authURL)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(back)
	res, err := http.PostForm(base+"/idp/token", url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {redirect}, "code_verifier": {verifier}, "client_id": {clientID}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	tok, _ := out["access_token"].(string)
	if res.StatusCode != 200 || tok == "" {
		t.Fatalf("code for %s: %d %v", resource, res.StatusCode, out)
	}
	return tok
}

// refreshRaw sends a public client's refresh request, with a resource
// unless it is "".
func refreshRaw(t *testing.T, base, clientID, rt, resource string) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
	if resource != "" {
		v.Set("resource", resource)
	}
	res, err := http.PostForm(base+"/idp/token", v)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// refresh is refreshRaw that must succeed; it returns the access token.
func refresh(t *testing.T, base, clientID, rt, resource string) string {
	t.Helper()
	st, out := refreshRaw(t, base, clientID, rt, resource)
	if st != 200 {
		t.Fatalf("refresh for %s: %d %v", resource, st, out)
	}
	return out["access_token"].(string)
}

// TestMCPClientsAcrossReplicas: two gateways share the issuer's Redis. The
// SDK client registers and logs in at one, its registration holds at the
// other, and a deletion at one is refused at the other.
func TestMCPClientsAcrossReplicas(t *testing.T) {
	redisURL, _, _ := testredis.Start(t)
	srv := mcptest.StartServer(t)
	lnA, baseA := testgw.Listen(t)
	lnB, _ := testgw.Listen(t)
	// Both replicas answer for the same public URL, as behind one
	// Service; each test request goes to the one it names.
	conf := func(string) string { return readmeMCP(t, baseA, srv.URL, redisURL) }
	a := testgw.Start(t, testgw.Options{Admin: true, Listener: lnA, Config: conf})
	b := testgw.Start(t, testgw.Options{Admin: true, Listener: lnB, Config: conf})

	var consent string
	res, err := mcptest.RunClient(t, context.Background(), mcptest.ClientOptions{
		ServerURL: a.URL + "/mcp", Scope: "openid offline_access",
		Authorize: userAgent(t, testgw.NewBrowser(t), a.URL, &consent),
	})
	if err != nil {
		t.Fatalf("MCP client: %v\n%s", err, res.Log)
	}
	// The registration and the refresh family live in Redis: replica B
	// refreshes for the client A registered, and its token passes B.
	tok := refresh(t, b.URL, res.ClientID, res.RefreshToken, "")
	req, _ := http.NewRequest("POST", b.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("replica B with the client's token: %d", r.StatusCode)
	}
	// B starts an authorization for the client A registered.
	authURL := b.URL + "/idp/authorize?" + url.Values{"client_id": {res.ClientID}, "response_type": {"code"},
		"redirect_uri": {"http://127.0.0.1:40001/callback"}, "code_challenge": {strings.Repeat("a", 43)},
		"code_challenge_method": {"S256"}, "scope": {"openid"}}.Encode()
	if r, body := testgw.NewBrowser(t).Do("GET", authURL, nil, nil); r.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Fatalf("replica B does not know the client: %d %s", r.StatusCode, body)
	}
	// Deleted at B's admin listener, A refuses the client.
	del, _ := http.NewRequest("DELETE", b.AdminURL+"/admin/clients/"+res.ClientID, nil)
	del.Header.Set("Authorization", "Bearer "+adminToken)
	if r, err := http.DefaultClient.Do(del); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete at B: %v %v", r, err)
	}
	if r, _ := testgw.NewBrowser(t).Do("GET", strings.Replace(authURL, b.URL, a.URL, 1), nil, nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("replica A authorizes a deleted client: %d", r.StatusCode)
	}
	if st, out := refreshRaw(t, a.URL, res.ClientID, res.RefreshToken, ""); st != 401 {
		t.Errorf("replica A refreshes for a deleted client: %d %v", st, out)
	}
}
