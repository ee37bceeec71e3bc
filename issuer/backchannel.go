package issuer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OpenID Connect Back-Channel Logout 1.0, the provider's side: when an
// issuer session ends, the clients that took part in it get a logout token
// POSTed to their BackchannelLogoutURI, in the background.

// Results of a back-channel logout token, as Config.LogoutSent is told.
const (
	LogoutSentOK       = "ok"       // the client answered 2xx
	LogoutSentRejected = "rejected" // the client answered another status (4xx, 3xx), not retried
	LogoutSentFailed   = "failed"   // given up: network errors, 5xx or 429 on every attempt, or the issuer closed
)

const (
	// logoutEvent is the event member of a logout token (§2.4).
	logoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenType is the typ header (§2.4) that keeps a logout token
	// from passing for an id_token and back.
	logoutTokenType = "logout+jwt"
	// logoutTokenTTL is how long a logout token is valid (§2.4 advises
	// at most a couple of minutes).
	logoutTokenTTL = 2 * time.Minute
	// A delivery makes at most logoutAttempts attempts, waiting
	// logoutBackoff, then twice as long, between them (1s, 2s, 4s); each
	// attempt is cut at logoutAttemptTimeout and the whole delivery,
	// waits included, at logoutDeadline.
	logoutAttempts       = 4
	logoutBackoff        = time.Second
	logoutAttemptTimeout = 5 * time.Second
	logoutDeadline       = 30 * time.Second
	// logoutConcurrency bounds the requests in flight, logoutMaxPending
	// the deliveries not settled yet; past it a logout token is dropped
	// (and counted failed) rather than queued.
	logoutConcurrency = 8
	logoutMaxPending  = 1024
)

// checkBackchannelURI checks a client's BackchannelLogoutURI (§2.2): empty,
// or an absolute http(s) URL without a fragment.
func checkBackchannelURI(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("back-channel logout URI %q is not an absolute http(s) URL without a fragment", s)
	}
	return nil
}

// publicSID is the "sid" of a session's tokens, from its ID hash: short
// enough to say little, long enough to be unique.
func publicSID(idHash string) string {
	if len(idHash) < 22 {
		return ""
	}
	return idHash[:22]
}

// logoutNotice is one client to tell that a subject's session ended.
type logoutNotice struct {
	clientID string
	subject  string
	sid      string // public sid, "" when the session is not known
}

// logoutNotices collects notices, one per client and session.
type logoutNotices struct {
	list []logoutNotice
	seen map[logoutNotice]bool
}

func (n *logoutNotices) add(clientID, subject, sid string) {
	k := logoutNotice{clientID: clientID, subject: subject, sid: sid}
	if n.seen == nil {
		n.seen = map[logoutNotice]bool{}
	}
	if !n.seen[k] {
		n.seen[k] = true
		n.list = append(n.list, k)
	}
}

// addFamilies adds a notice for the client of each family.
func (n *logoutNotices) addFamilies(fams []RevokedFamily) {
	for _, f := range fams {
		n.add(f.ClientID, f.Subject, publicSID(f.SessionHash))
	}
}

// backchannelLogout sends a logout token for each notice whose client has
// a BackchannelLogoutURI. Tokens are signed and delivered in the
// background: the caller never waits for a client, nor for a signature.
func (i *Issuer) backchannelLogout(notices []logoutNotice) {
	for _, n := range notices {
		c := i.clients[n.clientID]
		switch {
		case c == nil || c.BackchannelLogoutURI == "":
			continue
		case n.sid == "" && c.BackchannelLogoutSessionRequired:
			i.log.Warn("back-channel logout not sent: the client requires a sid and the session is not known",
				"client", c.ID, "sub", n.subject)
			continue
		}
		i.logouts.send(c, n.subject, func() (string, error) { return i.logoutToken(c.ID, n.subject, n.sid) })
	}
}

// logoutToken signs a logout token (§2.4) for clientID: sub, and sid when
// the session is known; never a nonce.
func (i *Issuer) logoutToken(clientID, subject, sid string) (string, error) {
	now := i.now()
	claims := jwt.MapClaims{
		"iss": i.url, "aud": clientID, "iat": now.Unix(), "exp": now.Add(logoutTokenTTL).Unix(),
		"jti": randomToken(), "events": map[string]any{logoutEvent: map[string]any{}}, "sub": subject,
	}
	if sid != "" {
		claims["sid"] = sid
	}
	return i.sign(claims, logoutTokenType)
}

// EndUserSessions ends subject's sessions at the issuer: every live one,
// or when sid is non-empty only the one whose "sid" claim (as in its
// id_tokens) is sid. It revokes the refresh-token families created in the
// sessions it ends (every family of subject when sid is empty), which
// denies the access tokens recorded with them, and sends a back-channel
// logout token to every client that took part in an ended session or held
// a revoked family and has a [Client.BackchannelLogoutURI]. With a sid, a
// session that has already ended is not found, and its families are left
// as the sign-out left them.
//
// It returns the number of sessions ended once the store has done its
// part; the logout tokens are delivered in the background (see
// [Config.LogoutSent]). On a store error it returns the sessions ended so
// far with the error, having sent their logout tokens; calling it again
// finishes the job. It is safe for concurrent use.
func (i *Issuer) EndUserSessions(ctx context.Context, subject, sid string) (int, error) {
	if subject == "" {
		return 0, errors.New("issuer: end user sessions: empty subject")
	}
	var notices logoutNotices
	defer func() { i.backchannelLogout(notices.list) }()
	fail := func(n int, err error) (int, error) {
		return n, fmt.Errorf("issuer: end user sessions: %w", err)
	}
	// Families before sessions: a call that fails half-way leaves the
	// sessions to find again, and a session's families are found through
	// it.
	families := 0
	if sid == "" {
		fams, err := i.cfg.Store.RevokeSubjectFamilies(ctx, subject)
		if err != nil {
			return fail(0, err)
		}
		families += len(fams)
		notices.addFamilies(fams)
	}
	hashes, err := i.cfg.Store.SubjectSessions(ctx, subject)
	if err != nil {
		return fail(0, err)
	}
	n := 0
	for _, h := range hashes {
		if sid != "" {
			if publicSID(h) != sid {
				continue
			}
			fams, err := i.cfg.Store.RevokeSessionFamilies(ctx, h)
			if err != nil {
				return fail(n, err)
			}
			families += len(fams)
			notices.addFamilies(fams)
		}
		sess, clients, err := i.cfg.Store.EndSession(ctx, h)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // ended meanwhile
		case err != nil:
			return fail(n, err)
		}
		n++
		for _, id := range clients {
			notices.add(id, sess.Subject, publicSID(h))
		}
	}
	i.log.Info("user sessions ended", "sub", subject, "sid", sid, "sessions", n, "families", families)
	return n, nil
}

// Close cancels the back-channel logout deliveries still pending (each is
// counted failed) and waits for their goroutines to end. Logout tokens
// after Close are not sent and count failed. The Issuer serves on, but a
// replaced one (on reload) should be closed once it no longer serves. It
// does not close the store. Close is safe to call more than once and
// always returns nil.
func (i *Issuer) Close() error {
	i.logouts.close()
	return nil
}

// logoutSender delivers logout tokens in the background, on its own
// context, with bounded concurrency and retries.
type logoutSender struct {
	client *http.Client
	sleep  func(context.Context, time.Duration)
	sent   func(string)
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // one per request in flight

	mu      sync.Mutex
	closed  bool
	pending int
	wg      sync.WaitGroup
}

func newLogoutSender(cfg Config) *logoutSender {
	s := &logoutSender{client: cfg.HTTPClient, sleep: cfg.Sleep, sent: cfg.LogoutSent, log: cfg.Logger,
		slots: make(chan struct{}, logoutConcurrency)}
	if s.client == nil {
		s.client = &http.Client{
			Timeout:       logoutAttemptTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// send signs a logout token for c with sign and delivers it in a new
// goroutine, unless the sender is closed or too many deliveries are
// pending.
func (s *logoutSender) send(c *Client, subject string, sign func() (string, error)) {
	s.mu.Lock()
	why := ""
	switch {
	case s.closed:
		why = "the issuer is closed"
	case s.pending >= logoutMaxPending:
		why = "too many deliveries pending"
	default:
		s.pending++
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if why != "" {
		s.settle(c, subject, LogoutSentFailed, 0, 0, errors.New(why))
		return
	}
	go func() {
		defer s.wg.Done()
		if tok, err := sign(); err != nil {
			s.settle(c, subject, LogoutSentFailed, 0, 0, fmt.Errorf("logout token not signed: %w", err))
		} else {
			s.deliver(c, subject, tok)
		}
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
	}()
}

// deliver POSTs tok to c's BackchannelLogoutURI (§2.5), retrying network
// errors, 5xx and 429 with exponential backoff within the deadline.
func (s *logoutSender) deliver(c *Client, subject, tok string) {
	ctx, cancel := context.WithTimeout(s.ctx, logoutDeadline)
	defer cancel()
	var (
		status   int
		err      error
		attempts int
	)
	for attempts < logoutAttempts {
		if attempts > 0 {
			s.sleep(ctx, logoutBackoff<<(attempts-1))
			if ctx.Err() != nil {
				break
			}
		}
		attempts++
		status, err = s.post(ctx, c.BackchannelLogoutURI, tok)
		switch {
		case err != nil || status >= 500 || status == http.StatusTooManyRequests:
			continue
		case status >= 200 && status < 300:
			s.settle(c, subject, LogoutSentOK, attempts, status, nil)
		default:
			s.settle(c, subject, LogoutSentRejected, attempts, status, nil)
		}
		return
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	s.settle(c, subject, LogoutSentFailed, attempts, status, err)
}

// post makes one attempt and returns the response's status.
func (s *logoutSender) post(ctx context.Context, uri, tok string) (int, error) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, logoutAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10)) // lets the connection be reused
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// settle logs a delivery's outcome and reports it.
func (s *logoutSender) settle(c *Client, subject, result string, attempts, status int, err error) {
	level := slog.LevelInfo
	if result != LogoutSentOK {
		level = slog.LevelWarn
	}
	args := []any{"client", c.ID, "sub", subject, "result", result, "attempts", attempts}
	if status != 0 {
		args = append(args, "status", status)
	}
	if err != nil {
		args = append(args, "err", err)
	}
	s.log.Log(context.Background(), level, "back-channel logout sent", args...)
	if s.sent != nil {
		s.sent(result)
	}
}

// close stops new deliveries, cancels those pending and waits for them.
func (s *logoutSender) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
