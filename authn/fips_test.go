package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFIPSModeStaysInTheModule: with GODEBUG=fips140=on every signature
// check goes to the Go Cryptographic Module (through golang-jwt), never to
// internal/p256 or internal/rsaverify. The check runs in a child process,
// since the mode is chosen at start-up.
func TestFIPSModeStaysInTheModule(t *testing.T) {
	if os.Getenv("PORTCULLIS_FIPS_CHILD") == "1" {
		if !fips140.Enabled() || fastCrypto {
			t.Fatalf("fips140 enabled %v, fast paths %v", fips140.Enabled(), fastCrypto)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if _, done := verifyRS("a.b", make([]byte, 256), crypto.SHA256, &rk.PublicKey); done {
			t.Error("RS256 checked outside the module")
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, done := verifyES256("a.b", make([]byte, 64), &ek.PublicKey); done {
			t.Error("ES256 checked outside the module")
		}
		return
	}
	if fastCrypto == fips140.Enabled() {
		t.Fatalf("fast paths %v with fips140 enabled %v", fastCrypto, fips140.Enabled())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSModeStaysInTheModule$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on", "PORTCULLIS_FIPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSModeStaysInTheModule") {
		t.Fatalf("in FIPS 140-3 mode: %v\n%s", err, out)
	}
}
