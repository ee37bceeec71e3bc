package attack_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
)

// defaultsConfig is a valid configuration with browser login; %[1]s is the
// server section's extra keys, %[2]s the cookie secret(s), %[3]s extra
// cookie keys, %[4]s an extra issuer, %[5]s the public URL.
const defaultsConfig = `
server: {listen: "127.0.0.1:18092", public_url: %[5]q%[1]s}
admin: {listen: off}
issuers:
  - issuer: https://login.example.com
    audiences: [api]
%[4]s
login:
  issuer: https://login.example.com
  client_id: portcullis
  cookie: {secret: %[2]s%[3]s}
routes:
  - name: app
    path_prefix: /
    upstream: http://127.0.0.1:3000
`

func parseDefaults(server, secret, cookie, issuer, public string) error {
	yml := strings.NewReplacer("%[1]s", server, "%[2]s", secret, "%[3]s", cookie, "%[4]s", issuer, "%[5]q", `"`+public+`"`).Replace(defaultsConfig)
	_, err := config.Parse("defaults.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	return err
}

func TestSecureDefaults(t *testing.T) {
	const secret32 = `"0123456789abcdef0123456789abcdef"`
	hmac := func(alg, secret string) string {
		return "  - issuer: https://legacy.example\n    audiences: [legacy]\n    algorithms: [" + alg + "]\n    hmac_secret: \"" + secret + "\""
	}
	cases := []struct {
		name                                   string
		server, secret, cookie, issuer, public string
		errKey                                 string // "" when the file must be accepted
		known                                  string
	}{
		{"https public_url", "", secret32, "", "", "https://gw.example.com", "", ""},
		{"http on localhost", "", secret32, ", secure: false", "", "http://localhost:8080", "", ""},
		{"http on 127.0.0.2", "", secret32, ", secure: false", "", "http://127.0.0.2:8080", "", ""},
		{"http on [::1]", "", secret32, ", secure: false", "", "http://[::1]:8080", "", ""},
		{"http on a public host", "", secret32, "", "", "http://gw.example.com", "server.public_url", ""},
		{"http on a private address", "", secret32, "", "", "http://10.0.0.1:8080", "server.public_url", ""},
		{"http on 0.0.0.0", "", secret32, "", "", "http://0.0.0.0:8080", "server.public_url", ""},
		{"http on a name containing localhost", "", secret32, "", "", "http://localhost.evil.example", "server.public_url", ""},
		{"http on a public host with insecure_allow_http", ", insecure_allow_http: true", secret32, "", "", "http://gw.example.com", "", ""},
		{"cookie.secure false on a public host", "", secret32, ", secure: false", "", "https://gw.example.com", "login.cookie.secure", ""},
		{"cookie.secure false with insecure_allow_http", ", insecure_allow_http: true", secret32, ", secure: false", "", "http://gw.example.com", "", ""},
		{"cookie secret of 31 bytes", "", `"0123456789abcdef0123456789abcde"`, "", "", "https://gw.example.com", "login.cookie.secret", ""},
		{"cookie secret empty", "", `""`, "", "", "https://gw.example.com", "login.cookie.secret", ""},
		{"cookie secret list with a short key", "", `[` + secret32 + `, "short"]`, "", "", "https://gw.example.com", "login.cookie.secret", ""},
		{"HS256 secret of 31 bytes", "", secret32, "", hmac("HS256", strings.Repeat("s", 31)), "https://gw.example.com", "hmac_secret", ""},
		{"HS256 secret of 32 bytes", "", secret32, "", hmac("HS256", strings.Repeat("s", 32)), "https://gw.example.com", "", ""},
		{"HS384 secret of 47 bytes", "", secret32, "", hmac("HS384", strings.Repeat("s", 47)), "https://gw.example.com", "hmac_secret", ""},
		{"HS512 secret of 63 bytes", "", secret32, "", hmac("HS512", strings.Repeat("s", 63)), "https://gw.example.com", "hmac_secret", ""},
		{"alg none in an allow-list", "", secret32, "", "  - issuer: https://other.example\n    audiences: [api]\n    algorithms: [none]", "https://gw.example.com", "algorithms", ""},
		{"HS256 without a secret", "", secret32, "", "  - issuer: https://other.example\n    audiences: [api]\n    algorithms: [HS256]", "https://gw.example.com", "algorithms", ""},
		{"issuer over plain http on a public host", "", secret32, "", "  - issuer: http://other.example\n    audiences: [api]", "https://gw.example.com", "issuers[1].issuer", ""},
		{"jwks_uri over plain http on a public host", "", secret32, "", "  - issuer: https://other.example\n    jwks_uri: http://other.example/jwks\n    audiences: [api]", "https://gw.example.com", "issuers[1].jwks_uri", ""},
		{"issuer over plain http on loopback", "", secret32, "", "  - issuer: http://127.0.0.1:9999\n    audiences: [api]", "https://gw.example.com", "", ""},
		{"cookie name with __Host- prefix", "", secret32, ", name: __Host-x", "", "https://gw.example.com", "login.cookie.name", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := parseDefaults(c.server, c.secret, c.cookie, c.issuer, c.public)
			var problems []string
			switch {
			case c.errKey == "" && err != nil:
				problems = append(problems, fmt.Sprintf("refused: %v", err))
			case c.errKey != "" && err == nil:
				problems = append(problems, "accepted; want an error at "+c.errKey)
			case c.errKey != "" && !strings.Contains(err.Error(), c.errKey):
				problems = append(problems, fmt.Sprintf("error %v does not name %s", err, c.errKey))
			}
			knownOr(t, c.known, problems)
			if err != nil && (strings.Contains(err.Error(), "0123456789abcdef") || strings.Contains(err.Error(), strings.Repeat("s", 31))) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
