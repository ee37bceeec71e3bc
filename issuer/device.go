package issuer

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Device cookies (OWASP's "device cookie" scheme against lockouts): a
// browser that has completed a sign-in holds a JWT, signed like the
// issuer's tokens, naming the users it signed in as. Their failed sign-ins
// from that browser lock no one, and a lock on a user never refuses it.
// The cookie names a browser, not a session: signing out keeps it.
const (
	deviceCookie = "portcullis_idp_device"
	deviceType   = "device+jwt"
	// deviceUsers bounds the users one browser is remembered for.
	deviceUsers = 8
)

// deviceUsersOf returns the usernames (lower case) r's device cookie
// names, nil without a valid one.
func (i *Issuer) deviceUsersOf(ctx context.Context, r *http.Request) []string {
	c, err := r.Cookie(i.cookieName(deviceCookie))
	if err != nil || len(c.Value) > 4096 {
		return nil
	}
	claims, err := i.verifyOwn(ctx, c.Value, deviceType, true)
	if err != nil {
		return nil
	}
	list, _ := claims["users"].([]any)
	out := make([]string, 0, len(list))
	for _, u := range list {
		if s, ok := u.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// knownDevice reports whether r comes from a browser that has signed in as
// username before.
func (i *Issuer) knownDevice(ctx context.Context, r *http.Request, username string) bool {
	return slices.Contains(i.deviceUsersOf(ctx, r), strings.ToLower(username))
}

// rememberDevice gives the browser of r, which has just signed in as
// username, a device cookie naming it first, then the others it named.
func (i *Issuer) rememberDevice(ctx context.Context, w http.ResponseWriter, r *http.Request, username string) {
	user := strings.ToLower(username)
	users := []string{user}
	for _, u := range i.deviceUsersOf(ctx, r) {
		if u != user && len(users) < deviceUsers {
			users = append(users, u)
		}
	}
	now := i.now()
	tok, err := i.sign(jwt.MapClaims{
		"iss": i.url, "users": users, "iat": now.Unix(), "exp": now.Add(i.cfg.DeviceTTL).Unix(), "jti": randomToken(),
	}, deviceType)
	if err != nil {
		i.log.Warn("device cookie not signed", "err", err)
		return
	}
	http.SetCookie(w, i.cookie(deviceCookie, tok, i.cfg.DeviceTTL, http.SameSiteStrictMode))
}
