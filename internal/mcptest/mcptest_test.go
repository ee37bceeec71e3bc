package mcptest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// rpc POSTs one JSON-RPC request to endpoint the way a Streamable HTTP
// client does and returns its result.
func rpc(t *testing.T, endpoint string, id int, method string, params any, header http.Header) json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	req, err := http.NewRequest("POST", endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %q", method, res.Status, raw)
	}
	data := raw
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt == "text/event-stream" {
		data = nil
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				data = append(data, strings.TrimPrefix(d, " ")...)
			}
		}
	}
	var msg struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		t.Fatalf("%s: %v in %q", method, err, raw)
	}
	if msg.Error != nil || msg.ID != id {
		t.Fatalf("%s: %q", method, raw)
	}
	return msg.Result
}

func TestServerWhoami(t *testing.T) {
	srv := StartServer(t)
	endpoint := srv.URL + "/mcp"
	h := http.Header{"X-Test": {"1"}}

	var init struct {
		ProtocolVersion string `json:"protocolVersion"`
		ServerInfo      struct {
			Name string `json:"name"`
		} `json:"serverInfo"`
	}
	raw := rpc(t, endpoint, 1, "initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "go test", "version": "0"},
	}, h)
	if err := json.Unmarshal(raw, &init); err != nil || init.ProtocolVersion == "" {
		t.Fatalf("initialize: %s (%v)", raw, err)
	}

	h.Set("Mcp-Protocol-Version", init.ProtocolVersion)
	raw = rpc(t, endpoint, 2, "tools/call", map[string]any{"name": "whoami", "arguments": map[string]any{}}, h)
	var call struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(raw, &call); err != nil || len(call.Content) != 1 || call.Content[0].Type != "text" {
		t.Fatalf("tools/call: %s (%v)", raw, err)
	}
	var headers map[string]string
	if err := json.Unmarshal([]byte(call.Content[0].Text), &headers); err != nil {
		t.Fatalf("whoami text %q: %v", call.Content[0].Text, err)
	}
	if headers["x-test"] != "1" {
		t.Errorf("whoami headers %v: no x-test: 1", headers)
	}
	if headers["mcp-protocol-version"] != init.ProtocolVersion {
		t.Errorf("whoami headers %v: mcp-protocol-version, want %q", headers, init.ProtocolVersion)
	}
}

// A gateway may rewrite Host: the server must not refuse a foreign one.
func TestServerAnyHost(t *testing.T) {
	srv := StartServer(t)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
	req, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(body))
	req.Host = "gateway.example:8443"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `gateway.example:8443`) {
		t.Fatalf("%s %q\n%s", res.Status, b, srv.Output())
	}
}

func TestClientWithoutAuth(t *testing.T) {
	srv := StartServer(t)
	res, err := RunClient(t, context.Background(), ClientOptions{
		ServerURL: srv.URL + "/mcp",
		Authorize: func(u string) (string, error) {
			t.Errorf("Authorize(%s) called for a server without authorization", u)
			return "", fmt.Errorf("unexpected")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Headers["host"] != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("whoami headers %v: host, want %s", res.Headers, srv.URL)
	}
	if res.Headers["authorization"] != "" {
		t.Errorf("whoami headers %v: an authorization header", res.Headers)
	}
	if res.ClientID != "" || res.AccessToken != "" || res.AuthURL != "" {
		t.Errorf("result %+v: registration, tokens or authorization without authorization", res)
	}
}

func TestClientContext(t *testing.T) {
	// A server that never answers: the client must give up with ctx.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does net/http notice the client
		// hanging up and end r.Context().
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	defer hang.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	res, err := RunClient(t, ctx, ClientOptions{ServerURL: hang.URL + "/mcp"})
	if err == nil {
		t.Fatalf("RunClient against a hanging server: %+v, want an error", res)
	}
	t.Logf("RunClient: %v", err)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("RunClient took %v after its context ended", d)
	}
	if res == nil {
		t.Fatal("nil Result with the error")
	}
}

// gateway is a minimal OAuth-protected MCP gateway and authorization
// server in one, in front of an SDK server, just enough to drive the SDK
// client's whole flow and record which URLs it asks for.
type gateway struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	log  []string
	reg  map[string]any
	chal string // code_challenge of the authorization request
	resp string // resource of the authorization request
}

func newGateway(t *testing.T, upstream string) *gateway {
	g := &gateway{t: t}
	target, _ := url.Parse(upstream)
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.log = append(g.log, r.Method+" "+r.URL.Path)
		g.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	base := g.srv.URL
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
			return
		}
		r.Header.Del("Authorization")
		r.Header.Set("X-User", "alice")
		proxy.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"issuer":                                base,
			"authorization_endpoint":                base + "/authorize",
			"token_endpoint":                        base + "/token",
			"registration_endpoint":                 base + "/register",
			"response_types_supported":              []string{"code"},
			"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"none"},
		})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			writeJSON(w, 400, map[string]string{"error": "invalid_client_metadata"})
			return
		}
		g.mu.Lock()
		g.reg = m
		g.mu.Unlock()
		m["client_id"] = "client-1"
		writeJSON(w, http.StatusCreated, m)
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		g.mu.Lock()
		g.chal, g.resp = q.Get("code_challenge"), q.Get("resource")
		g.mu.Unlock()
		cb, _ := url.Parse(q.Get("redirect_uri"))
		cq := url.Values{"code": {"code-1"}, "state": {q.Get("state")}, "iss": {base}}
		cb.RawQuery = cq.Encode()
		http.Redirect(w, r, cb.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := r.PostForm
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		g.mu.Lock()
		chal, resource := g.chal, g.resp
		g.mu.Unlock()
		switch {
		case f.Get("grant_type") != "authorization_code", f.Get("code") != "code-1", f.Get("client_id") != "client-1":
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": f.Encode()})
		case base64.RawURLEncoding.EncodeToString(sum[:]) != chal:
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "PKCE"})
		case f.Get("resource") != resource:
			writeJSON(w, 400, map[string]string{"error": "invalid_target"})
		default:
			writeJSON(w, 200, map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-1"})
		}
	})
	return g
}

func TestClientOAuth(t *testing.T) {
	srv := StartServer(t)
	g := newGateway(t, srv.URL)
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	calls := 0
	res, err := RunClient(t, context.Background(), ClientOptions{
		ServerURL: g.srv.URL + "/mcp",
		Scope:     "mcp",
		Authorize: func(u string) (string, error) {
			calls++
			r, err := noFollow.Get(u)
			if err != nil {
				return "", err
			}
			_ = r.Body.Close()
			return r.Header.Get("Location"), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("requests at the gateway:\n%s", strings.Join(g.log, "\n"))
	if calls != 1 {
		t.Errorf("Authorize called %d times, want 1", calls)
	}
	if res.Headers["x-user"] != "alice" {
		t.Errorf("whoami headers %v: no x-user: alice", res.Headers)
	}
	if res.ClientID != "client-1" || res.AccessToken != "at-1" || res.RefreshToken != "rt-1" {
		t.Errorf("result %+v: wrong client or tokens", res)
	}
	au, err := url.Parse(res.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	q := au.Query()
	if q.Get("resource") != g.srv.URL+"/mcp" || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("scope") != "mcp" {
		t.Errorf("authorization URL %s: want resource, S256, state and scope", res.AuthURL)
	}
	if g.reg["client_name"] != "mcptest client" || g.reg["token_endpoint_auth_method"] != "none" {
		t.Errorf("registration %v", g.reg)
	}
}
