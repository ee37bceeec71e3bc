package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/jwks"
)

func TestCheck(t *testing.T) {
	t.Setenv("PORTCULLIS_CLIENT_SECRET", "a-client-secret-for-tests")
	t.Setenv("PORTCULLIS_COOKIE_SECRET", "a-cookie-secret-for-tests-0123456789abcdef")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"example is valid", []string{"check", "--config", "../../config.example.yaml"}, 0, []string{"ok (2 routes, 1 issuer)", "back-channel logout URI: http://localhost:8080/oauth2/backchannel_logout (the built-in issuer's client portcullis has it registered)",
			"route app: resource http://localhost:8080, metadata at http://localhost:8080/.well-known/oauth-protected-resource\n"}, nil},
		{"broken config: every error with file:line", []string{"check", "--config", "testdata/broken.yaml"}, 1, nil, []string{
			"testdata/broken.yaml:2: server.listen:",
			"testdata/broken.yaml:5: issuers[0].algorithms",
			"testdata/broken.yaml:8: routes[0].upstream:",
			"testdata/broken.yaml:9:",
			"colour",
		}},
		{"missing file", []string{"check", "--config", "testdata/nope.yaml"}, 1, nil, []string{"nope.yaml"}},
		{"no flag", []string{"check"}, 2, nil, []string{"usage"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{"unknown command"}},
		{"version", []string{"version"}, 0, []string{"portcullis"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), c.args, &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			if strings.Contains(errb.String(), "goroutine") || strings.Contains(errb.String(), "panic") {
				t.Errorf("stack trace in output:\n%s", errb.String())
			}
		})
	}
}

func TestKeygenHashPasswordToken(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"keygen", "--alg", "EdDSA", "--out", dir + "/k.pem"}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %d %s", code, errb.String())
	}
	if fi, err := os.Stat(dir + "/k.pem"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	if code := run(context.Background(), []string{"keygen", "--alg", "none"}, &out, &errb); code == 0 {
		t.Error("keygen accepted alg none")
	}

	out.Reset()
	if code := runWith(context.Background(), []string{"hash-password", "--cost", "10"}, strings.NewReader("s3cret\n"), &out, &errb); code != 0 {
		t.Fatalf("hash-password: %d %s", code, errb.String())
	}
	if err := bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out.String())), []byte("s3cret")); err != nil {
		t.Errorf("hash does not verify: %v", err)
	}
	if code := runWith(context.Background(), []string{"hash-password"}, strings.NewReader(""), &out, &errb); code != 1 {
		t.Errorf("empty password: exit %d", code)
	}

	cfg := fmt.Sprintf(`
issuer:
  url: http://localhost:8080/idp
  signing: {key_dir: %q}
  clients:
    - id: machine
      secret: machine-secret-0123456789
      grant_types: [client_credentials]
      scopes: [read]
  scopes: {read: Read}
`, dir+"/keys")
	if err := os.WriteFile(dir+"/c.yaml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"token", "--config", dir + "/c.yaml", "--client", "machine", "--sub", "svc", "--scope", "read", "--ttl", "5m"}, &out, &errb); code != 0 {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token output %q", tok)
	}
	// The token verifies with the key ring the server would load.
	ring, err := jwks.OpenKeyRing(jwks.KeyRingConfig{KeyDir: dir + "/keys"})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		keys, err := ring.Keys(context.Background(), tk.Header["kid"].(string))
		if err != nil {
			return nil, err
		}
		return keys[0].Public, nil
	}); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if claims["sub"] != "svc" || claims["scope"] != "read" || claims["iss"] != "http://localhost:8080/idp" {
		t.Errorf("claims %v", claims)
	}
	if code := run(context.Background(), []string{"token", "--config", dir + "/c.yaml", "--client", "machine", "--sub", "svc", "--scope", "admin"}, &out, &errb); code != 1 {
		t.Errorf("scope beyond the client's: exit %d", code)
	}
}

func TestCheckCountsInWords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.yaml")
	if err := os.WriteFile(path, []byte("issuers:\n  - issuer: https://idp.example.com\n    audiences: [api]\nroutes:\n  - name: app\n    upstream: http://127.0.0.1:3000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok (1 route, 1 issuer)") {
		t.Errorf("check: %d %q %q", code, out.String(), errb.String())
	}
}
