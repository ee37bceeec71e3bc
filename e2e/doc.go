// Package e2e holds the end-to-end tests that drive a real browser through
// the gateway: a protected page, the built-in issuer's login page, the
// callback and back, with sessions, sign-out and refresh as a user sees them.
//
// The tests need a Chromium binary on PATH ("chromium" or
// "chromium-browser"). Without one they skip, except when CI=true, where they
// fail. Screenshots go to the directory named by PORTCULLIS_ARTIFACTS, or to
// a temporary directory removed after the test.
package e2e
