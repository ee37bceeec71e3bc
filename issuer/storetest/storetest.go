// Package storetest is the contract test suite for [issuer.Store]
// implementations: every store (memory, Redis) passes the same [Run].
//
// The suite moves a [Clock] it hands to the store instead of sleeping, so a
// store must read the time only through the clock it is given.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/issuer"
)

// Clock is a settable clock for tests. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock {
	return &Clock{t: t}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run runs the contract tests against stores made by newStore; each call
// returns an empty store whose clock is the given one.
//
// The clock starts at the current time truncated to the second and only
// moves forward, so a store that hands absolute expiries to a server never
// sends one in the past. Subtests run one after another, so stores may
// share a backing server that newStore empties.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) issuer.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s issuer.Store, c *Clock)
	}{
		{"CodeRedeemOnce", testCodeRedeemOnce},
		{"CodeExpired", testCodeExpired},
		{"CodeUnknown", testCodeUnknown},
		{"CodeConcurrentRedeem", testCodeConcurrentRedeem},
		{"RefreshRotateAndReuse", testRefreshRotateAndReuse},
		{"RefreshConcurrentRotate", testRefreshConcurrentRotate},
		{"RefreshRetry", testRefreshRetry},
		{"RefreshLookupStates", testRefreshLookupStates},
		{"RefreshExpired", testRefreshExpired},
		{"RefreshFamilyNotExtended", testRefreshFamilyNotExtended},
		{"RevokeFamily", testRevokeFamily},
		{"RevokeFamilyBeforeCreate", testRevokeFamilyBeforeCreate},
		{"AccessRevocation", testAccessRevocation},
		{"Sessions", testSessions},
		{"SessionParticipants", testSessionParticipants},
		{"SubjectSessions", testSubjectSessions},
		{"RevokeSessionFamilies", testRevokeSessionFamilies},
		{"RevokeSubjectFamilies", testRevokeSubjectFamilies},
		{"Consent", testConsent},
		{"Hit", testHit},
		{"ClientRegister", testClientRegister},
		{"ClientLimit", testClientLimit},
		{"ClientUnusedExpiry", testClientUnusedExpiry},
		{"ClientUse", testClientUse},
		{"ClientDelete", testClientDelete},
		{"ClientConcurrentLimit", testClientConcurrentLimit},
		{"ClientConcurrentRegister", testClientConcurrentRegister},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(time.Now().UTC().Truncate(time.Second))
			s := newStore(t, c.Now)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.run(t, s, c)
		})
	}
}

// sampleCode is a code that expires a minute from now.
func sampleCode(c *Clock) issuer.AuthCode {
	now := c.Now()
	return issuer.AuthCode{
		ClientID: "client-1", RedirectURI: "https://app.example/callback", Subject: "alice",
		Scopes: []string{"openid", "offline_access"}, Nonce: "nonce-1", CodeChallenge: "challenge-1",
		AuthTime: now.Add(-time.Minute), SessionID: "sid-1", Expiry: now.Add(time.Minute),
	}
}

// sampleRefresh is a refresh token that lives an hour, in a family that
// lives a day.
func sampleRefresh(c *Clock, familyID string) issuer.RefreshToken {
	now := c.Now()
	return issuer.RefreshToken{
		FamilyID: familyID, ClientID: "client-1", Subject: "alice",
		Scopes: []string{"openid", "offline_access"}, AuthTime: now.Add(-time.Minute), SessionID: "sid-1",
		Expiry: now.Add(time.Hour), FamilyExpiry: now.Add(24 * time.Hour),
	}
}

func testCodeRedeemOnce(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	want := sampleCode(c)
	in := sampleCode(c)
	must(t, s.SaveCode(ctx, "code-1", in))
	in.Scopes[0] = "changed" // the store keeps its own copy

	first := issuer.Issued{FamilyID: "fam-1", AccessJTI: "jti-1", AccessExpiry: c.Now().Add(15 * time.Minute)}
	got, err := s.RedeemCode(ctx, "code-1", first)
	must(t, err)
	checkCode(t, "first redemption", got, want)
	got.Scopes[0] = "changed" // and hands out copies

	second := issuer.Issued{FamilyID: "fam-2", AccessJTI: "jti-2", AccessExpiry: c.Now().Add(15 * time.Minute)}
	got, err = s.RedeemCode(ctx, "code-1", second)
	wantErr(t, "second redemption", err, issuer.ErrCodeReused)
	checkCode(t, "second redemption", got, want)
	checkIssued(t, "second redemption", got.Issued, first)
	got.Scopes[0] = "changed"

	// A replay after the code expired is still recognised for a while.
	c.Advance(5 * time.Minute)
	got, err = s.RedeemCode(ctx, "code-1", second)
	wantErr(t, "replay after expiry", err, issuer.ErrCodeReused)
	checkCode(t, "replay after expiry", got, want)
	checkIssued(t, "replay after expiry", got.Issued, first)

	// But not forever.
	c.Advance(time.Hour)
	_, err = s.RedeemCode(ctx, "code-1", second)
	wantErr(t, "replay an hour later", err, issuer.ErrNotFound)
}

func testCodeExpired(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.SaveCode(ctx, "code-1", sampleCode(c)))
	c.Advance(time.Minute + time.Second)
	for i := range 2 {
		_, err := s.RedeemCode(ctx, "code-1", issuer.Issued{AccessJTI: "jti-1"})
		wantErr(t, fmt.Sprintf("redemption %d", i+1), err, issuer.ErrNotFound)
	}
}

func testCodeUnknown(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.SaveCode(ctx, "code-1", sampleCode(c)))
	_, err := s.RedeemCode(ctx, "code-2", issuer.Issued{AccessJTI: "jti-1"})
	wantErr(t, "unknown code", err, issuer.ErrNotFound)
}

func testCodeConcurrentRedeem(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.SaveCode(ctx, "code-1", sampleCode(c)))
	const n = 50
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results [n]struct {
			code issuer.AuthCode
			err  error
		}
	)
	for i := range n {
		wg.Go(func() {
			<-start
			iss := issuer.Issued{FamilyID: fmt.Sprint("fam-", i), AccessJTI: fmt.Sprint("jti-", i)}
			results[i].code, results[i].err = s.RedeemCode(ctx, "code-1", iss)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, r := range results {
		switch {
		case r.err == nil && winner >= 0:
			t.Fatalf("redemptions %d and %d both succeeded", winner, i)
		case r.err == nil:
			winner = i
		case !errors.Is(r.err, issuer.ErrCodeReused):
			t.Errorf("redemption %d: got %v, want %v", i, r.err, issuer.ErrCodeReused)
		}
	}
	if winner < 0 {
		t.Fatal("no redemption succeeded")
	}
	want := issuer.Issued{FamilyID: fmt.Sprint("fam-", winner), AccessJTI: fmt.Sprint("jti-", winner)}
	for i, r := range results {
		if i != winner {
			checkIssued(t, fmt.Sprintf("redemption %d", i), r.code.Issued, want)
		}
	}
}

func testRefreshRotateAndReuse(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	rt0 := sampleRefresh(c, "fam-1")
	must(t, s.CreateRefresh(ctx, "rt-0", rt0))
	must(t, s.AddFamilyAccess(ctx, "fam-1", "jti-0", c.Now().Add(15*time.Minute)))

	c.Advance(time.Minute)
	next := sampleRefresh(c, "ignored")
	next.Scopes = []string{"openid"}
	next.FamilyExpiry = rt0.FamilyExpiry
	got, err := s.RotateRefresh(ctx, "rt-0", "rt-1", next, "jti-1", c.Now().Add(15*time.Minute))
	must(t, err)
	checkRefresh(t, "rotation", got, rt0)

	want1 := next
	want1.FamilyID = "fam-1"
	got, err = s.LookupRefresh(ctx, "rt-1")
	must(t, err)
	checkRefresh(t, "new token", got, want1)
	for _, jti := range []string{"jti-0", "jti-1"} {
		checkRevoked(t, s, jti, false)
	}

	// The old token again: the family is revoked and the old grant returned.
	got, err = s.RotateRefresh(ctx, "rt-0", "rt-2", next, "jti-2", c.Now().Add(15*time.Minute))
	wantErr(t, "reuse of the old token", err, issuer.ErrRefreshReused)
	checkRefresh(t, "reuse of the old token", got, rt0)

	// Now the new token fails too, and so does every token of the family.
	_, err = s.RotateRefresh(ctx, "rt-1", "rt-3", next, "jti-3", c.Now().Add(15*time.Minute))
	wantErr(t, "rotation of the new token", err, issuer.ErrRevoked)
	_, err = s.LookupRefresh(ctx, "rt-1")
	wantErr(t, "lookup of the new token", err, issuer.ErrRevoked)
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-4", next, "jti-4", c.Now().Add(15*time.Minute))
	wantErr(t, "third use of the old token", err, issuer.ErrRevoked)
	for _, h := range []string{"rt-2", "rt-3", "rt-4"} {
		_, err = s.LookupRefresh(ctx, h)
		wantErr(t, "token "+h+" of a refused rotation", err, issuer.ErrNotFound)
	}

	// The access tokens recorded with the family are denied until they expire.
	for _, jti := range []string{"jti-0", "jti-1"} {
		checkRevoked(t, s, jti, true)
	}
	for _, jti := range []string{"jti-2", "jti-3", "jti-4"} {
		checkRevoked(t, s, jti, false)
	}
	c.Advance(15 * time.Minute)
	for _, jti := range []string{"jti-0", "jti-1"} {
		checkRevoked(t, s, jti, false)
	}
}

// testRefreshRetry: the retry a rotation keeps is handed out for the
// rotated token only while the token it was rotated to is unused, its
// family live and the grace running; RetryRefresh itself changes nothing.
func testRefreshRetry(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	rt0 := sampleRefresh(c, "fam-1")
	must(t, s.CreateRefresh(ctx, "rt-0", rt0))
	_, err := s.RetryRefresh(ctx, "rt-0")
	wantErr(t, "retry of a token never rotated", err, issuer.ErrNotFound)
	next := sampleRefresh(c, "ignored")
	next.Retry = &issuer.RefreshRetry{Until: c.Now().Add(10 * time.Second), Sealed: []byte("sealed\x00pair")}
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-1", next, "jti-1", c.Now().Add(15*time.Minute))
	must(t, err)
	for range 2 {
		rr, err := s.RetryRefresh(ctx, "rt-0")
		must(t, err)
		if string(rr.Sealed) != "sealed\x00pair" || !rr.Until.Equal(c.Now().Add(10*time.Second)) {
			t.Errorf("retry %q until %v", rr.Sealed, rr.Until)
		}
	}
	_, err = s.RetryRefresh(ctx, "rt-1")
	wantErr(t, "retry of the current token", err, issuer.ErrNotFound)
	_, err = s.RetryRefresh(ctx, "rt-unknown")
	wantErr(t, "retry of an unknown token", err, issuer.ErrNotFound)
	got, err := s.LookupRefresh(ctx, "rt-1")
	must(t, err)
	if got.Retry != nil {
		t.Errorf("LookupRefresh hands out the retry: %+v", got.Retry)
	}
	// Rotating rt-0 again within the grace is a retry: nothing revoked.
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-x", next, "jti-x", c.Now().Add(15*time.Minute))
	wantErr(t, "second rotation within the grace", err, issuer.ErrRefreshRetry)
	_, err = s.LookupRefresh(ctx, "rt-1")
	must(t, err)
	_, err = s.LookupRefresh(ctx, "rt-x")
	wantErr(t, "token of the retried rotation", err, issuer.ErrNotFound)
	c.Advance(10 * time.Second)
	_, err = s.RetryRefresh(ctx, "rt-0")
	wantErr(t, "retry after the grace", err, issuer.ErrNotFound)
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-y", next, "jti-y", c.Now().Add(15*time.Minute))
	wantErr(t, "second rotation after the grace", err, issuer.ErrRefreshReused)
	_, err = s.LookupRefresh(ctx, "rt-1")
	wantErr(t, "the family after a late reuse", err, issuer.ErrRevoked)

	// A used pair is no longer retried.
	must(t, s.CreateRefresh(ctx, "rt-a", sampleRefresh(c, "fam-2")))
	next = sampleRefresh(c, "ignored")
	next.Retry = &issuer.RefreshRetry{Until: c.Now().Add(10 * time.Second), Sealed: []byte("a")}
	_, err = s.RotateRefresh(ctx, "rt-a", "rt-b", next, "", time.Time{})
	must(t, err)
	next.Retry = &issuer.RefreshRetry{Until: c.Now().Add(10 * time.Second), Sealed: []byte("b")}
	_, err = s.RotateRefresh(ctx, "rt-b", "rt-c", next, "", time.Time{})
	must(t, err)
	_, err = s.RetryRefresh(ctx, "rt-a")
	wantErr(t, "retry once the pair was used", err, issuer.ErrNotFound)
	rr, err := s.RetryRefresh(ctx, "rt-b")
	if err != nil || string(rr.Sealed) != "b" {
		t.Errorf("retry of rt-b: %q %v", rr.Sealed, err)
	}
	// Nor in a revoked family.
	must(t, s.RevokeFamily(ctx, "fam-2"))
	_, err = s.RetryRefresh(ctx, "rt-b")
	wantErr(t, "retry in a revoked family", err, issuer.ErrNotFound)
}

func testRefreshConcurrentRotate(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.CreateRefresh(ctx, "rt-0", sampleRefresh(c, "fam-1")))
	const n = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.RotateRefresh(ctx, "rt-0", fmt.Sprint("rt-new-", i), sampleRefresh(c, "fam-1"),
				fmt.Sprint("jti-", i), c.Now().Add(15*time.Minute))
		})
	}
	close(start)
	wg.Wait()

	winner, reused := -1, 0
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("rotations %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case errors.Is(err, issuer.ErrRefreshReused):
			reused++
		case !errors.Is(err, issuer.ErrRevoked):
			t.Errorf("rotation %d: got %v, want %v or %v", i, err, issuer.ErrRefreshReused, issuer.ErrRevoked)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation succeeded")
	}
	if reused == 0 {
		t.Errorf("no rotation reported %v", issuer.ErrRefreshReused)
	}
	// The losers presented a rotated token, so the winner's family is revoked.
	_, err := s.LookupRefresh(ctx, fmt.Sprint("rt-new-", winner))
	wantErr(t, "the winner's token", err, issuer.ErrRevoked)
	checkRevoked(t, s, fmt.Sprint("jti-", winner), true)
}

func testRefreshLookupStates(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	_, err := s.LookupRefresh(ctx, "rt-unknown")
	wantErr(t, "unknown token", err, issuer.ErrNotFound)

	rt0 := sampleRefresh(c, "fam-1")
	must(t, s.CreateRefresh(ctx, "rt-0", rt0))
	got, err := s.LookupRefresh(ctx, "rt-0")
	must(t, err)
	checkRefresh(t, "live token", got, rt0)
	got.Scopes[0] = "changed" // a copy
	got, err = s.LookupRefresh(ctx, "rt-0")
	must(t, err)
	checkRefresh(t, "live token after the caller changed its copy", got, rt0)

	next := sampleRefresh(c, "fam-1")
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-1", next, "", time.Time{})
	must(t, err)
	// Looking up a rotated token reports the reuse but changes nothing.
	got, err = s.LookupRefresh(ctx, "rt-0")
	wantErr(t, "rotated token", err, issuer.ErrRefreshReused)
	checkRefresh(t, "rotated token", got, rt0)
	_, err = s.LookupRefresh(ctx, "rt-1")
	wantErr(t, "current token after a lookup of the rotated one", err, nil)

	must(t, s.RevokeFamily(ctx, "fam-1"))
	for _, h := range []string{"rt-0", "rt-1"} {
		_, err = s.LookupRefresh(ctx, h)
		wantErr(t, "token "+h+" of a revoked family", err, issuer.ErrRevoked)
	}
}

func testRefreshExpired(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.CreateRefresh(ctx, "rt-0", sampleRefresh(c, "fam-1")))
	c.Advance(time.Hour + time.Second)
	_, err := s.LookupRefresh(ctx, "rt-0")
	wantErr(t, "lookup", err, issuer.ErrNotFound)
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-1", sampleRefresh(c, "fam-1"), "jti-1", c.Now().Add(15*time.Minute))
	wantErr(t, "rotation", err, issuer.ErrNotFound)
	_, err = s.LookupRefresh(ctx, "rt-1")
	wantErr(t, "token of a refused rotation", err, issuer.ErrNotFound)
}

func testRefreshFamilyNotExtended(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	rt0 := sampleRefresh(c, "fam-1")
	rt0.FamilyExpiry = c.Now().Add(90 * time.Minute)
	must(t, s.CreateRefresh(ctx, "rt-0", rt0))
	c.Advance(30 * time.Minute)
	next := sampleRefresh(c, "fam-1")
	next.Expiry = c.Now().Add(2 * time.Hour)
	next.FamilyExpiry = c.Now().Add(48 * time.Hour)
	_, err := s.RotateRefresh(ctx, "rt-0", "rt-1", next, "", time.Time{})
	must(t, err)
	got, err := s.LookupRefresh(ctx, "rt-1")
	must(t, err)
	if !got.FamilyExpiry.Equal(rt0.FamilyExpiry) {
		t.Errorf("rotated token's FamilyExpiry = %v, want the family's %v", got.FamilyExpiry, rt0.FamilyExpiry)
	}
	c.Advance(time.Hour + time.Second) // past the family's end, before the token's
	_, err = s.LookupRefresh(ctx, "rt-1")
	wantErr(t, "token of an ended family", err, issuer.ErrNotFound)
}

func testRevokeFamily(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.CreateRefresh(ctx, "rt-0", sampleRefresh(c, "fam-1")))
	must(t, s.CreateRefresh(ctx, "rt-other", sampleRefresh(c, "fam-2")))
	must(t, s.AddFamilyAccess(ctx, "fam-1", "jti-a", c.Now().Add(15*time.Minute)))
	must(t, s.AddFamilyAccess(ctx, "fam-2", "jti-other", c.Now().Add(15*time.Minute)))

	must(t, s.RevokeFamily(ctx, "fam-1"))
	must(t, s.RevokeFamily(ctx, "fam-1")) // again: not an error
	_, err := s.LookupRefresh(ctx, "rt-0")
	wantErr(t, "lookup", err, issuer.ErrRevoked)
	_, err = s.RotateRefresh(ctx, "rt-0", "rt-1", sampleRefresh(c, "fam-1"), "jti-b", c.Now().Add(15*time.Minute))
	wantErr(t, "rotation", err, issuer.ErrRevoked)
	checkRevoked(t, s, "jti-a", true)
	checkRevoked(t, s, "jti-b", false)

	// An access token recorded after the revocation is denied as well.
	err = s.AddFamilyAccess(ctx, "fam-1", "jti-late", c.Now().Add(15*time.Minute))
	if err != nil && !errors.Is(err, issuer.ErrRevoked) {
		t.Errorf("access recorded with a revoked family: got %v, want nil or %v", err, issuer.ErrRevoked)
	}
	checkRevoked(t, s, "jti-late", true)

	// Other families are untouched.
	_, err = s.LookupRefresh(ctx, "rt-other")
	wantErr(t, "token of another family", err, nil)
	checkRevoked(t, s, "jti-other", false)

	c.Advance(15*time.Minute + time.Second)
	checkRevoked(t, s, "jti-a", false)
	checkRevoked(t, s, "jti-late", false)
}

// testRevokeFamilyBeforeCreate covers a code replay that revokes the family
// its first redemption named before the token endpoint created it: the
// creation must then fail, or the replayed code's tokens would live on.
func testRevokeFamilyBeforeCreate(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.RevokeFamily(ctx, "fam-1"))
	err := s.CreateRefresh(ctx, "rt-0", sampleRefresh(c, "fam-1"))
	wantErr(t, "creation of a revoked family", err, issuer.ErrRevoked)
	_, err = s.LookupRefresh(ctx, "rt-0")
	if !errors.Is(err, issuer.ErrNotFound) && !errors.Is(err, issuer.ErrRevoked) {
		t.Errorf("token of a revoked family: got %v, want %v or %v", err, issuer.ErrNotFound, issuer.ErrRevoked)
	}
}

func testAccessRevocation(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	must(t, s.RevokeAccess(ctx, "jti-1", c.Now().Add(10*time.Minute)))
	must(t, s.RevokeAccess(ctx, "jti-past", c.Now().Add(-time.Second)))
	checkRevoked(t, s, "jti-1", true)
	checkRevoked(t, s, "jti-2", false)
	checkRevoked(t, s, "jti-past", false)
	c.Advance(10*time.Minute + time.Second)
	checkRevoked(t, s, "jti-1", false)
}

func testSessions(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	_, err := s.GetSession(ctx, "sid-1")
	wantErr(t, "unknown session", err, issuer.ErrNotFound)

	s1 := issuer.Session{Subject: "alice", AuthTime: c.Now(), Expiry: c.Now().Add(time.Hour)}
	must(t, s.SaveSession(ctx, "sid-1", s1))
	got, err := s.GetSession(ctx, "sid-1")
	must(t, err)
	checkSession(t, "saved session", got, s1)

	s2 := issuer.Session{Subject: "bob", AuthTime: c.Now(), Expiry: c.Now().Add(2 * time.Hour)}
	must(t, s.SaveSession(ctx, "sid-1", s2))
	got, err = s.GetSession(ctx, "sid-1")
	must(t, err)
	checkSession(t, "replaced session", got, s2)

	must(t, s.DeleteSession(ctx, "sid-1"))
	_, err = s.GetSession(ctx, "sid-1")
	wantErr(t, "deleted session", err, issuer.ErrNotFound)
	must(t, s.DeleteSession(ctx, "sid-1")) // deleting a missing session is fine

	must(t, s.SaveSession(ctx, "sid-2", s1))
	c.Advance(time.Hour + time.Second)
	_, err = s.GetSession(ctx, "sid-2")
	wantErr(t, "expired session", err, issuer.ErrNotFound)
}

func testConsent(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	_, err := s.GetConsent(ctx, "alice", "client-1")
	wantErr(t, "unknown consent", err, issuer.ErrNotFound)

	scopes := []string{"openid", "read"}
	must(t, s.SaveConsent(ctx, "alice", "client-1", scopes, c.Now().Add(time.Hour)))
	scopes[0] = "changed" // the store keeps its own copy
	got, err := s.GetConsent(ctx, "alice", "client-1")
	must(t, err)
	checkScopes(t, "saved consent", got, []string{"openid", "read"})
	got[0] = "changed" // and hands out copies
	got, err = s.GetConsent(ctx, "alice", "client-1")
	must(t, err)
	checkScopes(t, "consent after the caller changed its copy", got, []string{"openid", "read"})

	for _, k := range [][2]string{{"alice", "client-2"}, {"bob", "client-1"}} {
		_, err = s.GetConsent(ctx, k[0], k[1])
		wantErr(t, "consent of "+k[0]+" for "+k[1], err, issuer.ErrNotFound)
	}

	must(t, s.SaveConsent(ctx, "alice", "client-1", []string{"openid", "read", "write"}, c.Now().Add(2*time.Hour)))
	got, err = s.GetConsent(ctx, "alice", "client-1")
	must(t, err)
	checkScopes(t, "replaced consent", got, []string{"openid", "read", "write"})

	c.Advance(2*time.Hour + time.Second)
	_, err = s.GetConsent(ctx, "alice", "client-1")
	wantErr(t, "expired consent", err, issuer.ErrNotFound)
}

func testHit(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	hit := func(key string, want int) {
		t.Helper()
		got, err := s.Hit(ctx, key, time.Minute)
		must(t, err)
		if got != want {
			t.Errorf("Hit(%q) at %v = %d, want %d", key, c.Now().Format(time.TimeOnly), got, want)
		}
	}
	count := func(key string, want int) {
		t.Helper()
		got, err := s.Count(ctx, key)
		must(t, err)
		if got != want {
			t.Errorf("Count(%q) = %d, want %d", key, got, want)
		}
	}
	count("login:alice", 0)
	hit("login:alice", 1)
	hit("login:alice", 2)
	count("login:alice", 2)
	hit("login:bob", 1)
	c.Advance(30 * time.Second)
	hit("login:alice", 3)
	count("login:alice", 3)
	c.Advance(30*time.Second + time.Second) // the window started at the first hit
	count("login:alice", 0)
	hit("login:alice", 1)
	hit("login:alice", 2)
	hit("login:bob", 1)
}

// sampleClient is a confidential client registered now.
func sampleClient(c *Clock, id string) issuer.RegisteredClient {
	return issuer.RegisteredClient{
		ID: id, Name: "Example app " + id, SecretHash: "secret-hash-" + id,
		RedirectURIs: []string{"https://app.example/callback", "http://127.0.0.1/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		Scopes:       []string{"openid", "offline_access"},
		ClientURI:    "https://app.example/", IssuedAt: c.Now(),
	}
}

// register registers a client, failing the test on an error.
func register(t *testing.T, s issuer.Store, c issuer.RegisteredClient, max int, unusedTTL time.Duration) {
	t.Helper()
	if err := s.RegisterClient(t.Context(), c, max, unusedTTL); err != nil {
		t.Fatalf("RegisterClient(%q, max %d): unexpected error: %v", c.ID, max, err)
	}
}

// checkClientLive checks that GetClient returns want, or ErrNotFound when
// want is nil.
func checkClientLive(t *testing.T, s issuer.Store, id string, want *issuer.RegisteredClient) {
	t.Helper()
	got, err := s.GetClient(t.Context(), id)
	if want == nil {
		wantErr(t, "GetClient("+id+")", err, issuer.ErrNotFound)
		return
	}
	if err != nil {
		t.Errorf("GetClient(%q): unexpected error: %v", id, err)
		return
	}
	checkClient(t, "GetClient("+id+")", got, *want)
}

func testClientRegister(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	checkClientLive(t, s, "client-1", nil)

	want := sampleClient(c, "client-1")
	in := sampleClient(c, "client-1")
	register(t, s, in, 10, time.Hour)
	in.RedirectURIs[0], in.GrantTypes[0], in.Scopes[0] = "changed", "changed", "changed" // the store keeps its own copy
	got, err := s.GetClient(ctx, "client-1")
	must(t, err)
	checkClient(t, "registered client", got, want)
	got.RedirectURIs[0], got.GrantTypes[0], got.Scopes[0] = "changed", "changed", "changed" // and hands out copies
	checkClientLive(t, s, "client-1", &want)

	// Another client under the same ID is refused, and the first one kept.
	dup := sampleClient(c, "client-1")
	dup.Name = "Impostor"
	wantErr(t, "registration of a taken ID", s.RegisterClient(ctx, dup, 10, time.Hour), issuer.ErrExists)
	wantErr(t, "registration of a taken ID without limit or TTL", s.RegisterClient(ctx, dup, 0, 0), issuer.ErrExists)
	checkClientLive(t, s, "client-1", &want)

	// A public client with the fewest fields.
	pub := issuer.RegisteredClient{ID: "client-2", RedirectURIs: []string{"https://app.example/cb"},
		IssuedAt: c.Now().Add(-time.Second)}
	register(t, s, pub, 10, time.Hour)
	checkClientLive(t, s, "client-2", &pub)
	checkClientLive(t, s, "client-3", nil)
}

func testClientLimit(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	register(t, s, sampleClient(c, "client-a"), 2, time.Hour)
	register(t, s, sampleClient(c, "client-b"), 2, time.Hour)
	err := s.RegisterClient(ctx, sampleClient(c, "client-c"), 2, time.Hour)
	wantErr(t, "registration beyond the limit", err, issuer.ErrClientLimit)
	checkClientLive(t, s, "client-c", nil)

	// Deleting a client frees its slot.
	must(t, s.DeleteClient(ctx, "client-a"))
	register(t, s, sampleClient(c, "client-c"), 2, time.Hour)
	err = s.RegisterClient(ctx, sampleClient(c, "client-d"), 2, time.Hour)
	wantErr(t, "registration beyond the limit after a deletion", err, issuer.ErrClientLimit)

	// max 0 means no limit, and a larger max lets more in.
	register(t, s, sampleClient(c, "client-d"), 0, time.Hour)
	register(t, s, sampleClient(c, "client-e"), 0, 0)
	register(t, s, sampleClient(c, "client-f"), 5, time.Hour)
	err = s.RegisterClient(ctx, sampleClient(c, "client-g"), 5, time.Hour)
	wantErr(t, "registration beyond a larger limit", err, issuer.ErrClientLimit)
	err = s.RegisterClient(ctx, sampleClient(c, "client-g"), 3, time.Hour)
	wantErr(t, "registration beyond a limit that was passed already", err, issuer.ErrClientLimit)
	for _, id := range []string{"client-b", "client-c", "client-d", "client-e", "client-f"} {
		want := sampleClient(c, id)
		checkClientLive(t, s, id, &want)
	}
	checkClientLive(t, s, "client-a", nil)
	checkClientLive(t, s, "client-g", nil)
}

func testClientUnusedExpiry(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	unused, kept := sampleClient(c, "client-unused"), sampleClient(c, "client-kept")
	register(t, s, unused, 2, time.Hour)
	register(t, s, kept, 2, 0) // no unused TTL: kept until deleted

	c.Advance(time.Hour - time.Second)
	checkClientLive(t, s, unused.ID, &unused)
	c.Advance(2 * time.Second)
	checkClientLive(t, s, unused.ID, nil)
	wantErr(t, "use of an expired client", s.UseClient(ctx, unused.ID), issuer.ErrNotFound)
	wantErr(t, "deletion of an expired client", s.DeleteClient(ctx, unused.ID), issuer.ErrNotFound)
	checkClientLive(t, s, kept.ID, &kept)

	// The expired client no longer counts against the limit, and its ID
	// may be registered again.
	fresh := sampleClient(c, "client-fresh")
	register(t, s, fresh, 2, time.Hour)
	err := s.RegisterClient(ctx, sampleClient(c, "client-more"), 2, time.Hour)
	wantErr(t, "registration beyond the limit", err, issuer.ErrClientLimit)
	again := sampleClient(c, unused.ID)
	register(t, s, again, 3, time.Hour)
	checkClientLive(t, s, unused.ID, &again)

	c.Advance(100 * 24 * time.Hour)
	checkClientLive(t, s, kept.ID, &kept)
	checkClientLive(t, s, fresh.ID, nil)
	checkClientLive(t, s, unused.ID, nil)
	register(t, s, sampleClient(c, "client-more"), 2, time.Hour)

	// A client that expired unread no longer counts either, however soon
	// after its end the next registration comes.
	register(t, s, sampleClient(c, "client-short"), 3, 30*time.Second)
	err = s.RegisterClient(ctx, sampleClient(c, "client-after"), 3, time.Hour)
	wantErr(t, "registration beyond the limit before the short-lived client ended", err, issuer.ErrClientLimit)
	c.Advance(31 * time.Second)
	register(t, s, sampleClient(c, "client-after"), 3, time.Hour)
	checkClientLive(t, s, "client-short", nil)
}

func testClientUse(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	wantErr(t, "use of an unknown client", s.UseClient(ctx, "client-unknown"), issuer.ErrNotFound)

	used := sampleClient(c, "client-used")
	register(t, s, used, 2, time.Hour)
	c.Advance(30 * time.Minute)
	must(t, s.UseClient(ctx, used.ID))
	must(t, s.UseClient(ctx, used.ID)) // again: not an error

	// A used client outlives its unused TTL, and keeps counting.
	c.Advance(2 * time.Hour)
	checkClientLive(t, s, used.ID, &used)
	must(t, s.UseClient(ctx, used.ID))
	other := sampleClient(c, "client-other")
	register(t, s, other, 2, time.Hour)
	err := s.RegisterClient(ctx, sampleClient(c, "client-third"), 2, time.Hour)
	wantErr(t, "registration beyond the limit", err, issuer.ErrClientLimit)

	c.Advance(100 * 24 * time.Hour)
	checkClientLive(t, s, used.ID, &used)
	checkClientLive(t, s, other.ID, nil)

	// Using a client without an unused TTL changes nothing either.
	forever := sampleClient(c, "client-forever")
	register(t, s, forever, 0, 0)
	must(t, s.UseClient(ctx, forever.ID))
	checkClientLive(t, s, forever.ID, &forever)

	// A used client ends when it is deleted.
	must(t, s.DeleteClient(ctx, used.ID))
	checkClientLive(t, s, used.ID, nil)
	wantErr(t, "use of a deleted client", s.UseClient(ctx, used.ID), issuer.ErrNotFound)
}

func testClientDelete(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	wantErr(t, "deletion of an unknown client", s.DeleteClient(ctx, "client-unknown"), issuer.ErrNotFound)

	a, b := sampleClient(c, "client-a"), sampleClient(c, "client-b")
	register(t, s, a, 2, time.Hour)
	register(t, s, b, 2, 0)
	must(t, s.DeleteClient(ctx, a.ID))
	checkClientLive(t, s, a.ID, nil)
	wantErr(t, "use of a deleted client", s.UseClient(ctx, a.ID), issuer.ErrNotFound)
	wantErr(t, "second deletion", s.DeleteClient(ctx, a.ID), issuer.ErrNotFound)
	checkClientLive(t, s, b.ID, &b) // others are untouched

	// The ID is free again, and so is the slot.
	again := sampleClient(c, a.ID)
	again.Name = "Another app"
	register(t, s, again, 2, time.Hour)
	checkClientLive(t, s, a.ID, &again)

	must(t, s.DeleteClient(ctx, b.ID)) // one without an unused TTL
	checkClientLive(t, s, b.ID, nil)
	register(t, s, sampleClient(c, "client-c"), 2, time.Hour)
	err := s.RegisterClient(ctx, sampleClient(c, "client-d"), 2, time.Hour)
	wantErr(t, "registration beyond the limit", err, issuer.ErrClientLimit)
}

func testClientConcurrentLimit(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	const n, limit = 20, 5
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.RegisterClient(ctx, sampleClient(c, fmt.Sprint("client-", i)), limit, time.Hour)
		})
	}
	close(start)
	wg.Wait()

	won := 0
	for i, err := range errs {
		id := fmt.Sprint("client-", i)
		switch {
		case err == nil:
			won++
			want := sampleClient(c, id)
			checkClientLive(t, s, id, &want)
		case errors.Is(err, issuer.ErrClientLimit):
			checkClientLive(t, s, id, nil)
		default:
			t.Errorf("registration %d: got %v, want nil or %v", i, err, issuer.ErrClientLimit)
		}
	}
	if won != limit {
		t.Errorf("%d registrations succeeded, want %d", won, limit)
	}
}

func testClientConcurrentRegister(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	const n = 20
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			cl := sampleClient(c, "client-1")
			cl.Name = fmt.Sprint("app-", i)
			errs[i] = s.RegisterClient(ctx, cl, 0, time.Hour)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("registrations %d and %d of one ID both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, issuer.ErrExists):
			t.Errorf("registration %d: got %v, want %v", i, err, issuer.ErrExists)
		}
	}
	if winner < 0 {
		t.Fatal("no registration succeeded")
	}
	want := sampleClient(c, "client-1")
	want.Name = fmt.Sprint("app-", winner)
	checkClientLive(t, s, "client-1", &want)
}

func testPing(t *testing.T, s issuer.Store, _ *Clock) {
	must(t, s.Ping(t.Context()))
}

// must stops the test on an unexpected error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantErr checks that err is target (or nil when target is nil).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func checkRevoked(t *testing.T, s issuer.Store, jti string, want bool) {
	t.Helper()
	got, err := s.IsAccessRevoked(t.Context(), jti)
	must(t, err)
	if got != want {
		t.Errorf("IsAccessRevoked(%q) = %v, want %v", jti, got, want)
	}
}

// The comparisons below ignore time zones, monotonic readings and the
// difference between nil and empty slices, which a store that serialises
// its values may not keep.

func checkCode(t *testing.T, what string, got, want issuer.AuthCode) {
	t.Helper()
	got.Issued, want.Issued = issuer.Issued{}, issuer.Issued{}
	for _, c := range []*issuer.AuthCode{&got, &want} {
		c.AuthTime, c.Expiry, c.Scopes = norm(c.AuthTime), norm(c.Expiry), normSlice(c.Scopes)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got code\n%+v\nwant\n%+v", what, got, want)
	}
}

func checkIssued(t *testing.T, what string, got, want issuer.Issued) {
	t.Helper()
	got.AccessExpiry, want.AccessExpiry = norm(got.AccessExpiry), norm(want.AccessExpiry)
	if got != want {
		t.Errorf("%s: got Issued %+v, want %+v", what, got, want)
	}
}

func checkRefresh(t *testing.T, what string, got, want issuer.RefreshToken) {
	t.Helper()
	for _, r := range []*issuer.RefreshToken{&got, &want} {
		r.AuthTime, r.Expiry, r.FamilyExpiry = norm(r.AuthTime), norm(r.Expiry), norm(r.FamilyExpiry)
		r.Scopes = normSlice(r.Scopes)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got refresh token\n%+v\nwant\n%+v", what, got, want)
	}
}

func checkSession(t *testing.T, what string, got, want issuer.Session) {
	t.Helper()
	for _, s := range []*issuer.Session{&got, &want} {
		s.AuthTime, s.Expiry = norm(s.AuthTime), norm(s.Expiry)
	}
	if got != want {
		t.Errorf("%s: got session %+v, want %+v", what, got, want)
	}
}

func checkClient(t *testing.T, what string, got, want issuer.RegisteredClient) {
	t.Helper()
	for _, c := range []*issuer.RegisteredClient{&got, &want} {
		c.IssuedAt = norm(c.IssuedAt)
		c.RedirectURIs, c.GrantTypes, c.Scopes = normSlice(c.RedirectURIs), normSlice(c.GrantTypes), normSlice(c.Scopes)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got client\n%+v\nwant\n%+v", what, got, want)
	}
}

func checkScopes(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got scopes %q, want %q", what, got, want)
	}
}

func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

func normSlice(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
