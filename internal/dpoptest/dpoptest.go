// Package dpoptest runs npm's oauth4webapi (pinned at 3.8.9 in
// node/package-lock.json) as a DPoP client (RFC 9449) for tests: a node
// process that holds one DPoP key and oauth4webapi's DPoP handle, and does
// discovery, token requests and protected resource requests the way that
// library does them, so a test sees what a real DPoP client sends.
//
// It needs node on PATH and the library installed
// (npm ci --prefix internal/dpoptest/node). Without them a test skips,
// except when CI=true, where .ci/run must have installed them and their
// absence fails the test.
//
// What oauth4webapi 3.8.9 does, as the tests rely on it:
//   - Every token request and protected resource request carries a fresh
//     proof (jti of 32 random bytes, iat now plus the client's clockSkew,
//     htu = origin + path, no query; ath on resource requests only) signed
//     with the key; the proof's jwk is the public key only.
//   - It names EdDSA proofs "Ed25519" (RFC 9864), ES256 ones "ES256".
//   - It caches the DPoP-Nonce of every answer per origin (not per
//     endpoint) and puts it in the next proof for that origin; an answer
//     use_dpop_nonce (a 400 body at a token endpoint, a WWW-Authenticate
//     DPoP challenge at a resource) is an error the caller retries once
//     ([Client] does).
//   - It reports token_type in lower case and takes "bearer" as an answer
//     to a DPoP token request without complaint; the tests check the type.
//   - Its code exchange sends no resource; a refresh sends what it is
//     given.
//   - validateAuthResponse requires the iss parameter when the metadata
//     says authorization_response_iss_parameter_supported.
package dpoptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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

// Version is the version of oauth4webapi in node/package.json.
const Version = "3.8.9"

// Dir is the folder of client.mjs and its package.json.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "node")
}

// Timeout bounds each operation.
const Timeout = 30 * time.Second

// Sent is one HTTP request oauth4webapi sent, with what came back.
type Sent struct {
	Method, URL string
	// Scheme is the Authorization scheme ("DPoP", "Bearer", "Basic"), ""
	// without one.
	Scheme string
	// DPoP is the proof it carried, "" without one.
	DPoP            string
	Status          int
	DPoPNonce       string `json:"dpopNonce"`
	WWWAuthenticate string `json:"wwwAuthenticate"`
}

// Tokens is a token endpoint's answer as oauth4webapi took it.
type Tokens struct {
	AccessToken  string `json:"accessToken"`
	TokenType    string `json:"tokenType"`
	RefreshToken string `json:"refreshToken"`
	ExpiresIn    int    `json:"expiresIn"`
	// IDTokenSub is the sub of the ID token of a code exchange, validated
	// by oauth4webapi.
	IDTokenSub string `json:"idTokenSub"`
	Sent       []Sent `json:"-"`
}

// Response is a protected resource's answer.
type Response struct {
	Status int
	Body   string
	Sent   []Sent `json:"-"`
}

// Error is an operation oauth4webapi failed.
type Error struct {
	Message string
	// Code is oauth4webapi's error code (e.g. OAUTH_RESPONSE_BODY_ERROR),
	// OAuthError the server's error (e.g. invalid_grant) when it sent one.
	Code, OAuthError string
	Sent             []Sent
}

func (e *Error) Error() string { return "oauth4webapi: " + e.Message }

// Client is a running oauth4webapi client with its DPoP key. Its methods
// run one at a time.
type Client struct {
	t     testing.TB
	mu    sync.Mutex
	stdin io.WriteCloser
	lines chan string
	log   *lockedBuffer
	all   []Sent
}

// Start runs client.mjs with a DPoP key of alg (ES256, PS256, EdDSA, ...;
// "" is ES256) until the test ends. Without node or oauth4webapi the test
// skips, or fails when CI=true.
func Start(t testing.TB, alg string) *Client {
	t.Helper()
	node := peers.Find(t, false, "node", "nodejs")
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "oauth4webapi", "package.json")); err != nil {
		msg := "oauth4webapi is not installed; run: npm ci --prefix internal/dpoptest/node"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (.ci/run installs it)")
		}
		t.Skip(msg)
	}
	cfg, _ := json.Marshal(map[string]string{"alg": alg})
	cmd := exec.Command(node, "client.mjs", string(cfg))
	cmd.Dir = Dir()
	cmd.Env = append(os.Environ(), "HOME="+Dir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{t: t, stdin: stdin, lines: make(chan string), log: &lockedBuffer{}}
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("dpoptest: start node client.mjs: %v", err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		for range c.lines {
		}
	})
	if _, err := c.next(); err != nil {
		t.Fatalf("dpoptest: node did not start: %v", err)
	}
	return c
}

func (c *Client) next() (string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("node exited\nnode stderr:\n%s", c.log.String())
		}
		return line, nil
	case <-time.After(Timeout):
		return "", fmt.Errorf("no answer in %v\nnode stderr:\n%s", Timeout, c.log.String())
	}
}

// do runs one operation; out receives its "ok" object.
func (c *Client) do(op string, args map[string]any, out any) ([]Sent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg := map[string]any{"op": op}
	for k, v := range args {
		msg[k] = v
	}
	b, _ := json.Marshal(msg)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("dpoptest: write to node: %v", err)
	}
	for {
		line, err := c.next()
		if err != nil {
			c.t.Fatalf("dpoptest: %s: %v", op, err)
		}
		var ans struct {
			OK         json.RawMessage `json:"ok"`
			Error      *string         `json:"error"`
			Code       string          `json:"code"`
			OAuthError string          `json:"oauthError"`
			Sent       []Sent          `json:"sent"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &ans) != nil {
			c.log.WriteString("stdout: " + line + "\n")
			continue
		}
		c.all = append(c.all, ans.Sent...)
		if ans.Error != nil {
			return ans.Sent, &Error{Message: *ans.Error, Code: ans.Code, OAuthError: ans.OAuthError, Sent: ans.Sent}
		}
		if out != nil {
			if err := json.Unmarshal(ans.OK, out); err != nil {
				c.t.Fatalf("dpoptest: %s answer %s: %v", op, ans.OK, err)
			}
		}
		return ans.Sent, nil
	}
}

// All is every request sent so far.
func (c *Client) All() []Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Sent(nil), c.all...)
}

// Discover fetches the authorization server metadata of issuer (RFC 8414,
// path-inserted well-known URI) and returns it.
func (c *Client) Discover(issuer string) (map[string]any, error) {
	var out struct {
		Metadata map[string]any `json:"metadata"`
	}
	_, err := c.do("discover", map[string]any{"issuer": issuer}, &out)
	return out.Metadata, err
}

// ClientCredentials asks for a token with client_credentials (client
// secret basic) and a proof; scope and resource are sent when not "".
func (c *Client) ClientCredentials(id, secret, scope, resource string) (*Tokens, error) {
	return c.tokens("clientCredentials", map[string]any{"clientId": id, "clientSecret": secret, "scope": scope, "resource": resource})
}

func (c *Client) tokens(op string, args map[string]any) (*Tokens, error) {
	var t Tokens
	sent, err := c.do(op, args, &t)
	t.Sent = sent
	if err != nil {
		return &t, err
	}
	return &t, nil
}

// AuthRequest is an authorization request of a client without a secret.
type AuthRequest struct {
	ClientID, RedirectURI, Scope, Resource string
	// DPoPJKT sends dpop_jkt, the thumbprint of the client's key (RFC 9449
	// §10).
	DPoPJKT bool
}

// AuthorizationURL builds the authorization URL of an authorization code
// request with PKCE (S256) and state; [Client.ExchangeCode] redeems its
// code.
func (c *Client) AuthorizationURL(r AuthRequest) string {
	var out struct {
		URL string `json:"url"`
	}
	if _, err := c.do("authorizationURL", map[string]any{"clientId": r.ClientID, "redirectUri": r.RedirectURI,
		"scope": r.Scope, "resource": r.Resource, "dpopJkt": r.DPoPJKT}, &out); err != nil {
		c.t.Fatal(err)
	}
	return out.URL
}

// ExchangeCode validates the redirect back (state, iss, error) and
// redeems its code with a proof.
func (c *Client) ExchangeCode(callbackURL string) (*Tokens, error) {
	return c.tokens("exchange", map[string]any{"callbackUrl": callbackURL})
}

// Refresh redeems the refresh token of the last token answer with a
// proof; resource is sent when not "".
func (c *Client) Refresh(resource string) (*Tokens, error) {
	return c.tokens("refresh", map[string]any{"resource": resource})
}

// Call makes a protected resource request with the access token of the
// last token answer and a fresh proof, retried once on use_dpop_nonce.
// A refusal is a Response (with its status), not an error.
func (c *Client) Call(method, url, body string) (*Response, error) {
	var r Response
	sent, err := c.do("call", map[string]any{"method": method, "url": url, "body": body}, &r)
	r.Sent = sent
	return &r, err
}

// Proof variants.
const (
	ThisKey  = ""         // the client's key, as it signs every proof
	OtherKey = "otherKey" // another key of the same algorithm
	Stale    = "stale"    // iat five minutes back (oauth4webapi's clockSkew)
	NoATH    = "noAth"    // without ath
)

// Proof returns a proof oauth4webapi makes for a protected resource
// request of method to url with accessToken ("" is the last token
// answer's), without sending it. Proofs of the variants other than
// ThisKey carry the origin's last nonce too, so they are wrong in one way
// only.
func (c *Client) Proof(method, url, accessToken, variant string) string {
	var out struct {
		Proof string `json:"proof"`
	}
	if _, err := c.do("proof", map[string]any{"method": method, "url": url, "accessToken": accessToken, "variant": variant}, &out); err != nil {
		c.t.Fatal(err)
	}
	return out.Proof
}

// JKT is the RFC 7638 thumbprint of the client's key, as oauth4webapi
// computes it.
func (c *Client) JKT() string {
	var out struct {
		JKT string `json:"jkt"`
	}
	if _, err := c.do("jkt", nil, &out); err != nil {
		c.t.Fatal(err)
	}
	return out.JKT
}

// Log is node's stderr so far.
func (c *Client) Log() string { return c.log.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
