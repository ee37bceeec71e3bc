package jwks_test

import (
	"fmt"

	"github.com/portcullis-dev/portcullis/jwks"
)

func ExampleParse() {
	// A key set as an issuer serves it at its jwks_uri. The second key is
	// for encryption and is skipped.
	data := []byte(`{"keys":[
		{"kty":"EC","crv":"P-256","kid":"2025-01","alg":"ES256","use":"sig",
		 "x":"JfbsGrYFy5Ts67tyNf4_uNfxSKblgO2ahrfuP8r7kfA",
		 "y":"7wvtfXGbOgqZNnu_AAQKX0KrVLIJkzCUeSOkjZHqVMo"},
		{"kty":"OKP","crv":"Ed25519","kid":"enc-1","use":"enc",
		 "x":"kaDaK4tPv8MS4L-elte2mB8n3oFam1t7BpS1kUzACt4"}
	]}`)
	set, err := jwks.Parse(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("usable keys:", set.Len())
	for _, k := range set.Lookup("2025-01") {
		fmt.Printf("%s %s %T\n", k.ID, k.Algorithm, k.Public)
	}
	// Output:
	// usable keys: 1
	// 2025-01 ES256 *ecdsa.PublicKey
}
