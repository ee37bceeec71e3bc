package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/proxy"
)

// demoConfig is the gateway configuration of the demo; %s are the key set
// and upstream URLs.
const demoConfig = `
server: {listen: "%s"}
admin: {listen: "%s"}
log: {level: info, format: text}
issuers:
  - issuer: "https://demo.portcullis.invalid"
    jwks_uri: "%s"
    audiences: [demo-api]
    algorithms: [ES256]
routes:
  - name: public
    path_prefix: /public
    upstream: "%s"
    auth: public
  - name: app
    path_prefix: /
    upstream: "%s"
    require_scopes: [read]
    forward_headers:
      X-Auth-Request-User: sub
      X-Auth-Request-Email: email
      X-Auth-Request-Groups: groups
`

// demo runs a key server, an upstream that echoes what it receives, and the
// gateway in front of it, all on loopback, and prints a token to try.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address")
	adminAddr := fs.String("admin", "127.0.0.1:9090", "admin address")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	const kid = "demo-1"
	set, err := jwks.Encode([]jwks.Key{{ID: kid, Algorithm: "ES256", Public: &key.PublicKey}})
	if err != nil {
		return err
	}
	keysURL, stopKeys, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(set)
	}))
	if err != nil {
		return err
	}
	defer stopKeys()
	upURL, stopUp, err := serveLoopback(http.HandlerFunc(echo))
	if err != nil {
		return err
	}
	defer stopUp()

	yml := fmt.Sprintf(demoConfig, *listen, *adminAddr, keysURL+"/jwks.json", upURL, upURL)
	cfg, err := config.Parse("demo.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: %w (try --listen 127.0.0.1:0)", err)
	}
	adminLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo: %w (try --admin 127.0.0.1:0)", err)
	}
	tok, err := demoToken(key, kid)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	gw, err := proxy.New(ctx, proxy.Config{Config: cfg, Logger: log})
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, `portcullis demo

  gateway   %[1]s/            (protected: needs a token with scope "read")
            %[1]s/public/     (public)
  admin     http://%[2]s/metrics  /healthz  /readyz

  A token for alice, valid for one hour:

    TOKEN=%[3]s

  Try:
    curl -i %[1]s/                                        # 401, no token
    curl -i -H "Authorization: Bearer $TOKEN" %[1]s/hello  # 200, the upstream echoes alice's identity
    curl -i -H "X-Auth-Request-User: mallory" %[1]s/public/  # the spoofed header never arrives

  Ctrl-C stops the demo.
`, base, adminLn.Addr().String(), tok)
	return gw.Serve(ctx, ln, adminLn)
}

// serveLoopback serves h on a fresh loopback port.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// demoToken mints alice's token.
func demoToken(key *ecdsa.PrivateKey, kid string) (string, error) {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss":    "https://demo.portcullis.invalid",
		"sub":    "alice",
		"aud":    "demo-api",
		"email":  "alice@example.com",
		"groups": []string{"admin", "dev"},
		"scope":  "openid read",
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	})
	t.Header["kid"] = kid
	t.Header["typ"] = "at+jwt"
	return t.SignedString(key)
}

// echo answers with what the upstream received: method, path and headers.
func echo(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	hdrs := make(map[string]string, len(names))
	for _, k := range names {
		hdrs[k] = strings.Join(r.Header[k], ", ")
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"method": r.Method, "path": r.URL.RequestURI(), "headers": hdrs})
}
