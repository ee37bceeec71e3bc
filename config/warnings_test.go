package config_test

import (
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
)

const signOutConfig = `server: {public_url: "http://localhost:8080"}
issuers:
  - issuer: http://localhost:8080/idp
    audiences: [api]
issuer:
  url: http://localhost:8080/idp
  clients:
    - id: portcullis
      secret: a-client-secret-of-some-length
      FIRST
      redirect_uris: [http://localhost:8080/oauth2/callback]
      audiences: [api]
login:
  issuer: http://localhost:8080/idp
  client_id: portcullis
  client_secret: a-client-secret-of-some-length
  cookie: {secret: a-cookie-secret-of-at-least-32-bytes!!}
routes:
  - name: app
    upstream: http://127.0.0.1:3000
`

func TestWarnSignOutNotRegistered(t *testing.T) {
	for first, want := range map[string]string{
		"first_party: true":  "",
		"first_party: false": `t.yaml:13: login.post_logout_redirect_url: http://localhost:8080/oauth2/signed_out is not registered for issuer.clients[0] "portcullis" (line 8)`,
	} {
		cfg, err := config.Parse("t.yaml", []byte(strings.Replace(signOutConfig, "FIRST", first, 1)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Login.PostLogoutRedirectURL != "http://localhost:8080/oauth2/signed_out" {
			t.Errorf("default post_logout_redirect_url with the built-in issuer: %s", cfg.Login.PostLogoutRedirectURL)
		}
		ws := cfg.Warnings()
		switch {
		case want == "" && len(ws) > 0:
			t.Errorf("%s: warnings %v", first, ws)
		case want != "" && (len(ws) != 1 || !strings.HasPrefix(ws[0].Error(), want)):
			t.Errorf("%s: warnings %v, want %s…", first, ws, want)
		}
	}
}
