package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// resourceConfig is a gateway whose built-in issuer at /idp serves its own
// routes as resources: /mcp (no scopes), /api (scope read, named and
// documented), /tools (named for a public URL in front), /public, and the
// catch-all app. %[1]s is the gateway's base URL, %[2]s the upstream.
const resourceConfig = `
server: {listen: "127.0.0.1:0", public_url: "%[1]s"}
admin: {listen: "127.0.0.1:0", token: "admin-token-0123456789"}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [demo-api]
    algorithms: [ES256]
routes:
  - name: mcp
    path_prefix: /mcp
    upstream: %[2]q
    forward_headers: {X-Auth-Request-User: sub}
  - name: api
    path_prefix: /api
    upstream: %[2]q
    require_scopes: [read]
    resource_name: "Demo API"
    resource_documentation: "https://docs.example.com/api"
  - name: tools
    path_prefix: /tools
    upstream: %[2]q
    resource: "https://public.example.com/v1/tools"
  - name: public
    path_prefix: /public
    upstream: %[2]q
    auth: public
  - name: app
    path_prefix: /
    upstream: %[2]q
issuer:
  url: "%[1]s/idp"
  resources: ["https://elsewhere.example.com/api"]
  registration: {enabled: true, max_clients: 5}
  clients:
    - id: machine
      secret: machine-secret-0123456789
      grant_types: [client_credentials]
      scopes: [read, write]
      audiences: [demo-api]
  scopes: {read: "Read your data", write: "Change your data"}
`

func startResourceGateway(t *testing.T) *testgw.Gateway {
	t.Helper()
	up := upstream(t)
	return testgw.Start(t, testgw.Options{Admin: true,
		Config: func(base string) string { return fmt.Sprintf(resourceConfig, base, up) }})
}

func getJSON(t *testing.T, u string) (*http.Response, map[string]any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var doc map[string]any
	if res.StatusCode == 200 {
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v: %s", u, err, raw)
		}
	}
	return res, doc
}

func TestProtectedResourceMetadata(t *testing.T) {
	g := startResourceGateway(t)
	iss := fmt.Sprint([]any{g.URL + "/idp"})
	cases := []struct {
		path, resource, scopes, name, doc string
	}{
		{"/.well-known/oauth-protected-resource/mcp", g.URL + "/mcp", "[]", "", ""},
		{"/.well-known/oauth-protected-resource/api", g.URL + "/api", "[read]", "Demo API", "https://docs.example.com/api"},
		// The catch-all at / publishes at the bare well-known URI.
		{"/.well-known/oauth-protected-resource", g.URL, "[]", "", ""},
		// A resource named for a proxy in front: at the route's path and
		// at the resource's.
		{"/.well-known/oauth-protected-resource/tools", "https://public.example.com/v1/tools", "[]", "", ""},
		{"/.well-known/oauth-protected-resource/v1/tools", "https://public.example.com/v1/tools", "[]", "", ""},
	}
	for _, tc := range cases {
		res, doc := getJSON(t, g.URL+tc.path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", tc.path, res.StatusCode, res.Header.Get("Content-Type"))
			continue
		}
		if doc["resource"] != tc.resource || fmt.Sprint(doc["authorization_servers"]) != iss ||
			fmt.Sprint(doc["scopes_supported"]) != tc.scopes || fmt.Sprint(doc["bearer_methods_supported"]) != "[header]" {
			t.Errorf("%s: %v", tc.path, doc)
		}
		if name, _ := doc["resource_name"].(string); name != tc.name {
			t.Errorf("%s: resource_name %q", tc.path, name)
		}
		if d, _ := doc["resource_documentation"].(string); d != tc.doc {
			t.Errorf("%s: resource_documentation %q", tc.path, d)
		}
	}
	// A public route has none; the path falls to the routes (here the
	// catch-all, which wants a token).
	if res, _ := getJSON(t, g.URL+"/.well-known/oauth-protected-resource/public"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("public route's metadata: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", g.URL+"/.well-known/oauth-protected-resource/mcp", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to the metadata: %v %v", res, err)
	}
}

func TestChallengesPointToTheMetadata(t *testing.T) {
	g := startResourceGateway(t)
	tok := func(resource, scopes string) string { return machineToken(t, g.URL, resource, scopes) }
	call := func(path, token string) *http.Response { return bearerGet(t, g.URL+path, token) }
	mcpMeta := `resource_metadata="` + g.URL + `/.well-known/oauth-protected-resource/mcp"`
	apiMeta := `resource_metadata="` + g.URL + `/.well-known/oauth-protected-resource/api"`
	cases := []struct {
		name, path, token string
		status            int
		want              []string
	}{
		{"no token", "/mcp/x", "", 401, []string{mcpMeta}},
		{"garbage", "/mcp/x", "not.a.token", 401, []string{mcpMeta, `error="invalid_token"`}},
		{"token for another resource", "/mcp/x", tok(g.URL+"/api", "read"), 401, []string{mcpMeta, `error="invalid_token"`}},
		{"token for an API elsewhere", "/mcp/x", tok("https://elsewhere.example.com/api", "read"), 401, []string{mcpMeta}},
		{"missing scope", "/api/x", tok(g.URL+"/api", "write"), 403, []string{apiMeta, `error="insufficient_scope"`}},
		{"catch-all", "/other", "", 401, []string{`resource_metadata="` + g.URL + `/.well-known/oauth-protected-resource"`}},
		{"overridden resource", "/tools/x", "", 401, []string{`resource_metadata="https://public.example.com/.well-known/oauth-protected-resource/v1/tools"`}},
	}
	for _, tc := range cases {
		res := call(tc.path, tc.token)
		got := res.Header.Get("WWW-Authenticate")
		if res.StatusCode != tc.status {
			t.Errorf("%s: %d %s", tc.name, res.StatusCode, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: WWW-Authenticate %s lacks %s", tc.name, got, w)
			}
		}
	}
	// The route's own resource is an audience it accepts, besides demo-api.
	for path, token := range map[string]string{
		"/mcp/x": tok(g.URL+"/mcp", ""), "/api/x": tok(g.URL+"/api", "read"), "/other": tok("", "read"),
		"/tools/x": tok("https://public.example.com/v1/tools", ""),
	} {
		if res := call(path, token); res.StatusCode != 200 {
			t.Errorf("%s with its resource's token: %d %s", path, res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
	}
}

// machineToken is a client_credentials token of machine at the gateway
// at base, for resource unless it is "".
func machineToken(t *testing.T, base, resource, scopes string) string {
	t.Helper()
	st, out := machineTokenRaw(t, base, resource, scopes)
	if st != 200 {
		t.Fatalf("token for %q: %d %v", resource, st, out)
	}
	return out["access_token"].(string)
}

func machineTokenRaw(t *testing.T, base, resource, scopes string) (int, map[string]any) {
	t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}, "scope": {scopes}}
	if resource != "" {
		v.Set("resource", resource)
	}
	req, _ := http.NewRequest("POST", base+"/idp/token", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("machine", "machine-secret-0123456789")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func bearerGet(t *testing.T, u, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestReloadKeepsTheIssuerAndServesNewResources: a reload that adds a
// route keeps the built-in issuer (its keys: tokens issued before still
// pass) and lets it issue tokens for the new route's resource at once.
func TestReloadKeepsTheIssuerAndServesNewResources(t *testing.T) {
	up := upstream(t)
	g := testgw.Start(t, testgw.Options{Admin: true,
		Config: func(base string) string { return fmt.Sprintf(resourceConfig, base, up) }})
	before := machineToken(t, g.URL, g.URL+"/mcp", "")
	if st, out := machineTokenRaw(t, g.URL, g.URL+"/reports", ""); st != 400 || out["error"] != "invalid_target" {
		t.Fatalf("resource of a route not yet configured: %d %v", st, out)
	}
	next := strings.Replace(resourceConfig, "routes:\n", "routes:\n  - name: reports\n    path_prefix: /reports\n    upstream: %[2]q\n", 1)
	cfg, err := config.Parse("gateway.yaml", []byte(fmt.Sprintf(next, g.URL, up)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if res := bearerGet(t, g.URL+"/mcp/x", before); res.StatusCode != 200 {
		t.Errorf("a token from before the reload: %d (issuer rebuilt?)", res.StatusCode)
	}
	if res := bearerGet(t, g.URL+"/reports/x", machineToken(t, g.URL, g.URL+"/reports", "")); res.StatusCode != 200 {
		t.Errorf("the new route with its resource's token: %d", res.StatusCode)
	}
	if res, doc := getJSON(t, g.URL+"/.well-known/oauth-protected-resource/reports"); res.StatusCode != 200 || doc["resource"] != g.URL+"/reports" {
		t.Errorf("the new route's metadata: %d %v", res.StatusCode, doc)
	}
}

func TestDeleteRegisteredClient(t *testing.T) {
	g := startResourceGateway(t)
	res, err := http.Post(g.URL+"/idp/register", "application/json",
		strings.NewReader(`{"redirect_uris":["http://127.0.0.1:8976/cb"],"client_name":"cli"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	_ = json.NewDecoder(res.Body).Decode(&reg)
	res.Body.Close()
	id, _ := reg["client_id"].(string)
	if res.StatusCode != http.StatusCreated || id == "" {
		t.Fatalf("register: %d %v", res.StatusCode, reg)
	}
	del := func(id, token string) int {
		req := httptest.NewRequest("DELETE", "/admin/clients/"+id, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		id, token string
		want      int
	}{
		{id, "", 401}, {id, "wrong-token-0123456789", 401},
		{"machine", "admin-token-0123456789", 409},
		{id, "admin-token-0123456789", 204},
		{id, "admin-token-0123456789", 404},
	} {
		if got := del(tc.id, tc.token); got != tc.want {
			t.Errorf("DELETE %s with %q: %d, want %d", tc.id, tc.token, got, tc.want)
		}
	}
	u := g.URL + "/idp/authorize?" + url.Values{"client_id": {id}, "response_type": {"code"},
		"redirect_uri": {"http://127.0.0.1:8976/cb"}}.Encode()
	if res, err := http.Get(u); err != nil || res.StatusCode != http.StatusBadRequest {
		t.Errorf("authorize with a deleted client: %v %v", res, err)
	}
}
