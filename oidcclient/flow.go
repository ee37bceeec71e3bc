package oidcclient

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/httpsec"
)

// loginState is what one login attempt keeps in its own short-lived cookie,
// so that several tabs can log in at once.
type loginState struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Redirect string `json:"r"`
}

// loginStateTTL bounds how long a login attempt may take.
const loginStateTTL = 10 * time.Minute

// stateCookie names the cookie of the attempt whose state is s.
func (c *Client) stateCookie(s string) string {
	if len(s) > 12 {
		s = s[:12]
	}
	return c.cfg.CookieName + "_login_" + s
}

// start begins a login: fresh PKCE verifier, state and nonce, remembered in
// an encrypted cookie bound to this attempt, then off to the provider.
func (c *Client) start(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		page(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET.")
		return
	}
	rd, ok := SafeRedirect(r.URL.Query().Get("rd"), c.cfg.PublicURL, c.cfg.AllowedRedirectHosts)
	if !ok {
		rd = c.cfg.PublicURL.String()
	}
	ep, err := c.discovered(r.Context())
	if err != nil {
		c.log.Warn("login unavailable", "err", err)
		w.Header().Set("Retry-After", "10")
		page(w, http.StatusServiceUnavailable, "Sign-in unavailable", "The sign-in service cannot be reached right now. Try again in a moment.")
		return
	}
	st := loginState{State: random(), Verifier: oauth2.GenerateVerifier(), Nonce: random(), Redirect: rd}
	b, _ := json.Marshal(st)
	if err := c.cfg.Cookies.Seal(w, r, c.stateCookie(st.State), b, loginStateTTL); err != nil {
		page(w, http.StatusInternalServerError, "Error", "The sign-in could not be started.")
		return
	}
	u := c.oauth2Config(ep).AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("nonce", st.Nonce))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// callback finishes a login: state (CSRF), code exchange with the verifier,
// id_token verification, the session cookie, and the redirect back.
func (c *Client) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > 128 {
		page(w, http.StatusBadRequest, "Sign-in failed", "The sign-in response carried no valid state. Start again from the page you wanted.")
		return
	}
	name := c.stateCookie(state)
	raw, err := c.cfg.Cookies.Open(r, name)
	c.cfg.Cookies.Clear(w, r, name) // one use, whatever happens next
	var st loginState
	if err != nil || json.Unmarshal(raw, &st) != nil ||
		subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		c.loginFailed(r, LoginFailureState, nil)
		page(w, http.StatusBadRequest, "Sign-in failed", "This sign-in has expired, was already completed, or was not started in this browser. Start again from the page you wanted.")
		return
	}
	if e := q.Get("error"); e != "" {
		c.loginFailed(r, LoginFailureProvider, nil, "error", e)
		page(w, http.StatusForbidden, "Sign-in failed", "The sign-in service answered: "+e+" "+q.Get("error_description"))
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != c.cfg.Issuer {
		// RFC 9207: a response from another issuer (mix-up attack).
		c.loginFailed(r, LoginFailureProvider, nil, "error", "unexpected iss")
		page(w, http.StatusBadRequest, "Sign-in failed", "The sign-in response came from an unexpected issuer.")
		return
	}
	ep, err := c.discovered(r.Context())
	if err != nil {
		page(w, http.StatusServiceUnavailable, "Sign-in unavailable", "The sign-in service cannot be reached right now.")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), oauth2.HTTPClient, c.http), 15*time.Second)
	defer cancel()
	tok, err := c.oauth2Config(ep).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		c.loginFailed(r, LoginFailureProvider, err, "step", "code exchange")
		page(w, http.StatusBadGateway, "Sign-in failed", "The sign-in could not be completed. Start again from the page you wanted.")
		return
	}
	sess, err := c.newSession(ctx, tok, st.Nonce)
	if err != nil {
		reason := LoginFailureProvider
		if errors.Is(err, errNonce) {
			reason = LoginFailureNonce
		}
		c.loginFailed(r, reason, err, "step", "id_token")
		page(w, http.StatusBadGateway, "Sign-in failed", "The sign-in service's answer could not be verified.")
		return
	}
	if err := c.save(w, r, sess); err != nil {
		page(w, http.StatusInternalServerError, "Sign-in failed", "The session could not be stored.")
		return
	}
	c.log.Info("login", "sub", sess.Subject, "identity_from", sess.mode())
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.Redirect, http.StatusFound)
}

// signOut clears the session and, where the provider supports it, ends the
// provider's session too (RP-initiated logout).
func (c *Client) signOut(w http.ResponseWriter, r *http.Request) {
	sess, _ := c.open(r)
	c.cfg.Cookies.Clear(w, r, c.cfg.CookieName)
	if sess != nil && sess.id != "" {
		// The id dies with the sign-out: a copied cookie is worth nothing.
		if err := c.cfg.Sessions.DeleteSession(r.Context(), sess.id); err != nil {
			c.log.Warn("session not deleted from the store", "err", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	ep, err := c.discovered(r.Context())
	if err == nil && ep.EndSession != "" {
		u, err := url.Parse(ep.EndSession)
		if err == nil {
			v := u.Query()
			if sess != nil && sess.IDToken != "" {
				v.Set("id_token_hint", sess.IDToken)
			}
			v.Set("client_id", c.cfg.ClientID)
			if c.cfg.PostLogoutRedirectURL != "" {
				v.Set("post_logout_redirect_uri", c.cfg.PostLogoutRedirectURL)
			}
			u.RawQuery = v.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
	}
	if c.cfg.PostLogoutRedirectURL != "" {
		http.Redirect(w, r, c.cfg.PostLogoutRedirectURL, http.StatusFound)
		return
	}
	page(w, http.StatusOK, "Signed out", "You have been signed out.")
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#f3f4f6;color:#111827;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}
main{background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:2rem;max-width:26rem;margin:1rem}h1{font-size:1.3rem;margin-top:0}</style>
</head><body><main><h1>{{.Title}}</h1><p>{{.Message}}</p></main></body></html>`))

// page renders a short message page with the security headers every page
// portcullis serves carries.
func page(w http.ResponseWriter, status int, title, msg string) {
	httpsec.Set(w.Header(), "text/html; charset=utf-8",
		"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, map[string]string{"Title": title, "Message": msg})
}

var errNoSession = errors.New("oidcclient: no session")

// loginFailed logs and counts a failed sign-in at the callback, with the
// client's address and the request id.
func (c *Client) loginFailed(r *http.Request, reason string, err error, more ...any) {
	level := slog.LevelInfo
	args := append([]any{"reason", reason, "remote", r.RemoteAddr, "request_id", r.Header.Get("X-Request-Id")}, more...)
	if err != nil {
		level = slog.LevelWarn
		args = append(args, "err", err)
	}
	c.log.Log(r.Context(), level, "login failed", args...)
	if c.cfg.LoginFailed != nil {
		c.cfg.LoginFailed(reason)
	}
}
