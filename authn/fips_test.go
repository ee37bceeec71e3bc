package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/portcullis-dev/portcullis/jwks"
)

// TestFIPSModeStaysInTheModule: with GODEBUG=fips140=on every signature
// check goes to the Go Cryptographic Module (through golang-jwt), never to
// internal/p256 or internal/rsaverify. The check runs in a child process,
// since the mode is chosen at start-up.
func TestFIPSModeStaysInTheModule(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jwks.Encode([]jwks.Key{{ID: "rsa", Public: &rk.PublicKey}, {ID: "ec", Public: &ek.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwks.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, ecKey := set.Lookup("rsa")[0], set.Lookup("ec")[0]
	_, rsDone := verifyFast("RS256", jwt.SigningMethodRS256, "a.b", make([]byte, 256), rsaKey)
	_, esDone := verifyFast("ES256", jwt.SigningMethodES256, "a.b", make([]byte, 64), ecKey)
	if os.Getenv("PORTCULLIS_FIPS_CHILD") == "1" {
		if !fips140.Enabled() || fastCrypto {
			t.Fatalf("fips140 enabled %v, fast paths %v", fips140.Enabled(), fastCrypto)
		}
		if rsDone {
			t.Error("RS256 checked outside the module")
		}
		if esDone {
			t.Error("ES256 checked outside the module")
		}
		return
	}
	if fastCrypto == fips140.Enabled() {
		t.Fatalf("fast paths %v with fips140 enabled %v", fastCrypto, fips140.Enabled())
	}
	if !fips140.Enabled() && (!rsDone || !esDone) {
		t.Fatalf("outside FIPS mode the keys' precomputed verifiers were not used: RS256 %v, ES256 %v", rsDone, esDone)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSModeStaysInTheModule$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on", "PORTCULLIS_FIPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSModeStaysInTheModule") {
		t.Fatalf("in FIPS 140-3 mode: %v\n%s", err, out)
	}
}
