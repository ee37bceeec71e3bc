package issuer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/issuer/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) issuer.Store {
		return issuer.NewMemoryStore(issuer.MemoryConfig{Now: now})
	})
}

// memStore returns a store bounded to max entries of each kind and its clock.
func memStore(max int) (*issuer.MemoryStore, *storetest.Clock) {
	c := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	return issuer.NewMemoryStore(issuer.MemoryConfig{MaxEntries: max, Now: c.Now}), c
}

func memCode(c *storetest.Clock) issuer.AuthCode {
	return issuer.AuthCode{ClientID: "client-1", Subject: "alice", Expiry: c.Now().Add(time.Minute)}
}

func memRefresh(c *storetest.Clock, familyID string) issuer.RefreshToken {
	return issuer.RefreshToken{FamilyID: familyID, ClientID: "client-1", Subject: "alice",
		Expiry: c.Now().Add(time.Hour), FamilyExpiry: c.Now().Add(24 * time.Hour)}
}

func memMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// memFull checks that err is the refusal of a full store.
func memFull(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, issuer.ErrUnavailable) {
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, issuer.ErrUnavailable)
	}
}

func TestMemoryStoreRefusesCodesWhenFull(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(3)
	for i := range 3 {
		memMust(t, s.SaveCode(ctx, fmt.Sprint("code-", i), memCode(c)))
	}
	memFull(t, "fourth code", s.SaveCode(ctx, "code-3", memCode(c)))

	// A redeemed code still counts: it is kept to detect replays.
	_, err := s.RedeemCode(ctx, "code-0", issuer.Issued{AccessJTI: "jti-0"})
	memMust(t, err)
	c.Advance(2 * time.Minute)
	memMust(t, s.SaveCode(ctx, "code-3", memCode(c)))
	memMust(t, s.SaveCode(ctx, "code-4", memCode(c)))
	memFull(t, "code while a redeemed one is remembered", s.SaveCode(ctx, "code-5", memCode(c)))
	_, err = s.RedeemCode(ctx, "code-0", issuer.Issued{AccessJTI: "jti-1"})
	if !errors.Is(err, issuer.ErrCodeReused) {
		t.Fatalf("replay of the redeemed code: got %v, want %v", err, issuer.ErrCodeReused)
	}

	// Once the replay window is over too, Sweep makes room.
	c.Advance(10 * time.Minute)
	s.Sweep()
	if n := s.Len(); n != 0 {
		t.Errorf("Len after Sweep = %d, want 0", n)
	}
	for i := range 3 {
		memMust(t, s.SaveCode(ctx, fmt.Sprint("code-new-", i), memCode(c)))
	}
	memFull(t, "code beyond the bound again", s.SaveCode(ctx, "code-new-3", memCode(c)))

	// A full kind also sweeps by itself before refusing.
	c.Advance(2 * time.Minute)
	memMust(t, s.SaveCode(ctx, "code-later", memCode(c)))
}

func TestMemoryStoreRefusesRefreshWhenFull(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(2)
	memMust(t, s.CreateRefresh(ctx, "rt-a0", memRefresh(c, "fam-a")))
	memMust(t, s.CreateRefresh(ctx, "rt-b0", memRefresh(c, "fam-b")))
	memFull(t, "third family", s.CreateRefresh(ctx, "rt-c0", memRefresh(c, "fam-c")))

	// A rotation that does not fit changes nothing: the old token stays
	// current and is not mistaken for a reuse later.
	_, err := s.RotateRefresh(ctx, "rt-a0", "rt-a1", memRefresh(c, "fam-a"), "jti-1", c.Now().Add(time.Minute))
	memFull(t, "rotation in a full store", err)
	if _, err := s.LookupRefresh(ctx, "rt-a0"); err != nil {
		t.Fatalf("old token after a refused rotation: %v", err)
	}
	if _, err := s.LookupRefresh(ctx, "rt-a1"); !errors.Is(err, issuer.ErrNotFound) {
		t.Errorf("new token of a refused rotation: got %v, want %v", err, issuer.ErrNotFound)
	}

	c.Advance(24 * time.Hour)
	_, err = s.RotateRefresh(ctx, "rt-a0", "rt-a1", memRefresh(c, "fam-a"), "", time.Time{})
	if !errors.Is(err, issuer.ErrNotFound) {
		t.Errorf("rotation of an expired token: got %v, want %v", err, issuer.ErrNotFound)
	}
	memMust(t, s.CreateRefresh(ctx, "rt-c0", memRefresh(c, "fam-c")))
}

func TestMemoryStoreRefusesRevocationsWhenFull(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(1)
	memMust(t, s.RevokeAccess(ctx, "jti-0", c.Now().Add(time.Minute)))
	memFull(t, "second revocation", s.RevokeAccess(ctx, "jti-1", c.Now().Add(time.Minute)))
	memMust(t, s.RevokeAccess(ctx, "jti-0", c.Now().Add(time.Hour))) // same jti: no new entry

	// Revoking a family that has many access tokens needs no room at all.
	memMust(t, s.CreateRefresh(ctx, "rt-0", memRefresh(c, "fam-1")))
	memMust(t, s.AddFamilyAccess(ctx, "fam-1", "jti-f", c.Now().Add(time.Minute)))
	memMust(t, s.RevokeFamily(ctx, "fam-1"))
	if ok, _ := s.IsAccessRevoked(ctx, "jti-f"); !ok {
		t.Error("access token of a revoked family is not revoked")
	}
}

func TestMemoryStoreEvictsOldestSessionsAndCounters(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(2)
	for i := range 3 {
		sess := issuer.Session{Subject: fmt.Sprint("user-", i), Expiry: c.Now().Add(time.Hour)}
		memMust(t, s.SaveSession(ctx, fmt.Sprint("sid-", i), sess))
	}
	for i, want := range []error{issuer.ErrNotFound, nil, nil} {
		if _, err := s.GetSession(ctx, fmt.Sprint("sid-", i)); !errors.Is(err, want) {
			t.Errorf("session %d: got %v, want %v", i, err, want)
		}
	}

	for _, key := range []string{"k0", "k0", "k1", "k2"} {
		if _, err := s.Hit(ctx, key, time.Minute); err != nil {
			t.Fatalf("Hit(%q): %v", key, err)
		}
	}
	// k0 was dropped to make room for k2; counting it again drops k1.
	for _, h := range []struct {
		key  string
		want int
	}{{"k2", 2}, {"k1", 2}, {"k0", 1}, {"k2", 3}, {"k1", 1}} {
		if n, err := s.Hit(ctx, h.key, time.Minute); err != nil || n != h.want {
			t.Errorf("Hit(%q) = %d, %v, want %d", h.key, n, err, h.want)
		}
	}
}

func TestMemoryStoreDoesNotGrow(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(0)
	const n = 2000
	for i := range n {
		id := fmt.Sprint(i)
		memMust(t, s.SaveCode(ctx, "code-"+id, memCode(c)))
		if i%2 == 0 {
			_, err := s.RedeemCode(ctx, "code-"+id, issuer.Issued{AccessJTI: "jti-" + id})
			memMust(t, err)
		}
		memMust(t, s.CreateRefresh(ctx, "rt-"+id, memRefresh(c, "fam-"+id)))
		_, err := s.RotateRefresh(ctx, "rt-"+id, "rt-next-"+id, memRefresh(c, "fam-"+id), "jti-"+id, c.Now().Add(time.Minute))
		memMust(t, err)
		memMust(t, s.AddFamilyAccess(ctx, "fam-"+id, "jti-more-"+id, c.Now().Add(time.Minute)))
		if i%3 == 0 {
			memMust(t, s.RevokeFamily(ctx, "fam-"+id))
		}
		memMust(t, s.RevokeFamily(ctx, "fam-unknown-"+id))
		memMust(t, s.RevokeAccess(ctx, "jti-revoked-"+id, c.Now().Add(time.Minute)))
		memMust(t, s.SaveSession(ctx, "sid-"+id, issuer.Session{Subject: id, Expiry: c.Now().Add(time.Hour)}))
		memMust(t, s.SaveConsent(ctx, id, "client-1", []string{"openid"}, c.Now().Add(time.Hour)))
		if _, err := s.Hit(ctx, "login:"+id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Len(); got < n {
		t.Fatalf("Len = %d after %d writes of each kind; the store is not keeping them", got, n)
	}

	// Everything ends within a day; reads and Sweep leave nothing behind.
	c.Advance(25 * time.Hour)
	if _, err := s.GetSession(ctx, "sid-1"); !errors.Is(err, issuer.ErrNotFound) {
		t.Errorf("expired session: got %v, want %v", err, issuer.ErrNotFound)
	}
	s.Sweep()
	if got := s.Len(); got != 0 {
		t.Errorf("Len after everything expired and Sweep = %d, want 0", got)
	}
}

func TestMemoryStoreSweepsOnWrites(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(0)
	for i := range 1000 {
		memMust(t, s.RevokeAccess(ctx, fmt.Sprint("jti-", i), c.Now().Add(time.Minute)))
	}
	c.Advance(2 * time.Minute)
	// No Sweep: a write after the sweep interval removes what expired.
	memMust(t, s.RevokeAccess(ctx, "jti-new", c.Now().Add(time.Minute)))
	if got := s.Len(); got != 1 {
		t.Errorf("Len after a write = %d, want 1", got)
	}
}

func TestMemoryStoreRefusesBadInput(t *testing.T) {
	ctx := t.Context()
	s, c := memStore(0)
	past := c.Now().Add(-time.Second)
	memMust(t, s.SaveCode(ctx, "code-1", memCode(c)))
	memMust(t, s.CreateRefresh(ctx, "rt-1", memRefresh(c, "fam-1")))
	tests := []struct {
		name string
		err  error
	}{
		{"code with empty hash", s.SaveCode(ctx, "", memCode(c))},
		{"expired code", s.SaveCode(ctx, "code-2", issuer.AuthCode{Expiry: past})},
		{"code stored twice", s.SaveCode(ctx, "code-1", memCode(c))},
		{"refresh without family", s.CreateRefresh(ctx, "rt-2", memRefresh(c, ""))},
		{"refresh of an existing family", s.CreateRefresh(ctx, "rt-2", memRefresh(c, "fam-1"))},
		{"refresh stored twice", s.CreateRefresh(ctx, "rt-1", memRefresh(c, "fam-2"))},
		{"expired session", s.SaveSession(ctx, "sid-1", issuer.Session{Expiry: past})},
		{"expired consent", s.SaveConsent(ctx, "alice", "client-1", nil, past)},
		{"access of an unknown family", s.AddFamilyAccess(ctx, "fam-9", "jti-1", c.Now().Add(time.Minute))},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := s.Hit(ctx, "k", 0); err == nil {
		t.Error("Hit with a zero window: no error")
	}
	if _, err := s.RotateRefresh(ctx, "rt-1", "rt-1", memRefresh(c, "fam-1"), "", time.Time{}); err == nil {
		t.Error("rotation to the same hash: no error")
	}
	if _, err := s.LookupRefresh(ctx, "rt-1"); err != nil {
		t.Errorf("token after refused rotations: %v", err)
	}
}

func ExampleMemoryStore() {
	ctx := context.Background()
	s := issuer.NewMemoryStore(issuer.MemoryConfig{})
	for range 3 {
		n, _ := s.Hit(ctx, "login:alice", time.Minute)
		fmt.Println("attempt", n)
	}
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
}
