package jwks_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/jwks"
)

func TestKeyRingFromKeyFiles(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, name := range []string{"current.pem", "previous.pem"} {
		s, err := jwks.GenerateKey("ES256")
		if err != nil {
			t.Fatal(err)
		}
		pem, _ := jwks.MarshalPrivateKey(s)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem, 0o400); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	// Two replicas opening the same mounted files agree on everything.
	a, err := jwks.OpenKeyRing(jwks.KeyRingConfig{KeyFiles: files})
	if err != nil {
		t.Fatal(err)
	}
	b, err := jwks.OpenKeyRing(jwks.KeyRingConfig{KeyFiles: files})
	if err != nil {
		t.Fatal(err)
	}
	if a.Active().ID != b.Active().ID || len(a.Public()) != 2 || len(b.Public()) != 2 {
		t.Fatalf("replicas disagree: %s/%d vs %s/%d", a.Active().ID, len(a.Public()), b.Active().ID, len(b.Public()))
	}
	for _, k := range a.Public() {
		if keys, err := b.Keys(context.Background(), k.ID); err != nil || len(keys) != 1 {
			t.Errorf("kid %s not published by the other replica: %v", k.ID, err)
		}
	}
	if changed, err := a.Rotate(); changed || err != nil {
		t.Errorf("a ring from key files rotated: %v %v", changed, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the key ring wrote into the mounted directory: %d entries", len(entries))
	}
	if _, err := jwks.OpenKeyRing(jwks.KeyRingConfig{KeyFiles: files, KeyDir: dir}); err == nil {
		t.Error("key files with a key_dir accepted")
	}
	loose := filepath.Join(dir, "loose.pem")
	data, _ := os.ReadFile(files[0])
	_ = os.WriteFile(loose, data, 0o644)
	if _, err := jwks.OpenKeyRing(jwks.KeyRingConfig{KeyFiles: []string{loose}}); err == nil {
		t.Error("a key file readable by others accepted")
	}
	// A Secret mounted with an fsGroup is readable by that group: that is
	// how a non-root pod reads it. Group write or any access by others is
	// still refused.
	for mode, ok := range map[os.FileMode]bool{0o440: true, 0o640: true, 0o400: true, 0o660: false, 0o604: false, 0o444: false} {
		if err := os.Chmod(loose, mode); err != nil {
			t.Fatal(err)
		}
		_, err := jwks.OpenKeyRing(jwks.KeyRingConfig{KeyFiles: []string{loose}})
		if (err == nil) != ok {
			t.Errorf("key file mode %04o: err %v, want accepted %v", mode, err, ok)
		}
	}
}
