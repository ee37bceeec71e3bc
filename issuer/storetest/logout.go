package storetest

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/issuer"
)

// The contract of what logout needs: the clients that took part in a
// session, a subject's sessions, and revoking a subject's or a session's
// refresh-token families.

// idHash is how the store's indexes name the session whose ID is id.
func idHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func testSessionParticipants(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	wantErr(t, "joining an unknown session", s.JoinSession(ctx, "sid-1", "client-1"), issuer.ErrNotFound)
	_, _, err := s.EndSession(ctx, idHash("sid-1"))
	wantErr(t, "ending an unknown session", err, issuer.ErrNotFound)

	s1 := issuer.Session{Subject: "alice", AuthTime: c.Now(), Expiry: c.Now().Add(time.Hour)}
	must(t, s.SaveSession(ctx, "sid-1", s1))
	must(t, s.SaveSession(ctx, "sid-2", s1))
	for _, id := range []string{"client-2", "client-1", "client-2"} { // joining again is fine
		must(t, s.JoinSession(ctx, "sid-1", id))
	}
	must(t, s.JoinSession(ctx, "sid-2", "client-3"))

	got, clients, err := s.EndSession(ctx, idHash("sid-1"))
	must(t, err)
	checkSession(t, "ended session", got, s1)
	checkScopes(t, "clients of the ended session", clients, []string{"client-1", "client-2"})
	_, err = s.GetSession(ctx, "sid-1")
	wantErr(t, "ended session", err, issuer.ErrNotFound)
	_, _, err = s.EndSession(ctx, idHash("sid-1"))
	wantErr(t, "ending it again", err, issuer.ErrNotFound)
	wantErr(t, "joining an ended session", s.JoinSession(ctx, "sid-1", "client-1"), issuer.ErrNotFound)

	// A new session under the same ID starts with no one.
	must(t, s.SaveSession(ctx, "sid-1", s1))
	_, clients, err = s.EndSession(ctx, idHash("sid-1"))
	must(t, err)
	checkScopes(t, "clients of a new session under an old ID", clients, nil)

	// Saving again replaces the session and forgets who took part.
	must(t, s.SaveSession(ctx, "sid-2", s1))
	_, clients, err = s.EndSession(ctx, idHash("sid-2"))
	must(t, err)
	checkScopes(t, "clients of a replaced session", clients, nil)

	// Nothing outlives the session.
	must(t, s.SaveSession(ctx, "sid-3", s1))
	must(t, s.JoinSession(ctx, "sid-3", "client-1"))
	c.Advance(time.Hour + time.Second)
	wantErr(t, "joining an expired session", s.JoinSession(ctx, "sid-3", "client-1"), issuer.ErrNotFound)
	_, _, err = s.EndSession(ctx, idHash("sid-3"))
	wantErr(t, "ending an expired session", err, issuer.ErrNotFound)
}

func testSubjectSessions(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	check := func(what, subject string, ids ...string) {
		t.Helper()
		got, err := s.SubjectSessions(ctx, subject)
		must(t, err)
		want := make([]string, 0, len(ids))
		for _, id := range ids {
			want = append(want, idHash(id))
		}
		checkSet(t, what, got, want)
	}
	check("no sessions", "alice")
	alice := func(ttl time.Duration) issuer.Session {
		return issuer.Session{Subject: "alice", AuthTime: c.Now(), Expiry: c.Now().Add(ttl)}
	}
	must(t, s.SaveSession(ctx, "sid-1", alice(time.Hour)))
	must(t, s.SaveSession(ctx, "sid-2", alice(2*time.Hour)))
	must(t, s.SaveSession(ctx, "sid-3", alice(3*time.Hour)))
	must(t, s.SaveSession(ctx, "sid-bob", issuer.Session{Subject: "bob", AuthTime: c.Now(), Expiry: c.Now().Add(time.Hour)}))
	check("alice's sessions", "alice", "sid-1", "sid-2", "sid-3")
	check("bob's sessions", "bob", "sid-bob")

	must(t, s.DeleteSession(ctx, "sid-2"))
	check("after a deletion", "alice", "sid-1", "sid-3")
	_, _, err := s.EndSession(ctx, idHash("sid-3"))
	must(t, err)
	check("after an end", "alice", "sid-1")

	// A session saved again for someone else moves to them.
	must(t, s.SaveSession(ctx, "sid-bob", alice(time.Hour)))
	check("alice's after taking over bob's session ID", "alice", "sid-1", "sid-bob")
	check("bob's after his session ID went to alice", "bob")

	c.Advance(time.Hour + time.Second)
	check("after the sessions expired", "alice")
}

// familyFixture creates, for alice, fam-1 and fam-2 in session sid-1 and
// fam-3 in sid-2, and fam-bob for bob in sid-bob, each with an access token
// jti-<family> recorded.
func familyFixture(t *testing.T, s issuer.Store, c *Clock) {
	t.Helper()
	ctx := t.Context()
	for _, f := range []struct{ id, client, subject, session string }{
		{"fam-1", "client-1", "alice", "sid-1"},
		{"fam-2", "client-2", "alice", "sid-1"},
		{"fam-3", "client-1", "alice", "sid-2"},
		{"fam-bob", "client-1", "bob", "sid-bob"},
	} {
		rt := sampleRefresh(c, f.id)
		rt.ClientID, rt.Subject, rt.SessionID = f.client, f.subject, f.session
		must(t, s.CreateRefresh(ctx, "rt-"+f.id, rt))
		must(t, s.AddFamilyAccess(ctx, f.id, "jti-"+f.id, c.Now().Add(15*time.Minute)))
	}
}

func testRevokeSessionFamilies(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	familyFixture(t, s, c)
	// Rotation keeps the family indexed.
	_, err := s.RotateRefresh(ctx, "rt-fam-1", "rt-fam-1b", sampleRefresh(c, "fam-1"), "jti-fam-1b", c.Now().Add(15*time.Minute))
	must(t, err)

	got, err := s.RevokeSessionFamilies(ctx, idHash("sid-1"))
	must(t, err)
	checkFamilies(t, "families of sid-1", got, []issuer.RevokedFamily{
		{ID: "fam-1", ClientID: "client-1", Subject: "alice", SessionHash: idHash("sid-1")},
		{ID: "fam-2", ClientID: "client-2", Subject: "alice", SessionHash: idHash("sid-1")},
	})
	for _, h := range []string{"rt-fam-1b", "rt-fam-2"} {
		_, err := s.LookupRefresh(ctx, h)
		wantErr(t, "token "+h+" of a revoked session's family", err, issuer.ErrRevoked)
	}
	for _, jti := range []string{"jti-fam-1", "jti-fam-1b", "jti-fam-2"} {
		checkRevoked(t, s, jti, true)
	}
	for _, h := range []string{"rt-fam-3", "rt-fam-bob"} {
		_, err := s.LookupRefresh(ctx, h)
		wantErr(t, "token "+h+" of another session", err, nil)
	}
	checkRevoked(t, s, "jti-fam-3", false)

	got, err = s.RevokeSessionFamilies(ctx, idHash("sid-1"))
	must(t, err)
	checkFamilies(t, "families of sid-1 revoked again", got, nil)
	got, err = s.RevokeSessionFamilies(ctx, idHash("sid-unknown"))
	must(t, err)
	checkFamilies(t, "families of an unknown session", got, nil)

	// A family that ended is not revoked (nor returned).
	c.Advance(24*time.Hour + time.Second)
	got, err = s.RevokeSessionFamilies(ctx, idHash("sid-2"))
	must(t, err)
	checkFamilies(t, "families of sid-2 after they ended", got, nil)
}

func testRevokeSubjectFamilies(t *testing.T, s issuer.Store, c *Clock) {
	ctx := t.Context()
	familyFixture(t, s, c)
	must(t, s.RevokeFamily(ctx, "fam-2")) // revoked before: not returned

	got, err := s.RevokeSubjectFamilies(ctx, "alice")
	must(t, err)
	checkFamilies(t, "alice's families", got, []issuer.RevokedFamily{
		{ID: "fam-1", ClientID: "client-1", Subject: "alice", SessionHash: idHash("sid-1")},
		{ID: "fam-3", ClientID: "client-1", Subject: "alice", SessionHash: idHash("sid-2")},
	})
	for _, h := range []string{"rt-fam-1", "rt-fam-2", "rt-fam-3"} {
		_, err := s.LookupRefresh(ctx, h)
		wantErr(t, "token "+h+" of alice", err, issuer.ErrRevoked)
	}
	checkRevoked(t, s, "jti-fam-3", true)
	_, err = s.LookupRefresh(ctx, "rt-fam-bob")
	wantErr(t, "bob's token", err, nil)
	checkRevoked(t, s, "jti-fam-bob", false)

	got, err = s.RevokeSubjectFamilies(ctx, "alice")
	must(t, err)
	checkFamilies(t, "alice's families revoked again", got, nil)

	// A family created later is indexed too.
	rt := sampleRefresh(c, "fam-4")
	must(t, s.CreateRefresh(ctx, "rt-fam-4", rt))
	got, err = s.RevokeSubjectFamilies(ctx, "alice")
	must(t, err)
	checkFamilies(t, "alice's new family", got, []issuer.RevokedFamily{
		{ID: "fam-4", ClientID: "client-1", Subject: "alice", SessionHash: idHash("sid-1")},
	})

	c.Advance(24*time.Hour + time.Second)
	got, err = s.RevokeSubjectFamilies(ctx, "bob")
	must(t, err)
	checkFamilies(t, "bob's families after they ended", got, nil)

	// A family whose access token outlives it stays indexed as long as the
	// token, so revoking the subject's families still denies it.
	rt = sampleRefresh(c, "fam-5")
	rt.Expiry, rt.FamilyExpiry = c.Now().Add(10*time.Minute), c.Now().Add(10*time.Minute)
	must(t, s.CreateRefresh(ctx, "rt-fam-5", rt))
	must(t, s.AddFamilyAccess(ctx, "fam-5", "jti-fam-5", c.Now().Add(15*time.Minute)))
	c.Advance(12 * time.Minute)
	got, err = s.RevokeSubjectFamilies(ctx, "alice")
	must(t, err)
	checkFamilies(t, "alice's family past its end, its access token alive", got, []issuer.RevokedFamily{
		{ID: "fam-5", ClientID: "client-1", Subject: "alice", SessionHash: idHash("sid-1")},
	})
	checkRevoked(t, s, "jti-fam-5", true)
}

func checkFamilies(t *testing.T, what string, got, want []issuer.RevokedFamily) {
	t.Helper()
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Errorf("%s: got families\n%+v\nwant\n%+v", what, got, want)
	}
}

// checkSet compares two lists of IDs in any order.
func checkSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}
