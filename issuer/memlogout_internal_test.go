package issuer

import (
	"fmt"
	"testing"
	"time"
)

// The memory store's indexes hold no more than the entries they name:
// whatever removes a session or a family (expiry, sweep, eviction, end,
// deletion) takes it out of them.
func TestMemoryStoreIndexesDoNotGrow(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m := NewMemoryStore(MemoryConfig{MaxEntries: 100, Now: func() time.Time { return now }})
	indexed := func() int {
		n := 0
		for _, x := range []memIndex{m.subjectSessions, m.subjectFamilies, m.sessionFamilies} {
			for _, set := range x {
				n += len(set)
			}
		}
		return n
	}
	for i := range 300 { // three times the bound: sessions are evicted
		sid, sub := fmt.Sprint("sid-", i), fmt.Sprint("user-", i%7)
		if err := m.SaveSession(ctx, sid, Session{Subject: sub, Expiry: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := m.JoinSession(ctx, sid, "client-1"); err != nil {
			t.Fatal(err)
		}
		if i < 50 {
			rt := RefreshToken{FamilyID: fmt.Sprint("fam-", i), ClientID: "client-1", Subject: sub, SessionID: sid,
				Expiry: now.Add(2 * time.Hour), FamilyExpiry: now.Add(2 * time.Hour)}
			if err := m.CreateRefresh(ctx, fmt.Sprint("rt-", i), rt); err != nil {
				t.Fatal(err)
			}
		}
		switch i % 4 { // half the sessions stay, more than fit
		case 1:
			if err := m.DeleteSession(ctx, sid); err != nil {
				t.Fatal(err)
			}
		case 2:
			if _, _, err := m.EndSession(ctx, hashToken(sid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m.mu.Lock()
	sessions, families := len(m.sessions.m), len(m.families.m)
	m.mu.Unlock()
	if got, want := indexed(), sessions+2*families; got != want {
		t.Errorf("indexes hold %d entries for %d sessions and %d families, want %d", got, sessions, families, want)
	}
	now = now.Add(3 * time.Hour)
	m.Sweep()
	if got := indexed(); got != 0 {
		t.Errorf("indexes hold %d entries after everything expired", got)
	}
}
