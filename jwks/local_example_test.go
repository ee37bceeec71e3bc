package jwks_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/portcullis-dev/portcullis/jwks"
)

func ExampleOpenKeyRing() {
	// An in-memory ring (no KeyDir) rotating daily. On a real issuer, set
	// KeyDir so keys survive restarts, and run ring.Run(ctx) in a goroutine.
	// A fixed clock keeps the example's max-age exact.
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ring, err := jwks.OpenKeyRing(jwks.KeyRingConfig{
		RotateEvery: 24 * time.Hour,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	active := ring.Active()
	fmt.Println("signs with:", active.Algorithm)
	fmt.Println("published keys:", len(ring.Public())) // the active and the next key

	// The gateway verifies the issuer's tokens with the same ring.
	keys, err := ring.Keys(context.Background(), active.ID)
	fmt.Println("verification keys for its kid:", len(keys), err)

	rec := httptest.NewRecorder()
	ring.JWKSHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/jwks", nil))
	fmt.Println(rec.Header().Get("Cache-Control"))
	// Output:
	// signs with: ES256
	// published keys: 2
	// verification keys for its kid: 1 <nil>
	// public, max-age=86400
}
