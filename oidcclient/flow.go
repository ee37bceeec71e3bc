package oidcclient

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/portcullis-dev/portcullis/internal/pages"
)

// loginState is what one login attempt keeps in its own short-lived cookie,
// so that several tabs can log in at once.
type loginState struct {
	State    string `json:"s"`
	Verifier string `json:"v,omitempty"`
	Nonce    string `json:"n,omitempty"`
	Redirect string `json:"r"`
	// Done marks a finished sign-in. Its cookie stays for the rest of
	// loginStateTTL, holding only the return address, so that a browser
	// sent back onto the callback (Back) goes on to that page.
	Done bool `json:"d,omitempty"`
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

// newState returns a fresh state value. After the random part it names
// the host the sign-in started on, so that a callback reaching another
// host, where the browser holds no state cookie, can say so.
func newState(host string) string {
	s := random()
	if host != "" && len(host) <= 64 {
		s += "~" + base64.RawURLEncoding.EncodeToString([]byte(host))
	}
	return s
}

// stateHost returns the host newState put in s, or "".
func stateHost(s string) string {
	_, enc, ok := strings.Cut(s, "~")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return ""
	}
	return string(b)
}

// otherLoopbackName reports whether r reached the gateway under another
// loopback name than the public URL's (127.0.0.1:8080 for
// localhost:8080): a sign-in started there would leave its cookie where
// the callback, on the public URL, never sees it.
func (c *Client) otherLoopbackName(r *http.Request) bool {
	pub := c.cfg.PublicURL
	if strings.EqualFold(r.Host, pub.Host) {
		return false
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	return isLoopbackName(host) && isLoopbackName(pub.Hostname())
}

func isLoopbackName(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// start begins a login: fresh PKCE verifier, state and nonce, remembered in
// an encrypted cookie bound to this attempt, then off to the provider.
func (c *Client) start(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		c.page(w, http.StatusMethodNotAllowed, pages.Message{Title: "Method not allowed",
			Text: "A sign-in starts with a plain link, not a form.", Links: c.home()})
		return
	}
	rd, ok := SafeRedirect(r.URL.Query().Get("rd"), c.cfg.PublicURL, c.cfg.AllowedRedirectHosts)
	if !ok {
		rd = c.cfg.PublicURL.String()
	}
	if c.otherLoopbackName(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, c.LoginURLFor(rd), http.StatusFound)
		return
	}
	ep, err := c.discovered(r.Context())
	if err != nil {
		c.log.Warn("login unavailable", "err", err)
		w.Header().Set("Retry-After", "10")
		c.page(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign-in unavailable",
			Text:  "The sign-in service cannot be reached right now.",
			Links: []pages.Link{{Text: "Try again", Href: c.LoginURLFor(rd)}}})
		return
	}
	st := loginState{State: newState(r.Host), Verifier: oauth2.GenerateVerifier(), Nonce: random(), Redirect: rd}
	b, _ := json.Marshal(st)
	if err := c.cfg.Cookies.Seal(w, r, c.stateCookie(st.State), b, loginStateTTL); err != nil {
		c.page(w, http.StatusInternalServerError, pages.Message{Title: "Sign-in failed",
			Text: "The sign-in could not be started in this browser.", Links: []pages.Link{{Text: "Try again", Href: c.LoginURLFor(rd)}}})
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
	again := []pages.Link{{Text: "Sign in again", Href: c.LoginURLFor(c.cfg.PublicURL.String())}}
	if state == "" || len(state) > 256 {
		c.page(w, http.StatusBadRequest, pages.Message{Title: "Sign-in failed",
			Text: "The answer of the sign-in service carried no valid state, so it cannot be matched to a sign-in of this browser.", Links: again})
		return
	}
	name := c.stateCookie(state)
	raw, err := c.cfg.Cookies.Open(r, name)
	var st loginState
	ok := err == nil && json.Unmarshal(raw, &st) == nil && subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) == 1
	if ok && st.Done {
		// Back onto a finished sign-in: on to its page while the session
		// it made is still there.
		if sess, _ := c.open(r); sess != nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, st.Redirect, http.StatusFound)
			return
		}
		c.page(w, http.StatusOK, pages.Message{Title: "Sign-in already finished",
			Text: "This sign-in was finished before, and its session has ended since.", Links: []pages.Link{{Text: "Sign in again", Href: c.LoginURLFor(st.Redirect)}}})
		return
	}
	c.cfg.Cookies.Clear(w, r, name) // one use, whatever happens next
	if !ok {
		c.loginFailed(r, LoginFailureState, nil)
		if h := stateHost(state); h != "" && !strings.EqualFold(h, r.Host) {
			c.page(w, http.StatusBadRequest, pages.Message{Title: "Sign-in started at another address",
				Text: "The sign-in was started at " + h + ", but this site's address is " + c.cfg.PublicURL.Host +
					". The browser keeps a sign-in for the address it was started at, so it cannot be finished here.",
				Detail: "Open the site at " + c.cfg.PublicURL.Host + " (server.public_url) and sign in there.",
				Links:  []pages.Link{{Text: "Sign in at " + c.cfg.PublicURL.Host, Href: c.LoginURLFor(c.cfg.PublicURL.String())}}})
			return
		}
		c.page(w, http.StatusBadRequest, pages.Message{Title: "Sign-in failed",
			Text:  "This sign-in has expired, was already finished, or was started in another browser.",
			Links: again})
		return
	}
	retry := []pages.Link{{Text: "Try again", Href: c.LoginURLFor(st.Redirect)}}
	if e := q.Get("error"); e != "" {
		c.loginFailed(r, LoginFailureProvider, nil, "error", e)
		if e == "access_denied" {
			c.page(w, http.StatusForbidden, pages.Message{Title: "Access declined",
				Text: "You declined access for " + c.appName() + ".", Detail: "Nothing was shared. To use it, sign in again and allow access.",
				Links: retry})
			return
		}
		msg := pages.Message{Title: "Sign-in failed", Text: "The sign-in service refused the sign-in (" + e + ").", Links: retry}
		if d := q.Get("error_description"); d != "" && len(d) <= 300 {
			msg.Detail = "It said: " + d
		}
		c.page(w, http.StatusForbidden, msg)
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != c.cfg.Issuer {
		// RFC 9207: a response from another issuer (mix-up attack).
		c.loginFailed(r, LoginFailureProvider, nil, "error", "unexpected iss")
		c.page(w, http.StatusBadRequest, pages.Message{Title: "Sign-in failed",
			Text: "The answer came from another sign-in service than this site uses, so it was not accepted.", Links: retry})
		return
	}
	ep, err := c.discovered(r.Context())
	if err != nil {
		c.page(w, http.StatusServiceUnavailable, pages.Message{Title: "Sign-in unavailable",
			Text: "The sign-in service cannot be reached right now.", Links: retry})
		return
	}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), oauth2.HTTPClient, c.http), c.cfg.ProviderTimeout)
	defer cancel()
	tok, err := c.oauth2Config(ep).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		c.loginFailed(r, LoginFailureProvider, err, "step", "code exchange")
		c.page(w, http.StatusBadGateway, pages.Message{Title: "Sign-in failed",
			Text: "The sign-in could not be completed with the sign-in service.", Links: retry})
		return
	}
	sess, err := c.newSession(ctx, tok, st.Nonce)
	if err != nil {
		reason := LoginFailureProvider
		if errors.Is(err, errNonce) {
			reason = LoginFailureNonce
		}
		c.loginFailed(r, reason, err, "step", "id_token")
		c.page(w, http.StatusBadGateway, pages.Message{Title: "Sign-in failed",
			Text: "The sign-in service's answer could not be verified, so it was not accepted.", Links: retry})
		return
	}
	if err := c.save(w, r, sess); err != nil {
		c.page(w, http.StatusInternalServerError, pages.Message{Title: "Sign-in failed",
			Text: "The session could not be stored.", Links: retry})
		return
	}
	done, _ := json.Marshal(loginState{State: st.State, Redirect: st.Redirect, Done: true})
	_ = c.cfg.Cookies.Seal(w, r, name, done, loginStateTTL)
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
	c.signedOut(w, r)
}

// signedOut is the page a sign-out ends on.
func (c *Client) signedOut(w http.ResponseWriter, _ *http.Request) {
	c.page(w, http.StatusOK, pages.Message{Title: "Signed out", Text: "You are signed out.", OK: true,
		Links: []pages.Link{{Text: "Sign in again", Href: c.LoginURLFor(c.cfg.PublicURL.String())}}})
}

// home is the link back to the application.
func (c *Client) home() []pages.Link {
	return []pages.Link{{Text: "Go to " + c.appName(), Href: c.cfg.PublicURL.String()}}
}

// appName is what the pages call the application: Config.AppName, else
// the public URL's host.
func (c *Client) appName() string {
	if c.cfg.AppName != "" {
		return c.cfg.AppName
	}
	return c.cfg.PublicURL.Host
}

// page renders a message page with the security headers every page
// portcullis serves carries.
func (c *Client) page(w http.ResponseWriter, status int, m pages.Message) {
	pages.Write(w, status, m)
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errNoSession = errors.New("oidcclient: no session")

// loginFailed logs and counts a failed sign-in at the callback, with the
// client's address and the request id.
func (c *Client) loginFailed(r *http.Request, reason string, err error, more ...any) {
	level := slog.LevelInfo
	remote := r.RemoteAddr
	if c.cfg.ClientAddr != nil {
		remote = c.cfg.ClientAddr(r)
	}
	args := append([]any{"reason", reason, "remote", remote, "request_id", r.Header.Get("X-Request-Id")}, more...)
	if err != nil {
		level = slog.LevelWarn
		args = append(args, "err", err)
	}
	c.log.Log(r.Context(), level, "login failed", args...)
	if c.cfg.LoginFailed != nil {
		c.cfg.LoginFailed(reason)
	}
}
