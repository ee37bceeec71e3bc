// Package p256 verifies ES256 signatures (ECDSA over NIST P-256 with
// SHA-256, RFC 7518 §3.4) faster than crypto/ecdsa, for keys that are used
// many times.
//
// Most of the cost of crypto/ecdsa.Verify is the scalar multiplication u₂·Q
// by the public key Q, which it recomputes from scratch, in constant time,
// on every call. Verification only ever handles public values (the public
// key, the message digest and the signature), so it need not be constant
// time, and the keys of a JWKS are few and long-lived. A [PublicKey]
// therefore holds a table of multiples of Q, one row per fixed-width window
// of the scalar (signed digits, so a row holds 1·B … 2ʷ⁻¹·B for its base
// B = 2ʷⁱ·Q), and computes u₂·Q with one point addition per window and no
// doubling. u₁·G uses the precomputed base-point table of filippo.io/nistec,
// whose point arithmetic (complete addition formulas) this package builds on.
//
// The package verifies only: it never signs, and nothing secret ever passes
// through it, which is what makes its variable-time arithmetic acceptable.
// [PublicKey.Verify] follows SEC 1 §4.1.4 step by step and is tested
// differentially against crypto/ecdsa.Verify (known answers, constructed edge
// cases and a fuzz target), so it accepts exactly the signatures crypto/ecdsa
// accepts, for r and s given as the two 32-byte halves of a JWS signature.
//
// A table takes about 216 KiB and 0.65 ms to build: the caller builds one
// per key and keeps it with the key (package jwks does, in the key set).
package p256
