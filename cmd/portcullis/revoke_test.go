package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// TestRevoke runs portcullis revoke against a running gateway with the
// built-in issuer: alice's session there ends, and the command says what
// ended; a wrong token or none configured is a clear error.
func TestRevoke(t *testing.T) {
	ln, pub := testgw.Listen(t)
	up := testgw.Upstream(t)
	yml := fmt.Sprintf(testgw.Login{}.YAML(), pub, up, testgw.AliceHash())
	yml = strings.Replace(yml, "admin: {listen: off}\n", "admin: {listen: \"127.0.0.1:9\", token: \"${ADMIN_TOKEN}\"}\n", 1)
	yml = strings.Replace(yml, "secure: false}\n", "secure: false}\n  backchannel_logout: true\n", 1)
	const token = "revoke-token-0123456789abcdef"
	gw := testgw.Start(t, testgw.Options{Listener: ln, Admin: true, Env: map[string]string{"ADMIN_TOKEN": token},
		Config: func(string) string { return yml }})
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}

	b := testgw.NewBrowser(t)
	if res, _ := b.Visit(pub, pub+"/page"); res.StatusCode != 200 {
		t.Fatalf("sign-in: %d", res.StatusCode)
	}
	revoke := func(tok string, args ...string) (int, string, string) {
		t.Setenv("ADMIN_TOKEN", tok)
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"revoke", "--config", path}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := revoke(token, "--sub", "alice", "--admin", gw.AdminURL)
	want := "sessions of alice ended\n  built-in issuer: 1 session(s) ended, refresh tokens revoked, back-channel logouts sent\n" +
		"  gateway: cookie sessions refused from their next request\n"
	if code != 0 || out != want {
		t.Fatalf("revoke: exit %d\n%s%s\nwant\n%s", code, out, errs, want)
	}
	if res, _ := b.Do("GET", pub+"/page", nil, nil); res.StatusCode != 302 {
		t.Fatalf("after revoke: %d, want a redirect to log in", res.StatusCode)
	}

	for _, tc := range []struct {
		name, token string
		args        []string
		code        int
		err         string
	}{
		{"wrong token", "another-token-0123456789", []string{"--sub", "alice", "--admin", gw.AdminURL}, 1,
			"portcullis: the gateway answered 401: send Authorization: Bearer with admin.token\n"},
		{"no sub", token, []string{"--admin", gw.AdminURL}, 2,
			"usage: portcullis revoke --config FILE --sub SUBJECT [--sid SID] [--admin URL]\n"},
		{"nothing listening", token, []string{"--sub", "alice", "--admin", "http://127.0.0.1:9"}, 1,
			"portcullis: the gateway's admin listener did not answer: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := revoke(tc.token, tc.args...)
			if code != tc.code || !strings.HasPrefix(errs, tc.err) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, errs, tc.code, tc.err)
			}
		})
	}

	// A configuration without admin.token says so.
	plain := filepath.Join(t.TempDir(), "plain.yaml")
	_ = os.WriteFile(plain, []byte(strings.Replace(yml, ", token: \"${ADMIN_TOKEN}\"", "", 1)), 0o600)
	var out2, errb bytes.Buffer
	if code := run(context.Background(), []string{"revoke", "--config", plain, "--sub", "alice"}, &out2, &errb); code != 1 ||
		!strings.Contains(errb.String(), "admin.token is not set") {
		t.Fatalf("without admin.token: exit %d %q", code, errb.String())
	}
}
