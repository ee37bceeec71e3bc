package issuer

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

const (
	// memDefaultMaxEntries is MemoryConfig.MaxEntries when it is not set.
	memDefaultMaxEntries = 100_000
	// memCodeReplayGrace is how long a redeemed authorization code is kept
	// after its expiry, so that a late replay is still recognised (and
	// revokes what the first redemption issued) instead of looking unknown.
	memCodeReplayGrace = 10 * time.Minute
	// memTombstoneTTL is how long the revocation of a family that does not
	// exist (yet) is remembered; see MemoryStore.RevokeFamily.
	memTombstoneTTL = memCodeReplayGrace
	// memSweepInterval is how often writes sweep every kind of entry.
	memSweepInterval = time.Minute
)

// MemoryConfig configures a [MemoryStore]. The zero value is usable.
type MemoryConfig struct {
	// MaxEntries bounds how many entries the store keeps of each kind:
	// authorization codes, refresh tokens, refresh-token families, access
	// tokens recorded with families, revoked access-token IDs, sessions,
	// consents, rate-limit counters and registered clients. Zero or less
	// means 100_000.
	//
	// When a kind is full, its expired entries are swept first. If it is
	// still full, sessions and rate-limit counters make room by dropping the
	// least recently written entry (that user is signed out, that counter
	// starts over: a flood of distinct rate-limit keys can therefore reset
	// a victim's counter). Every other kind refuses the write with an error
	// wrapping [ErrUnavailable], so a live code, refresh token or
	// revocation is never dropped silently.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MemoryStore is the in-memory [Store], the issuer's default. Its state
// lives in one process and is lost on restart: replicas that share the
// issuer's state need the Redis store instead.
//
// One mutex guards all state, so every decision (redeeming a code,
// rotating a refresh token) is atomic, and all methods are safe for
// concurrent use. Expired entries are never returned. They are removed
// lazily: by a write when a minute has passed since the last sweep, when a
// kind reaches [MemoryConfig.MaxEntries], or by [MemoryStore.Sweep]; no
// goroutine runs in the background. Contexts are accepted to satisfy
// [Store] and otherwise ignored, since no operation blocks.
//
// Create one with [NewMemoryStore].
type MemoryStore struct {
	now func() time.Time

	mu        sync.Mutex
	lastSweep time.Time
	codes     *memTable[memCode]      // by code hash
	tokens    *memTable[RefreshToken] // by token hash
	families  *memTable[memFamily]    // by family ID
	access    *memTable[string]       // family ID, by access-token jti
	revoked   *memTable[struct{}]     // by access-token jti
	sessions  *memTable[memSession]   // by session ID hash
	consents  *memTable[[]string]     // scopes, by memConsentKey
	counters  *memTable[int]          // hits, by rate-limit key
	clients   *memTable[memClient]    // registered clients, by client ID

	// Indexes, kept in step with the entries they name: an entry's
	// removal (expiry, sweep, eviction, deletion) removes it from them.
	subjectSessions memIndex // session ID hashes, by subject
	subjectFamilies memIndex // family IDs, by subject
	sessionFamilies memIndex // family IDs, by session ID hash
}

// memCode is a stored authorization code.
type memCode struct {
	code     AuthCode
	redeemed bool
}

// memFamily is the state of one refresh-token family. Its entry is kept until
// the family expires or, if later, the last access token recorded with it
// expires, so that revoking the family still denies that token.
type memFamily struct {
	current string    // hash of the only token that may be rotated
	expiry  time.Time // end of the family; rotation does not extend it
	revoked bool
	// Whose it is; empty for a family revoked before it was created.
	client, subject, session string // session: the session ID hash
}

// NewMemoryStore returns an empty store.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	n := cfg.MaxEntries
	if n <= 0 {
		n = memDefaultMaxEntries
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	m := &MemoryStore{
		now:             now,
		codes:           newMemTable[memCode]("authorization codes", n, false),
		tokens:          newMemTable[RefreshToken]("refresh tokens", n, false),
		families:        newMemTable[memFamily]("refresh-token families", n, false),
		access:          newMemTable[string]("access tokens recorded with families", n, false),
		revoked:         newMemTable[struct{}]("revoked access tokens", n, false),
		sessions:        newMemTable[memSession]("sessions", n, true),
		consents:        newMemTable[[]string]("consents", n, false),
		counters:        newMemTable[int]("rate-limit counters", n, true),
		clients:         newMemTable[memClient]("registered clients", n, false),
		subjectSessions: memIndex{},
		subjectFamilies: memIndex{},
		sessionFamilies: memIndex{},
	}
	m.sessions.onRemove = func(e *memEntry[memSession]) {
		m.subjectSessions.remove(e.val.s.Subject, e.key)
	}
	m.families.onRemove = func(e *memEntry[memFamily]) {
		m.subjectFamilies.remove(e.val.subject, e.key)
		m.sessionFamilies.remove(e.val.session, e.key)
	}
	return m
}

// Sweep removes every expired entry now.
func (m *MemoryStore) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(m.now())
}

// Len returns how many entries the store holds, of all kinds together,
// counting expired ones not swept yet. It is meant for metrics and tests.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.codes.m) + len(m.tokens.m) + len(m.families.m) + len(m.access.m) +
		len(m.revoked.m) + len(m.sessions.m) + len(m.consents.m) + len(m.counters.m) +
		len(m.clients.m)
}

// sweep removes expired entries of every kind. The caller holds m.mu.
func (m *MemoryStore) sweep(now time.Time) {
	m.lastSweep = now
	m.codes.sweep(now)
	m.tokens.sweep(now)
	m.families.sweep(now)
	m.access.sweep(now)
	m.revoked.sweep(now)
	m.sessions.sweep(now)
	m.consents.sweep(now)
	m.counters.sweep(now)
	m.clients.sweep(now)
}

// lockWrite locks m.mu for a write, sweeps if a sweep is due, and returns
// the time the write happens at.
func (m *MemoryStore) lockWrite() time.Time {
	m.mu.Lock()
	now := m.now()
	if now.Sub(m.lastSweep) >= memSweepInterval || now.Before(m.lastSweep) {
		m.sweep(now)
	}
	return now
}

// lockRead locks m.mu for a read and returns the time it happens at.
func (m *MemoryStore) lockRead() time.Time {
	m.mu.Lock()
	return m.now()
}

// SaveCode implements [Store]. It refuses an empty hash, an expiry that is
// not in the future, and a hash that is already stored.
func (m *MemoryStore) SaveCode(_ context.Context, codeHash string, c AuthCode) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	switch {
	case codeHash == "":
		return errors.New("issuer: save code: empty code hash")
	case !now.Before(c.Expiry):
		return errors.New("issuer: save code: expiry is not in the future")
	}
	if _, ok := m.codes.get(now, codeHash); ok {
		return errors.New("issuer: save code: a code with this hash is already stored")
	}
	c.Scopes = slices.Clone(c.Scopes)
	c.Issued = Issued{}
	return m.codes.set(now, codeHash, memCode{code: c}, c.Expiry)
}

// RedeemCode implements [Store]. A redeemed code is remembered until ten
// minutes after its expiry.
func (m *MemoryStore) RedeemCode(_ context.Context, codeHash string, issued Issued) (AuthCode, error) {
	now := m.lockWrite()
	defer m.mu.Unlock()
	e, ok := m.codes.get(now, codeHash)
	if !ok {
		return AuthCode{}, ErrNotFound
	}
	if e.val.redeemed {
		return memCopyCode(e.val.code), ErrCodeReused
	}
	e.val.redeemed = true
	e.val.code.Issued = issued
	m.codes.extend(e, e.val.code.Expiry.Add(memCodeReplayGrace))
	return memCopyCode(e.val.code), nil
}

// CreateRefresh implements [Store]. A zero rt.FamilyExpiry means
// rt.Expiry; rt.Expiry is cut to the family's expiry. It refuses an empty
// hash or family ID, expiries that are not in the future, a hash or family
// that is already stored, and gives [ErrRevoked] for a family that
// [MemoryStore.RevokeFamily] revoked before it was created.
func (m *MemoryStore) CreateRefresh(_ context.Context, tokenHash string, rt RefreshToken) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	famExp := rt.FamilyExpiry
	if famExp.IsZero() {
		famExp = rt.Expiry
	}
	switch {
	case tokenHash == "":
		return errors.New("issuer: create refresh token: empty token hash")
	case rt.FamilyID == "":
		return errors.New("issuer: create refresh token: empty family ID")
	case !now.Before(rt.Expiry) || !now.Before(famExp):
		return errors.New("issuer: create refresh token: expiry is not in the future")
	}
	if f, ok := m.families.get(now, rt.FamilyID); ok {
		if f.val.revoked {
			return ErrRevoked
		}
		return errors.New("issuer: create refresh token: the family already exists")
	}
	if _, ok := m.tokens.get(now, tokenHash); ok {
		return errors.New("issuer: create refresh token: a token with this hash is already stored")
	}
	if err := m.tokens.room(now, 1); err != nil {
		return err
	}
	fam := memFamily{current: tokenHash, expiry: famExp, client: rt.ClientID, subject: rt.Subject}
	if rt.SessionID != "" {
		fam.session = hashToken(rt.SessionID)
	}
	if err := m.families.set(now, rt.FamilyID, fam, famExp); err != nil {
		return err
	}
	m.subjectFamilies.add(fam.subject, rt.FamilyID)
	m.sessionFamilies.add(fam.session, rt.FamilyID)
	rt = memCopyRefresh(rt)
	rt.FamilyExpiry = famExp
	rt.Expiry = memEarlier(rt.Expiry, famExp)
	return m.tokens.set(now, tokenHash, rt, rt.Expiry)
}

// refresh returns the live token stored under hash and its family, or
// ErrNotFound. The caller holds m.mu.
func (m *MemoryStore) refresh(now time.Time, hash string) (*memEntry[RefreshToken], *memEntry[memFamily], error) {
	t, ok := m.tokens.get(now, hash)
	if !ok {
		return nil, nil, ErrNotFound
	}
	f, ok := m.families.get(now, t.val.FamilyID)
	if !ok || !now.Before(f.val.expiry) {
		return nil, nil, ErrNotFound
	}
	return t, f, nil
}

// RotateRefresh implements [Store]. The new token keeps the family's
// expiry whatever next.FamilyExpiry says, and its Expiry is cut to it. A
// reuse revokes the family before anything about the new token is checked;
// otherwise nothing changes unless the rotation succeeds (an empty, equal
// or already stored newHash, or an expiry not in the future, is refused).
func (m *MemoryStore) RotateRefresh(_ context.Context, oldHash, newHash string, next RefreshToken, accessJTI string, accessExpiry time.Time) (RefreshToken, error) {
	now := m.lockWrite()
	defer m.mu.Unlock()
	t, f, err := m.refresh(now, oldHash)
	if err != nil {
		return RefreshToken{}, err
	}
	grant := memCopyRefresh(t.val)
	if f.val.revoked {
		return grant, ErrRevoked
	}
	if f.val.current != oldHash {
		if cur, ok := m.tokens.get(now, f.val.current); ok && cur.val.Retry != nil && cur.val.Retry.of == oldHash && now.Before(cur.val.Retry.Until) {
			return grant, ErrRefreshRetry
		}
		// RFC 9700 §4.14.2: a rotated token presented again means one of
		// its holders is an attacker; end the whole family.
		f.val.revoked = true
		return grant, ErrRefreshReused
	}
	switch {
	case newHash == "" || newHash == oldHash:
		return grant, errors.New("issuer: rotate refresh token: the new token hash is empty or unchanged")
	case !now.Before(next.Expiry):
		return grant, errors.New("issuer: rotate refresh token: expiry is not in the future")
	}
	if _, ok := m.tokens.get(now, newHash); ok {
		return grant, errors.New("issuer: rotate refresh token: a token with the new hash is already stored")
	}
	// Check every bound before changing anything.
	if err := m.tokens.room(now, 1); err != nil {
		return grant, err
	}
	if accessJTI != "" {
		if err := m.access.room(now, 1); err != nil {
			return grant, err
		}
	}
	retry := next.Retry
	next = memCopyRefresh(next)
	if retry != nil {
		r := *retry
		r.Sealed, r.of = slices.Clone(r.Sealed), oldHash
		next.Retry = &r
	}
	next.FamilyID = grant.FamilyID
	next.FamilyExpiry = f.val.expiry
	next.Expiry = memEarlier(next.Expiry, f.val.expiry)
	if err := m.tokens.set(now, newHash, next, next.Expiry); err != nil {
		return grant, err
	}
	f.val.current = newHash
	if accessJTI != "" {
		if err := m.recordAccess(now, f, grant.FamilyID, accessJTI, accessExpiry); err != nil {
			return grant, err
		}
	}
	return grant, nil
}

// RetryRefresh implements [Store].
func (m *MemoryStore) RetryRefresh(_ context.Context, oldHash string) (RefreshRetry, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	_, f, err := m.refresh(now, oldHash)
	if err != nil || f.val.revoked || f.val.current == oldHash {
		return RefreshRetry{}, ErrNotFound
	}
	cur, ok := m.tokens.get(now, f.val.current)
	if !ok || cur.val.Retry == nil || cur.val.Retry.of != oldHash || !now.Before(cur.val.Retry.Until) {
		return RefreshRetry{}, ErrNotFound
	}
	return *cur.val.Retry, nil
}

// LookupRefresh implements [Store]. It returns the grant along with
// ErrRevoked and ErrRefreshReused.
func (m *MemoryStore) LookupRefresh(_ context.Context, tokenHash string) (RefreshToken, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	t, f, err := m.refresh(now, tokenHash)
	if err != nil {
		return RefreshToken{}, err
	}
	grant := memCopyRefresh(t.val)
	switch {
	case f.val.revoked:
		return grant, ErrRevoked
	case f.val.current != tokenHash:
		return grant, ErrRefreshReused
	}
	return grant, nil
}

// AddFamilyAccess implements [Store]. An unknown or expired family gives
// ErrNotFound. If the family is revoked, the access token is recorded (and
// so denied) all the same and ErrRevoked is returned.
func (m *MemoryStore) AddFamilyAccess(_ context.Context, familyID, accessJTI string, accessExpiry time.Time) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if accessJTI == "" {
		return errors.New("issuer: add family access: empty jti")
	}
	f, ok := m.families.get(now, familyID)
	if !ok || !now.Before(f.val.expiry) {
		return ErrNotFound
	}
	if err := m.recordAccess(now, f, familyID, accessJTI, accessExpiry); err != nil {
		return err
	}
	if f.val.revoked {
		return ErrRevoked
	}
	return nil
}

// recordAccess records an access token with its family, which is kept at
// least as long as the token. The caller holds m.mu.
func (m *MemoryStore) recordAccess(now time.Time, f *memEntry[memFamily], familyID, jti string, expiry time.Time) error {
	if !now.Before(expiry) {
		return nil // already expired: nothing to deny
	}
	if err := m.access.set(now, jti, familyID, expiry); err != nil {
		return err
	}
	m.families.extend(f, expiry)
	return nil
}

// RevokeFamily implements [Store]. Revoking it again is not an error. A
// family that does not exist (yet) is remembered as revoked for ten
// minutes, so that [MemoryStore.CreateRefresh] refuses it: a code replay
// may revoke the family the first redemption named before the token
// endpoint has created it.
func (m *MemoryStore) RevokeFamily(_ context.Context, familyID string) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if familyID == "" {
		return errors.New("issuer: revoke family: empty family ID")
	}
	// The access tokens recorded with the family are denied through it
	// (see IsAccessRevoked), so revoking costs no entry per token and
	// cannot fail half-way.
	if f, ok := m.families.get(now, familyID); ok {
		f.val.revoked = true
		return nil
	}
	exp := now.Add(memTombstoneTTL)
	return m.families.set(now, familyID, memFamily{revoked: true, expiry: exp}, exp)
}

// RevokeAccess implements [Store]. An expiry that has passed changes
// nothing; revoking again keeps the later expiry.
func (m *MemoryStore) RevokeAccess(_ context.Context, jti string, expiry time.Time) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if jti == "" {
		return errors.New("issuer: revoke access token: empty jti")
	}
	if !now.Before(expiry) {
		return nil
	}
	if e, ok := m.revoked.get(now, jti); ok {
		m.revoked.extend(e, expiry)
		return nil
	}
	return m.revoked.set(now, jti, struct{}{}, expiry)
}

// IsAccessRevoked implements [Store]. A jti is denied if it was revoked
// itself or was recorded with a family that is now revoked.
func (m *MemoryStore) IsAccessRevoked(_ context.Context, jti string) (bool, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	if _, ok := m.revoked.get(now, jti); ok {
		return true, nil
	}
	if a, ok := m.access.get(now, jti); ok {
		if f, ok := m.families.get(now, a.val); ok && f.val.revoked {
			return true, nil
		}
	}
	return false, nil
}

// SaveSession implements [Store]. Saving under an existing ID replaces
// that session. When the store is full, the least recently saved session
// is dropped.
func (m *MemoryStore) SaveSession(_ context.Context, id string, s Session) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	switch {
	case id == "":
		return errors.New("issuer: save session: empty session ID")
	case !now.Before(s.Expiry):
		return errors.New("issuer: save session: expiry is not in the future")
	}
	h := hashToken(id)
	if e, ok := m.sessions.m[h]; ok {
		m.subjectSessions.remove(e.val.s.Subject, h)
	}
	if err := m.sessions.set(now, h, memSession{s: s}, s.Expiry); err != nil {
		return err
	}
	m.subjectSessions.add(s.Subject, h)
	return nil
}

// GetSession implements [Store].
func (m *MemoryStore) GetSession(_ context.Context, id string) (Session, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	e, ok := m.sessions.get(now, hashToken(id))
	if !ok {
		return Session{}, ErrNotFound
	}
	return e.val.s, nil
}

// DeleteSession implements [Store].
func (m *MemoryStore) DeleteSession(_ context.Context, id string) error {
	m.lockWrite()
	defer m.mu.Unlock()
	if e, ok := m.sessions.m[hashToken(id)]; ok {
		m.sessions.remove(e)
	}
	return nil
}

// SaveConsent implements [Store]. Saving again replaces the scopes and
// expiry. The store keeps its own copy of scopes.
func (m *MemoryStore) SaveConsent(_ context.Context, subject, clientID string, scopes []string, expiry time.Time) error {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if !now.Before(expiry) {
		return errors.New("issuer: save consent: expiry is not in the future")
	}
	return m.consents.set(now, memConsentKey(subject, clientID), slices.Clone(scopes), expiry)
}

// GetConsent implements [Store]. The returned slice is the caller's.
func (m *MemoryStore) GetConsent(_ context.Context, subject, clientID string) ([]string, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	e, ok := m.consents.get(now, memConsentKey(subject, clientID))
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(e.val), nil
}

// memConsentKey joins a subject and a client ID; NUL appears in neither.
func memConsentKey(subject, clientID string) string {
	return subject + "\x00" + clientID
}

// Hit implements [Store]. The window must be positive. When the store is
// full, the counter whose window started longest ago is dropped.
func (m *MemoryStore) Hit(_ context.Context, key string, window time.Duration) (int, error) {
	now := m.lockWrite()
	defer m.mu.Unlock()
	if window <= 0 {
		return 0, fmt.Errorf("issuer: rate-limit hit: window %v is not positive", window)
	}
	if e, ok := m.counters.get(now, key); ok {
		e.val++
		return e.val, nil
	}
	if err := m.counters.set(now, key, 1, now.Add(window)); err != nil {
		return 0, err
	}
	return 1, nil
}

// Count implements [Store].
func (m *MemoryStore) Count(_ context.Context, key string) (int, error) {
	now := m.lockRead()
	defer m.mu.Unlock()
	if e, ok := m.counters.get(now, key); ok {
		return e.val, nil
	}
	return 0, nil
}

// Ping implements [Store]; a memory store is always reachable.
func (m *MemoryStore) Ping(context.Context) error { return nil }

// memCopyCode and memCopyRefresh return their argument with its own Scopes.
func memCopyCode(c AuthCode) AuthCode { c.Scopes = slices.Clone(c.Scopes); return c }
func memCopyRefresh(r RefreshToken) RefreshToken {
	r.Scopes = slices.Clone(r.Scopes)
	r.Retry = nil // only RetryRefresh hands it out
	return r
}

// memEarlier returns the earlier of a and b.
func memEarlier(a, b time.Time) time.Time {
	if b.Before(a) {
		a = b
	}
	return a
}

// memTable holds the entries of one kind: a map with an expiry per entry, a
// bound on its size, and the order in which entries were last written.
// The caller serialises access.
type memTable[V any] struct {
	kind  string // plural noun for errors
	max   int
	evict bool // when full, drop the least recently written entry instead of failing
	m     map[string]*memEntry[V]
	order *list.List // *memEntry[V], least recently written first
	// next is a lower bound on every entry's expiry (zero when the table
	// is known to be empty), so a sweep that would find nothing is
	// skipped.
	next time.Time
	// onRemove, when set, is told of every entry removed (not of one
	// replaced by set).
	onRemove func(*memEntry[V])
}

// memEntry is one stored value.
type memEntry[V any] struct {
	key  string
	val  V
	exp  time.Time // the entry is dead from exp on
	elem *list.Element
}

func newMemTable[V any](kind string, max int, evict bool) *memTable[V] {
	return &memTable[V]{kind: kind, max: max, evict: evict, m: make(map[string]*memEntry[V]), order: list.New()}
}

// get returns the live entry under key, removing it if it expired.
func (t *memTable[V]) get(now time.Time, key string) (*memEntry[V], bool) {
	e, ok := t.m[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.exp) {
		t.remove(e)
		return nil, false
	}
	return e, true
}

// set stores val under key until exp, replacing any entry there. A new
// key needs room (see room).
func (t *memTable[V]) set(now time.Time, key string, val V, exp time.Time) error {
	if e, ok := t.m[key]; ok {
		e.val, e.exp = val, exp
		t.order.MoveToBack(e.elem)
	} else {
		if err := t.room(now, 1); err != nil {
			return err
		}
		e := &memEntry[V]{key: key, val: val, exp: exp}
		e.elem = t.order.PushBack(e)
		t.m[key] = e
	}
	if t.next.IsZero() || exp.Before(t.next) {
		t.next = exp
	}
	return nil
}

// extend moves e's expiry to exp if that is later (t.next stays a bound).
func (t *memTable[V]) extend(e *memEntry[V], exp time.Time) {
	if exp.After(e.exp) {
		e.exp = exp
	}
}

func (t *memTable[V]) remove(e *memEntry[V]) {
	delete(t.m, e.key)
	t.order.Remove(e.elem)
	if t.onRemove != nil {
		t.onRemove(e)
	}
}

// room makes sure n more entries fit: it sweeps if the table is full, then
// evicts the least recently written entries if the table may, and
// otherwise fails with an error wrapping ErrUnavailable.
func (t *memTable[V]) room(now time.Time, n int) error {
	if len(t.m)+n <= t.max {
		return nil
	}
	t.sweep(now)
	for t.evict && len(t.m)+n > t.max && t.order.Len() > 0 {
		t.remove(t.order.Front().Value.(*memEntry[V]))
	}
	if len(t.m)+n > t.max {
		return fmt.Errorf("issuer: memory store holds the most %s it may (%d): %w", t.kind, t.max, ErrUnavailable)
	}
	return nil
}

// sweep removes expired entries, unless none can have expired.
func (t *memTable[V]) sweep(now time.Time) {
	if t.next.IsZero() || now.Before(t.next) {
		return
	}
	var next time.Time
	for _, e := range t.m {
		if !now.Before(e.exp) {
			t.remove(e)
			continue
		}
		if next.IsZero() || e.exp.Before(next) {
			next = e.exp
		}
	}
	t.next = next
}

var _ Store = (*MemoryStore)(nil)
