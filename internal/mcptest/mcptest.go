// Package mcptest runs the official MCP TypeScript SDK
// (npm @modelcontextprotocol/sdk, pinned at 1.32.2 in node/package-lock.json)
// for tests: [StartServer] runs its Streamable HTTP MCP server, and
// [RunClient] runs its MCP client with the SDK's own OAuth support, so a
// test can put a gateway between the two and see what a real MCP client
// does and what a real MCP server receives.
//
// It needs node on PATH and the SDK installed
// (npm ci --prefix internal/mcptest/node). Without them a test skips,
// except when CI=true, where .ci/run must have installed them and their
// absence fails the test.
//
// # How the SDK's client authorizes (client/auth.js of 1.32.2)
//
// The client POSTs initialize to the MCP endpoint (S, e.g.
// https://gw/mcp) with Accept "application/json, text/event-stream". On a
// 401 it runs auth() and, as long as it has no tokens, makes these requests
// in this order. Every metadata GET carries MCP-Protocol-Version (2025-11-25)
// and no cookies.
//
//  1. Protected resource metadata (RFC 9728). If the 401's
//     WWW-Authenticate is "Bearer ..." with resource_metadata="URL", only
//     that URL is fetched. Otherwise GET
//     /.well-known/oauth-protected-resource + S's path (path-suffixed:
//     /.well-known/oauth-protected-resource/mcp), then, if that fails with a
//     4xx or a network error and S has a path,
//     /.well-known/oauth-protected-resource at S's origin. The query of S is
//     kept on the path-suffixed URL. The document needs "resource" (a URL);
//     "authorization_servers" is optional, and only its first entry is used.
//     The resource must be at S's origin and S's path must lie at or under
//     its path (https://gw/mcp or https://gw both fit S=https://gw/mcp;
//     https://gw/mcp/ does not), else the flow fails. A missing or
//     unparsable document, or a 5xx (which also skips the root fallback),
//     is not an error: the SDK then takes S's origin as the authorization
//     server and sends no resource parameter at all.
//  2. Authorization server metadata, at the authorization server URL A
//     (authorization_servers[0]). A without a path: GET
//     /.well-known/oauth-authorization-server, then
//     /.well-known/openid-configuration. A with a path P (path-inserted):
//     /.well-known/oauth-authorization-server+P,
//     /.well-known/openid-configuration+P, then P+/.well-known/openid-configuration;
//     there is no fallback to the root. Each 4xx moves to the next URL, a
//     5xx aborts the flow. The
//     RFC 8414 document needs issuer (any string: it is not compared with
//     A), authorization_endpoint, token_endpoint and response_types_supported
//     (which must contain "code"); code_challenge_methods_supported may be
//     absent, but when present it must contain "S256". An OpenID document
//     also needs jwks_uri, subject_types_supported and
//     id_token_signing_alg_values_supported. If no URL answers, the SDK goes
//     on without metadata and uses A's origin + /authorize, /token and
//     /register.
//  3. Scope: the WWW-Authenticate scope parameter, else the protected
//     resource's scopes_supported joined by spaces, else the client's own
//     scope ([ClientOptions.Scope]); the same value goes to registration and
//     to the authorization request.
//  4. Dynamic client registration (RFC 7591), as the client has no
//     client_id: POST JSON to registration_endpoint (metadata without one
//     fails the flow: "does not support dynamic client registration") with
//     client_name, redirect_uris, grant_types
//     [authorization_code refresh_token], response_types [code],
//     token_endpoint_auth_method "none" and scope. Any 2xx answer is taken;
//     its JSON must have client_id and must echo redirect_uris (the SDK's
//     schema requires them); an error answer should be an RFC 6749 error
//     object.
//  5. Authorization request: the browser is sent to authorization_endpoint
//     with response_type=code, client_id, code_challenge,
//     code_challenge_method=S256, redirect_uri, state (only because this
//     harness's provider supplies one; the SDK never checks it, the harness
//     does), scope, prompt=consent when the scope has offline_access, and
//     resource = the protected resource document's "resource" string as
//     written (not normalized: no trailing slash added).
//  6. After the redirect back, transport.finishAuth(code) runs the whole
//     discovery of steps 1-2 again (this provider keeps no discovery state),
//     then POSTs to token_endpoint (form) grant_type=authorization_code,
//     code, code_verifier, redirect_uri, resource and, for a public client,
//     client_id in the body. The auth method is the registration answer's
//     token_endpoint_auth_method when the metadata's
//     token_endpoint_auth_methods_supported lists it or is absent; a
//     client_secret in the registration answer makes it use
//     client_secret_basic or _post instead when the answer names no method.
//     The token answer needs access_token and token_type.
//  7. The client reconnects with Authorization: Bearer <access_token> on
//     every request. Another 401 makes it refresh (grant_type=refresh_token,
//     refresh_token, resource, client_id) if it has a refresh token, else
//     start over at step 5 (here: an error, see [RunClient]); an error
//     invalid_client or unauthorized_client makes it forget the client and
//     re-register, invalid_grant makes it forget the tokens. A 403 with
//     WWW-Authenticate error="insufficient_scope" and a scope makes it
//     re-authorize with that scope.
//
// Other quirks: the SDK follows a redirect of any of these requests only
// within the same origin (scheme, host, port; or http to https on default
// ports), and only for GET or a 307/308; anything else it takes as the
// answer. The iss parameter of the redirect (RFC 9207) is ignored. After
// initialize, the client sends notifications/initialized (answered 202) and
// then opens a GET SSE stream on S with Accept text/event-stream; a 405
// there is fine, a 401 starts the authorization again. Tokens and client
// information are stamped with A (an "issuer" field that is not on the
// wire) and are not reused with another authorization server.
package mcptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/peers"
)

// SDKVersion is the version of @modelcontextprotocol/sdk in node/package.json.
const SDKVersion = "1.32.2"

// Dir is the folder of server.mjs, client.mjs and their package.json.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "node")
}

// findNode returns node's path, or skips the test (fails it when CI=true)
// without node or without the SDK installed.
func findNode(t testing.TB) string {
	t.Helper()
	node := peers.Find(t, false, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		msg := "@modelcontextprotocol/sdk is not installed; run: npm ci --prefix internal/mcptest/node"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (.ci/run installs it)")
		}
		t.Skip(msg)
	}
	return node
}

// Server is a running MCP server of the SDK (node/server.mjs).
type Server struct {
	// URL is the server's origin, http://127.0.0.1:PORT (no trailing
	// slash); the MCP endpoint is URL+"/mcp".
	URL string

	proc *peers.Process
}

// StartServer runs the SDK's McpServer behind its
// StreamableHTTPServerTransport on plain node:http on a free loopback port
// until the test ends, and returns once it accepts connections. Without
// node or the SDK the test skips, or fails when CI=true.
//
// The transport is stateless (a fresh server and transport per POST, no
// Mcp-Session-Id): POST /mcp takes any JSON-RPC message (tools/call works
// even without initialize) and answers requests as a text/event-stream
// (one "event: message" with the JSON-RPC response in "data:"), 202 for
// notifications; GET and DELETE /mcp answer 405; other paths 404. It has no
// authorization of its own.
//
// Its one tool, "whoami" (no arguments), answers one text content item:
// the JSON object of the HTTP request headers of the POST that carried the
// tools/call, as node received them (lower-case names; repeated headers
// joined with ", "). Any Host header and Origin is accepted: the SDK's
// DNS-rebinding protection is off.
func StartServer(t testing.TB) *Server {
	t.Helper()
	node := findNode(t)
	addr := peers.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	return &Server{
		URL:  "http://" + addr,
		proc: peers.Start(t, Dir(), addr, node, "server.mjs", port),
	}
}

// Output is what the server has written so far: its readiness line and
// errors.
func (s *Server) Output() string { return s.proc.Output() }

// DefaultTimeout bounds a [RunClient] whose options set no Timeout.
const DefaultTimeout = 60 * time.Second

// ClientOptions configure [RunClient].
type ClientOptions struct {
	// ServerURL is the MCP endpoint the client connects to, e.g.
	// gatewayURL+"/mcp". Required.
	ServerURL string
	// RedirectURL is the client's redirect URI, registered and sent in the
	// authorization request; by default "http://127.0.0.1:PORT/callback"
	// with a port free a moment ago. Nothing needs to listen there:
	// Authorize hands the redirect back.
	RedirectURL string
	// ClientName is the client_name sent at registration; by default
	// "mcptest client".
	ClientName string
	// Scope is the client's own scope (clientMetadata.scope), which the
	// SDK uses only when neither the 401's WWW-Authenticate nor the
	// protected resource metadata names one. Optional.
	Scope string
	// Authorize plays the user's browser: it is called with the
	// authorization URL the SDK built and returns the URL the browser was
	// finally redirected to (RedirectURL?code=...&state=...&iss=...), or an
	// error. RunClient checks that state matches the authorization URL's,
	// fails on an error parameter, and hands the code to the SDK
	// (transport.finishAuth). It is called at most once, on RunClient's
	// goroutine, and is not interrupted by the context. Nil is fine for a
	// server that needs no authorization; RunClient then fails if the SDK
	// asks for one.
	Authorize func(authURL string) (callbackURL string, err error)
	// Timeout bounds the whole run (node included); DefaultTimeout when
	// zero. The context passed to RunClient bounds it too.
	Timeout time.Duration
}

// Result is what an SDK client run saw.
type Result struct {
	// Headers is the whoami tool's output: the request headers the MCP
	// server received with the tools/call (lower-case names).
	Headers map[string]string
	// ClientID and ClientSecret are what the SDK registered (dynamic
	// client registration); empty without authorization.
	ClientID, ClientSecret string
	// AccessToken and RefreshToken are the SDK's tokens at the end of the
	// run; empty without authorization.
	AccessToken, RefreshToken string
	// AuthURL is the authorization URL the SDK built (it carries resource,
	// code_challenge, code_challenge_method=S256, ...); empty when the
	// server needed no authorization.
	AuthURL string
	// Log is node's stderr, for failure messages.
	Log string
}

// RunClient runs the SDK's Client with a StreamableHTTPClientTransport and
// an in-memory OAuthClientProvider (node/client.mjs) against o.ServerURL:
// it connects (initialize), authorizes through o.Authorize when the server
// answers 401 (see the package documentation for what the SDK requests),
// connects again with its tokens, calls the tool whoami and returns its
// output with the client's registration and tokens. Without node or the
// SDK the test skips, or fails when CI=true.
//
// It returns an error when the SDK fails (the error carries node's stderr),
// when Authorize fails or its redirect carries an error or a wrong state,
// when the SDK asks for authorization a second time (a 401 after
// finishAuth), when ctx ends or the timeout passes. The Result is never
// nil: on error it has at least Log and, once the SDK built one, AuthURL.
// node is killed when RunClient returns, and in any case when the test
// ends.
func RunClient(t testing.TB, ctx context.Context, o ClientOptions) (*Result, error) {
	t.Helper()
	node := findNode(t)
	if o.ServerURL == "" {
		t.Fatal("mcptest: RunClient needs a ServerURL")
	}
	if o.RedirectURL == "" {
		_, port, _ := net.SplitHostPort(peers.FreeAddr(t))
		o.RedirectURL = "http://127.0.0.1:" + port + "/callback"
	}
	if o.ClientName == "" {
		o.ClientName = "mcptest client"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	cfg, err := json.Marshal(map[string]string{
		"serverUrl":   o.ServerURL,
		"redirectUrl": o.RedirectURL,
		"clientName":  o.ClientName,
		"scope":       o.Scope,
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs", string(cfg))
	cmd.Dir = Dir()
	cmd.Env = append(os.Environ(), "HOME="+Dir())
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	cmd.Stdout = outW
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	res := &Result{}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("mcptest: start node client.mjs: %w", err)
	}

	// Lines of stdout go to lines until done; the rest is drained so that
	// node never blocks on a full pipe.
	lines := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
			}
		}
		_, _ = io.Copy(io.Discard, outR)
	}()
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = outW.Close()
		exited <- err
	}()
	var exitErr error
	waited := false
	wait := func() {
		if !waited {
			exitErr, waited = <-exited, true
		}
	}
	stop := func() {
		cancel()
		close(done)
		wait()
		res.Log = stderr.String()
	}
	t.Cleanup(func() { cancel() }) // RunClient itself waits for node
	fail := func(format string, args ...any) (*Result, error) {
		stop()
		err := fmt.Errorf("mcptest: "+format, args...)
		if res.Log != "" {
			err = fmt.Errorf("%w\nnode stderr:\n%s", err, res.Log)
		}
		return res, err
	}

	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return fail("client: %v", context.Cause(ctx))
		}
		if !ok {
			wait()
			if ctx.Err() != nil {
				return fail("client: %v", context.Cause(ctx))
			}
			return fail("client exited without a result: %v", exitErr)
		}
		var msg struct {
			Authorize *string         `json:"authorize"`
			Error     *string         `json:"error"`
			Result    json.RawMessage `json:"result"`
			Client    *struct {
				ID     string `json:"client_id"`
				Secret string `json:"client_secret"`
			} `json:"client"`
			Tokens *struct {
				Access  string `json:"access_token"`
				Refresh string `json:"refresh_token"`
			} `json:"tokens"`
			AuthorizeURL string `json:"authorizeUrl"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &msg) != nil {
			stderr.WriteString("stdout: " + line + "\n")
			continue
		}
		switch {
		case msg.Error != nil:
			return fail("client: %s", *msg.Error)
		case msg.Authorize != nil:
			if res.AuthURL != "" {
				return fail("the SDK asks for authorization again after finishAuth: %s", *msg.Authorize)
			}
			res.AuthURL = *msg.Authorize
			if o.Authorize == nil {
				return fail("the server requires authorization, but ClientOptions.Authorize is nil (authorization URL %s)", res.AuthURL)
			}
			code, err := callback(res.AuthURL, o.Authorize)
			if err != nil {
				return fail("%v", err)
			}
			b, _ := json.Marshal(map[string]string{"code": code})
			if _, err := stdin.Write(append(b, '\n')); err != nil {
				return fail("write the code to node: %v", err)
			}
		case msg.Result != nil:
			if err := json.Unmarshal(msg.Result, &res.Headers); err != nil {
				return fail("whoami result %s: %v", msg.Result, err)
			}
			if msg.Client != nil {
				res.ClientID, res.ClientSecret = msg.Client.ID, msg.Client.Secret
			}
			if msg.Tokens != nil {
				res.AccessToken, res.RefreshToken = msg.Tokens.Access, msg.Tokens.Refresh
			}
			if res.AuthURL == "" {
				res.AuthURL = msg.AuthorizeURL
			}
			close(done)
			select {
			case exitErr = <-exited:
				waited = true
			case <-ctx.Done():
				cancel()
				wait()
			}
			res.Log = stderr.String()
			if exitErr != nil && ctx.Err() == nil {
				return res, fmt.Errorf("mcptest: client exited with %v after its result\nnode stderr:\n%s", exitErr, res.Log)
			}
			return res, nil
		default:
			stderr.WriteString("stdout: " + line + "\n")
		}
	}
}

// callback runs authorize for authURL and returns the code of the redirect
// it ends at, after checking its state and error parameters.
func callback(authURL string, authorize func(string) (string, error)) (string, error) {
	au, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("authorization URL %q: %v", authURL, err)
	}
	cb, err := authorize(authURL)
	if err != nil {
		return "", fmt.Errorf("Authorize(%s): %w", authURL, err)
	}
	cu, err := url.Parse(cb)
	if err != nil {
		return "", fmt.Errorf("Authorize returned %q: %v", cb, err)
	}
	q := cu.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("authorization failed: redirect %s: error %q: %s", cb, e, q.Get("error_description"))
	}
	if want := au.Query().Get("state"); want != "" && q.Get("state") != want {
		return "", fmt.Errorf("redirect %s: state %q, want %q", cb, q.Get("state"), want)
	}
	code := q.Get("code")
	if code == "" {
		return "", errors.New("redirect " + cb + " has no code")
	}
	return code, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
