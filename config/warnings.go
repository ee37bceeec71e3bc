package config

import (
	"fmt"
	"slices"
)

// Warnings lists what in a valid configuration works, but probably not
// as meant, each as a problem of [Error]'s form. portcullis check prints
// them; serve logs them.
func (c *Config) Warnings() []*Error {
	var out []*Error
	warn := func(key, format string, args ...any) {
		out = append(out, &Error{File: c.file, Line: c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	// Signing out through the built-in issuer comes back only to a
	// registered address. A first-party client has the gateway's own
	// registered without configuration; any other needs it listed.
	if l, b := c.Login, c.Issuer; c.LoginAtBuiltinIssuer() {
		for i, cl := range b.Clients {
			if cl.ID != l.ClientID || cl.FirstParty || slices.Contains(cl.PostLogoutRedirectURIs, l.PostLogoutRedirectURL) {
				continue
			}
			warn("login.post_logout_redirect_url", "%s is not registered for issuer.clients[%d] %q (line %d): signing out ends the issuer's session, but the browser stays on the issuer's signed-out page; add it to that client's post_logout_redirect_uris, or make the client first_party",
				l.PostLogoutRedirectURL, i, cl.ID, c.line(indexPath("issuer.clients", i)))
		}
	}
	if b := c.Issuer; b != nil && b.Registration.Enabled && b.Registration.InitialAccessToken == "" {
		warn("issuer.registration.enabled", "is true without initial_access_token: anyone who can reach the issuer can register clients; set initial_access_token (from the environment) to require it as a bearer token to register")
	}
	return out
}
