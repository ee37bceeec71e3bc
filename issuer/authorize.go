package issuer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/internal/pages"
)

// authRequest is a validated authorization request.
type authRequest struct {
	client      *Client
	redirectURI string
	state       string
	nonce       string
	challenge   string
	scopes      []string
	resources   []string // RFC 8707 resource indicators
	dpopJKT     string   // RFC 9449 §10 dpop_jkt
	prompt      []string
	maxAge      int // -1 when absent
	params      url.Values
}

// authParams are the authorization request parameters carried through the
// login and consent forms; anything else a client sends is ignored.
var authParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state",
	"nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "dpop_jkt"}

// authorize is the authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2).
// GET starts or continues a request; POST carries the login and consent
// forms, which repeat the request's parameters.
func (i *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	var params url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		params = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			i.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-in form could not be read. Go back to the application and sign in again.")
			return
		}
		params = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		i.errorPage(w, http.StatusMethodNotAllowed, "Method not allowed", "A sign-in starts from the application's link. Go back to the application and sign in again.")
		return
	}
	req, ok := i.parseAuthorize(w, r, params)
	if !ok {
		return
	}
	if r.Method == http.MethodPost {
		i.authorizePost(w, r, req)
		return
	}
	sess, sid := i.session(r)
	if sess == nil || slices.Contains(req.prompt, "login") ||
		req.maxAge >= 0 && i.now().Sub(sess.AuthTime) > time.Duration(req.maxAge)*time.Second {
		if slices.Contains(req.prompt, "none") {
			i.redirectError(w, r, req, "login_required", "the user is not signed in")
			return
		}
		i.loginPage(w, r, req, "", "", http.StatusOK)
		return
	}
	i.afterLogin(w, r, req, sess, sid)
}

// parseAuthorize validates the request. Until client_id and redirect_uri
// are known good, errors are shown as a page: redirecting to an
// unregistered URI would make the issuer an open redirector (RFC 6749
// §4.1.2.1). After that, errors go back to the client.
func (i *Issuer) parseAuthorize(w http.ResponseWriter, r *http.Request, p url.Values) (*authRequest, bool) {
	for _, k := range authParams {
		if len(p[k]) > 1 {
			i.errorPage(w, http.StatusBadRequest, "Invalid request", "The application's sign-in request names "+k+" more than once, so it was not accepted. Go back to the application and try again; if this keeps happening, tell its administrator.")
			return nil, false
		}
	}
	client, err := i.client(r.Context(), p.Get("client_id"))
	if err != nil {
		i.storeError(w, err)
		return nil, false
	}
	if client == nil {
		i.errorPage(w, http.StatusBadRequest, "Unknown application", "The application asking you to sign in is not registered here, so this sign-in cannot go on. Go back to it and tell its administrator.")
		return nil, false
	}
	redirect := p.Get("redirect_uri")
	if !client.redirectAllowed(redirect) {
		i.errorPage(w, http.StatusBadRequest, "Invalid redirect", "The application asked to be answered at an address that is not registered for it, so this sign-in cannot go on.",
			pages.Link{Text: "Go to " + client.displayName(), Href: client.home()})
		return nil, false
	}
	req := &authRequest{
		client: client, redirectURI: redirect, state: p.Get("state"), nonce: p.Get("nonce"),
		challenge: p.Get("code_challenge"), maxAge: -1, params: url.Values{},
	}
	for _, k := range authParams {
		if v := p.Get(k); v != "" {
			req.params.Set(k, v)
		}
	}
	if rs := p["resource"]; len(rs) > 0 {
		req.params["resource"] = slices.Clone(rs[:min(len(rs), maxResources+1)])
	}
	fail := func(code, desc string) (*authRequest, bool) {
		i.redirectTo(w, nil, req, url.Values{"error": {code}, "error_description": {desc}})
		return nil, false
	}
	switch {
	case p.Get("response_type") != "code":
		return fail("unsupported_response_type", "only response_type=code is supported")
	case !slices.Contains(client.GrantTypes, "authorization_code"):
		return fail("unauthorized_client", "the client may not use the authorization code grant")
	case p.Get("request") != "" || p.Get("request_uri") != "":
		return fail("request_not_supported", "request objects are not supported")
	}
	switch m := p.Get("code_challenge_method"); {
	case req.challenge == "" && m != "":
		return fail("invalid_request", "code_challenge_method without code_challenge")
	case req.challenge == "" && client.Public:
		return fail("invalid_request", "PKCE with S256 is required for this client")
	case req.challenge != "" && m != "S256":
		// RFC 9700 §2.1.1: plain gives no protection; refuse it (and a
		// missing method, which defaults to plain).
		return fail("invalid_request", "code_challenge_method must be S256")
	case req.challenge != "" && !validChallenge(req.challenge):
		return fail("invalid_request", "code_challenge is not a S256 challenge")
	}
	req.scopes = strings.Fields(p.Get("scope"))
	for _, s := range req.scopes {
		if !slices.Contains(client.Scopes, s) {
			return fail("invalid_scope", "scope "+s+" is not allowed for this client")
		}
	}
	var oe *oauthError
	if req.resources, oe = i.checkResources(p["resource"]); oe != nil {
		return fail(oe.code, oe.desc)
	}
	if j := p.Get("dpop_jkt"); j != "" {
		// RFC 9449 §10: the code is bound to this key; its redemption
		// needs a proof of it.
		if !validChallenge(j) {
			return fail("invalid_request", "dpop_jkt is not a JWK SHA-256 thumbprint")
		}
		req.dpopJKT = j
	}
	req.prompt = strings.Fields(p.Get("prompt"))
	if slices.Contains(req.prompt, "none") && len(req.prompt) > 1 {
		return fail("invalid_request", "prompt=none cannot be combined")
	}
	if ma := p.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return fail("invalid_request", "max_age must be a non-negative integer")
		}
		req.maxAge = n
	}
	return req, true
}

// validChallenge: a S256 challenge is 43 base64url characters.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// authorizePost handles the login and consent forms.
func (i *Issuer) authorizePost(w http.ResponseWriter, r *http.Request, req *authRequest) {
	if !i.checkCSRF(r) {
		i.errorPage(w, http.StatusForbidden, "Form expired", "The form has expired or was not sent from this page, so nothing was done.",
			pages.Link{Text: "Start again", Href: i.url + "/authorize?" + req.params.Encode()})
		return
	}
	switch r.PostForm.Get("action") {
	case "login":
		i.login(w, r, req)
	case "allow", "deny":
		sess, sid := i.session(r)
		if sess == nil {
			i.loginPage(w, r, req, "", "Your sign-in has expired. Sign in again.", http.StatusOK)
			return
		}
		if r.PostForm.Get("action") == "deny" {
			i.redirectError(w, r, req, "access_denied", "the user denied the request")
			return
		}
		if i.cfg.ConsentTTL > 0 && !req.client.registered {
			err := i.cfg.Store.SaveConsent(r.Context(), sess.Subject, req.client.ID, req.scopes, i.now().Add(i.cfg.ConsentTTL))
			if err != nil {
				i.storeError(w, err)
				return
			}
		}
		i.issueCode(w, r, req, sess, sid)
	default:
		i.errorPage(w, http.StatusBadRequest, "Bad request", "The form asked for nothing this page knows.",
			pages.Link{Text: "Start again", Href: i.url + "/authorize?" + req.params.Encode()})
	}
}

// login checks the submitted credentials. Throttling never refuses a
// user's known browsers, nor another user's correct password from a busy
// address (see Config.LoginAttempts): a browser without the user's device
// cookie gets at most LoginAttempts failures per window for that user,
// after which its attempts fail like a wrong password; an address past
// AddressAttempts failures waits before every answer. Every failure shows
// the same generic message, and an unknown username costs the same bcrypt
// compare as a known one.
func (i *Issuer) login(w http.ResponseWriter, r *http.Request, req *authRequest) {
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	ctx := r.Context()
	host := i.cfg.ClientAddr(r)
	if len(username) > 256 || len(password) > 1024 {
		i.loginFailed(r, req, username[:min(len(username), 64)], host, LoginFailureUnknownUser)
		i.loginPage(w, r, req, "", "Invalid username or password.", http.StatusOK)
		return
	}
	userKey, addrKey := "login:user:"+strings.ToLower(username), "login:ip:"+host
	failures, err := i.cfg.Store.Count(ctx, addrKey)
	if err != nil {
		i.storeError(w, err)
		return
	}
	if d := i.addressDelay(failures); d > 0 {
		i.cfg.Sleep(ctx, d)
		if ctx.Err() != nil {
			return // the client gave up
		}
	}
	known := i.knownDevice(ctx, r, username)
	locked := false
	if !known {
		n, err := i.cfg.Store.Count(ctx, userKey)
		if err != nil {
			i.storeError(w, err)
			return
		}
		locked = n >= i.cfg.LoginAttempts
	}
	usr := i.users[username]
	hash := i.dummyHash
	if usr != nil {
		hash = []byte(usr.PasswordHash)
	}
	// Compare even for unknown users and for locked ones, so timing does
	// not reveal which usernames exist or which are locked.
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	if usr == nil || err != nil || locked {
		keys := []string{addrKey}
		if !known {
			keys = append(keys, userKey) // a known browser's mistakes lock no one
		}
		for _, key := range keys {
			if _, err := i.cfg.Store.Hit(ctx, key, i.cfg.LoginWindow); err != nil {
				i.storeError(w, err)
				return
			}
		}
		reason := LoginFailureBadPassword
		switch {
		case locked:
			reason = LoginFailureThrottled
		case usr == nil:
			reason = LoginFailureUnknownUser
		}
		i.loginFailed(r, req, username, host, reason, "known_device", known)
		i.loginPage(w, r, req, username, "Invalid username or password.", http.StatusOK)
		return
	}
	i.rememberDevice(ctx, w, r, username)
	now := i.now()
	sid := randomToken()
	sess := Session{Subject: usr.Subject, AuthTime: now, Expiry: now.Add(i.cfg.SessionTTL)}
	if err := i.cfg.Store.SaveSession(ctx, sid, sess); err != nil {
		i.storeError(w, err)
		return
	}
	http.SetCookie(w, i.cookie(sessionCookie, sid, i.cfg.SessionTTL, http.SameSiteLaxMode))
	i.log.Info("login", "sub", usr.Subject, "client", req.client.ID)
	// Continue the request with the new session; a fresh sign-in satisfies
	// prompt=login and max_age, so they are dropped.
	next := cloneValues(req.params)
	next.Del("prompt")
	next.Del("max_age")
	w.Header().Set("Location", i.url+"/authorize?"+next.Encode())
	w.WriteHeader(http.StatusSeeOther)
}

// afterLogin asks for consent where needed, then issues the code.
func (i *Issuer) afterLogin(w http.ResponseWriter, r *http.Request, req *authRequest, sess *Session, sid string) {
	if !req.client.FirstParty {
		var granted []string
		if !req.client.registered {
			// A client that registered itself is a stranger: the user is
			// asked every time, never from a remembered consent.
			var err error
			granted, err = i.cfg.Store.GetConsent(r.Context(), sess.Subject, req.client.ID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				i.storeError(w, err)
				return
			}
		}
		if req.client.registered || slices.Contains(req.prompt, "consent") || i.cfg.ConsentTTL < 0 || !subset(req.scopes, granted) {
			if slices.Contains(req.prompt, "none") {
				i.redirectError(w, r, req, "consent_required", "the user has not consented")
				return
			}
			i.consentPage(w, r, req, sess)
			return
		}
	}
	i.issueCode(w, r, req, sess, sid)
}

// issueCode stores a single-use code and sends the browser back to the
// client with it. The client is recorded as taking part in the session
// first, so that the session's end reaches every client it issued a code
// to (back-channel logout).
func (i *Issuer) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest, sess *Session, sid string) {
	switch err := i.cfg.Store.JoinSession(r.Context(), sid, req.client.ID); {
	case errors.Is(err, ErrNotFound):
		// The session ended (a sign-out elsewhere) since it was read.
		i.loginPage(w, r, req, "", "Your sign-in has expired. Sign in again.", http.StatusOK)
		return
	case err != nil:
		i.storeError(w, err)
		return
	}
	code := randomToken()
	err := i.cfg.Store.SaveCode(r.Context(), hashToken(code), AuthCode{
		ClientID: req.client.ID, RedirectURI: req.redirectURI, Subject: sess.Subject,
		Scopes: req.scopes, Resources: req.resources, DPoPJKT: req.dpopJKT, Nonce: req.nonce, CodeChallenge: req.challenge,
		AuthTime: sess.AuthTime, SessionID: sid, Expiry: i.now().Add(i.cfg.CodeTTL),
	})
	if err != nil {
		i.storeError(w, err)
		return
	}
	i.redirectTo(w, r, req, url.Values{"code": {code}})
}

// redirectError sends an OAuth error back to the client's redirect URI.
func (i *Issuer) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, code, desc string) {
	i.redirectTo(w, r, req, url.Values{"error": {code}, "error_description": {desc}})
}

// redirectTo answers with a redirect to the registered redirect URI, adding
// state and the RFC 9207 iss parameter.
func (i *Issuer) redirectTo(w http.ResponseWriter, r *http.Request, req *authRequest, v url.Values) {
	u, err := url.Parse(req.redirectURI)
	if err != nil {
		i.errorPage(w, http.StatusBadRequest, "Invalid redirect", "The registered redirect address is not a URL.")
		return
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	q.Set("iss", i.url)
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	status := http.StatusFound
	if r != nil && r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.WriteHeader(status)
}

// session returns the browser's live issuer session, if any.
func (i *Issuer) session(r *http.Request) (*Session, string) {
	c, err := r.Cookie(i.cookieName(sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, ""
	}
	s, err := i.cfg.Store.GetSession(r.Context(), c.Value)
	if err != nil || !i.now().Before(s.Expiry) {
		return nil, ""
	}
	return &s, c.Value
}

const (
	sessionCookie = "portcullis_idp_session"
	csrfCookie    = "portcullis_idp_csrf"
)

// cookieName adds the __Secure- prefix on https issuers.
func (i *Issuer) cookieName(name string) string {
	if i.secure {
		return "__Secure-" + name
	}
	return name
}

// cookie builds one of the issuer's cookies, scoped to its path so it never
// travels to applications behind the gateway.
func (i *Issuer) cookie(name, value string, maxAge time.Duration, same http.SameSite) *http.Cookie {
	path := i.base
	if path == "" {
		path = "/"
	}
	c := &http.Cookie{Name: i.cookieName(name), Value: value, Path: path, HttpOnly: true, Secure: i.secure, SameSite: same}
	if maxAge < 0 {
		c.MaxAge = -1
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// csrfToken returns the browser's CSRF token, setting the cookie if needed
// (double-submit: the form must echo the cookie's value).
func (i *Issuer) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(i.cookieName(csrfCookie)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, i.cookie(csrfCookie, tok, 0, http.SameSiteStrictMode))
	return tok
}

func (i *Issuer) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(i.cookieName(csrfCookie))
	form := r.PostForm.Get("csrf")
	return err == nil && len(c.Value) == 43 && subtle.ConstantTimeCompare([]byte(c.Value), []byte(form)) == 1
}

// randomToken is 32 random bytes, base64url (43 characters).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func subset(want, have []string) bool {
	for _, s := range want {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// dummyBcrypt is a hash compared against for unknown usernames, at the
// highest cost of the users' hashes (bcrypt's default without users), so
// that an unknown username takes as long as a known one.
func dummyBcrypt(users []User) ([]byte, error) {
	cost := 0
	for _, u := range users {
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return bcrypt.GenerateFromPassword([]byte(randomToken()), cost)
}

// addressDelay is how long an answer to an address with failures failed
// sign-ins in the window waits: nothing up to AddressAttempts, then 250ms
// doubling per failure, at most AddressMaxDelay.
func (i *Issuer) addressDelay(failures int) time.Duration {
	over := failures - i.cfg.AddressAttempts
	if over < 0 {
		return 0
	}
	d := 250 * time.Millisecond
	for ; over > 0 && d < i.cfg.AddressMaxDelay; over-- {
		d *= 2
	}
	return min(d, i.cfg.AddressMaxDelay)
}

// loginFailed logs and counts a failed sign-in: the username typed (never
// the password), the client's address, the client and the request id.
func (i *Issuer) loginFailed(r *http.Request, req *authRequest, username, host, reason string, more ...any) {
	level := slog.LevelInfo
	if reason == LoginFailureThrottled {
		level = slog.LevelWarn
	}
	args := append([]any{"reason", reason, "username", username, "remote", host, "client", req.client.ID,
		"request_id", r.Header.Get("X-Request-Id")}, more...)
	i.log.Log(r.Context(), level, "login failed", args...)
	if i.cfg.LoginFailed != nil {
		i.cfg.LoginFailed(reason)
	}
}
