// Package faults_test puts Toxiproxy (github.com/Shopify/toxiproxy/v2,
// in-process) between portcullis and each of its dependencies — the
// issuers' JWKS and discovery endpoints, Redis, the upstream — and abusive
// clients in front of it (idle floods, slowloris, stalled readers), and checks
// that each fault ends the way faults/README.md says: fast, clearly, and
// with nothing half-done.
package faults_test
