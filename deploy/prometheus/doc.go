// Package prometheus holds Prometheus alert rules for portcullis
// (portcullis.rules.yaml) and their unit tests
// (portcullis.rules.test.yaml).
//
// The package has no code. Its test runs promtool from the Prometheus
// release on PATH: "promtool check rules" and "promtool test rules" on the
// files, and "promtool check metrics" on what a gateway's /metrics serves
// after a workload that touches every metric family: proxied, refused and
// forward-auth requests, a browser sign-in and failed ones at the built-in
// issuer, and an unreachable upstream.
package prometheus
