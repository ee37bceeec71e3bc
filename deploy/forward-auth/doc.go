// Package forwardauth holds the example configurations of nginx, Caddy,
// Traefik and Envoy in front of an app with portcullis as their
// forward-auth service, and the tests that run each against the real proxy.
// The files users copy are the files the tests run.
package forwardauth
