package serve_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyTheRootReadsConfig holds the layering: of the product's
// packages, only the command and this one import config; proxy, authn,
// oidcclient, issuer and jwks get their settings as values of their own.
func TestOnlyTheRootReadsConfig(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	const mod = "github.com/portcullis-dev/portcullis/"
	for _, pkg := range []string{"proxy", "authn", "oidcclient", "issuer", "jwks"} {
		out, err := exec.Command(gobin, "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == mod+"config" || dep == mod+"serve" {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
