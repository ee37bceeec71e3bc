package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/serve"
)

// builtinConfig runs the built-in issuer under /idp beside a catch-all
// route that trusts it. %[1]s is the gateway's base URL, %[2]s the upstream.
const builtinConfig = `
server: {listen: "127.0.0.1:18081"}
admin: {listen: off}
issuers:
  - issuer: "%[1]s/idp"
    audiences: [demo-api]
    algorithms: [ES256]
routes:
  - name: app
    path_prefix: /
    upstream: %[2]q
    require_scopes: [read]
    forward_headers: {X-Auth-Request-User: sub}
issuer:
  url: "%[1]s/idp"
  clients:
    - id: machine
      secret: machine-secret-0123456789
      grant_types: [client_credentials]
      scopes: [read, write]
      audiences: [demo-api]
  scopes: {read: "Read your data", write: "Change your data"}
`

func TestBuiltinIssuerTokensPassTheGateway(t *testing.T) {
	up := upstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg, err := config.Parse("builtin.yaml", []byte(fmt.Sprintf(builtinConfig, base, up)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := serve.New(ctx, serve.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(testgw.NewLogWriter(t, nil), nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })

	// The issuer answers on its path even though a catch-all route exists.
	res, err := http.Get(base + "/idp/.well-known/openid-configuration")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("discovery through the gateway: %v %v", res, err)
	}
	res.Body.Close()
	if !gw.Ready() {
		t.Fatal("gateway not ready with only in-process keys")
	}

	tokenReq := func(path string, form url.Values) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", base+"/idp/"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("machine", "machine-secret-0123456789")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := tokenReq("token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %d %s", res.StatusCode, body)
	}

	call := func() *http.Response {
		req, _ := http.NewRequest("GET", base+"/orders", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	res = call()
	if res.StatusCode != 200 {
		t.Fatalf("issuer's token rejected by the gateway: %d %s", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	var got echoed
	_ = json.NewDecoder(res.Body).Decode(&got)
	if got.Headers["X-Auth-Request-User"][0] != "machine" {
		t.Errorf("identity %v", got.Headers)
	}

	// Revoked at the issuer: rejected by the gateway on the next request.
	if res, body := tokenReq("revoke", url.Values{"token": {tok.AccessToken}}); res.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	res = call()
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "revoked") {
		t.Fatalf("revoked token: %d %s", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}
