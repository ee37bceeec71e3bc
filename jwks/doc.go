// Package jwks holds the public keys portcullis verifies token signatures
// with: [Parse] turns a JSON Web Key Set (RFC 7517 §5) into an immutable
// [Set], and [Remote] keeps an issuer's key set fetched, cached and refreshed,
// refetching when a token names a key ID it has not seen yet (OpenID Connect
// Core §10.1.1).
//
// Only public signature keys leave this package: RSA of at least 2048 bits,
// ECDSA on P-256, P-384 or P-521, and Ed25519. Everything else in a key set
// is skipped, never an error, as RFC 7517 §5 asks.
package jwks
