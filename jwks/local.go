package jwks

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Limits and defaults of a [KeyRing].
const (
	// minRotateEvery is the shortest rotation period: a published key
	// must outlast the shortest max-age the key set is served with.
	minRotateEvery = time.Minute
	// defaultRetainNoRotation is how long retired keys left over from an
	// earlier configuration stay published when neither RotateEvery nor
	// RetainFor is set.
	defaultRetainNoRotation = 24 * time.Hour
	// runRetry is how long [KeyRing.Run] waits after a failed rotation.
	runRetry = time.Minute
	// runMaxWait caps one wait of [KeyRing.Run], so that a wall clock that
	// jumped (a suspended machine) is noticed within this time.
	runMaxWait = time.Hour
)

// SigningKey is a private key that signs tokens, with the key ID and
// algorithm tokens name in their header. It holds private key material:
// never log or serialise it; publish only [Key] values.
type SigningKey struct {
	// ID is the "kid": the base64url RFC 7638 SHA-256 thumbprint of the
	// public key, so the same key has the same ID on every start.
	ID string
	// Algorithm is the JWS "alg": ES256, ES384, RS256, PS256 or EdDSA.
	Algorithm string
	// Signer is an *ecdsa.PrivateKey, an *rsa.PrivateKey (2048 bits or
	// more) or an ed25519.PrivateKey, as golang-jwt's signing methods want.
	Signer crypto.Signer
}

// KeyRingConfig configures [OpenKeyRing]. Zero values select the documented
// defaults.
type KeyRingConfig struct {
	// Algorithm of newly generated keys: ES256, ES384, RS256, PS256 or
	// EdDSA. "" means ES256. Keys already in KeyDir keep the algorithm
	// recorded for them, so a change takes effect as keys rotate.
	Algorithm string
	// KeyDir is where keys persist, one PKCS#8 PEM file per key plus the
	// state file keyring.json. It is created with mode 0700 when missing;
	// files are written with mode 0600, and key files that group or others
	// can access are refused (mount a Kubernetes Secret with defaultMode
	// 0400 or 0600; the directory must be writable). "" keeps keys in
	// memory only (tests, demo):
	// every start then signs with new keys. Replicas of one issuer must not
	// share a writable KeyDir, as each rotates on its own.
	KeyDir string
	// RotateEvery is how long a key signs before the next one takes over.
	// 0 means no rotation; otherwise at least one minute.
	RotateEvery time.Duration
	// RetainFor is how long a retired key stays published, which must be at
	// least the longest lifetime of any token it signed (the issuer passes
	// the longer of its access and ID token lifetimes). 0 means RotateEvery,
	// or 24h when RotateEvery is 0 too.
	RetainFor time.Duration
	// Now reads the clock for every decision. nil means time.Now.
	// [KeyRing.Run] still waits on real timers.
	Now func() time.Time
	// Logger receives key generation, rotation and removal (info) and
	// problems (warn). nil discards.
	Logger *slog.Logger
	// KeyFiles, when set, are PEM private keys given from outside, such as
	// a Kubernetes Secret mounted into every replica so all of them sign
	// and publish the same keys: the first signs, every one is published.
	// Nothing is generated, written or rotated (KeyDir and RotateEvery
	// must be unset); rotate by publishing a new key second, and later
	// moving it first, with a restart each time.
	KeyFiles []string
}

// KeyRing is the built-in issuer's set of signing keys: one active key that
// signs, one next key that is published ahead of taking over, and retired
// keys that stay published while tokens they signed may still be in use.
// Rotation follows a fixed strategy (see [KeyRing.Rotate]) so that every
// key is in the served key set a whole rotation period before it signs.
//
// All methods are safe for concurrent use. Rotations are serialised; key
// generation and file writes happen outside the lock readers take, so
// [KeyRing.Active] never waits for them. One process should own a KeyDir.
type KeyRing struct {
	dir      string
	alg      string
	strategy rotationStrategy
	now      func() time.Time
	log      *slog.Logger

	rotMu  sync.Mutex // held by Rotate while it computes and persists
	static bool       // keys from KeyFiles: never generated, written or rotated

	mu   sync.RWMutex
	view *ringView // replaced, never modified
}

// ringKey is a key with its place in the rotation. Its role follows from
// its times: never activated is next; activated and not retired is active;
// retired is retired.
type ringKey struct {
	SigningKey
	file      string // base name in KeyDir; "" in memory
	created   time.Time
	activated time.Time
	retired   time.Time
}

func (k ringKey) isNext() bool    { return k.activated.IsZero() }
func (k ringKey) isActive() bool  { return !k.activated.IsZero() && k.retired.IsZero() }
func (k ringKey) isRetired() bool { return !k.retired.IsZero() }

// role names k's role for logs.
func (k ringKey) role() string {
	switch {
	case k.isNext():
		return "next"
	case k.isActive():
		return "active"
	}
	return "retired"
}

// ringView is an immutable snapshot of the ring with everything readers
// need precomputed.
type ringView struct {
	keys         []ringKey // active, next, then retired (newest first)
	public       []Key     // the public halves of keys, same order
	body         []byte    // Encode(public)
	etag         string    // strong ETag of body
	updated      time.Time
	nextRotation time.Time // zero without rotation
	version      uint64    // increases with every change of the published keys
}

// OpenKeyRing loads the keys in cfg.KeyDir, or starts an in-memory ring
// when it is "". Without an active key it makes one that signs at once (on
// a first start nothing was published yet, so there is nothing to wait
// for), promoting the published next key when there is one; with rotation
// on and no next key it generates one, published ahead of its turn.
//
// Every *.pem file in KeyDir is loaded; keyring.json records each key's
// role and times. A key file it does not list (say, from `portcullis
// keygen`) becomes the active key when there is none, else the next key
// when there is none, else a retired key. Changes are written atomically
// before OpenKeyRing returns. It does not rotate: call [KeyRing.Run].
func OpenKeyRing(cfg KeyRingConfig) (*KeyRing, error) {
	k, err := newKeyRing(cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.KeyFiles) > 0 {
		return k.openStatic(cfg)
	}
	now := k.now()
	var keys []ringKey
	changed := k.dir == ""
	if k.dir != "" {
		if keys, changed, err = k.loadDir(now); err != nil {
			return nil, err
		}
	}
	if i := slices.IndexFunc(keys, ringKey.isActive); i < 0 {
		if j := slices.IndexFunc(keys, ringKey.isNext); j >= 0 {
			keys[j].activated = now
			k.log.Info("jwks: no active key; the next key signs now", "kid", keys[j].ID)
		} else {
			nk, err := k.newKey(now)
			if err != nil {
				return nil, err
			}
			nk.activated = now
			keys = append(keys, nk)
		}
		changed = true
	}
	// A next key is published ahead of its turn only when there will be
	// a turn: without rotation it would never sign.
	if cfg.RotateEvery > 0 && !slices.ContainsFunc(keys, ringKey.isNext) {
		nk, err := k.newKey(now)
		if err != nil {
			return nil, err
		}
		keys = append(keys, nk)
		changed = true
	}
	v, err := k.commit(keys, now, changed)
	if err != nil {
		return nil, err
	}
	attrs := []any{"dir", k.dir, "active", v.keys[0].ID, "alg", v.keys[0].Algorithm, "published", len(v.keys)}
	if v.nextRotation.IsZero() {
		attrs = append(attrs, "rotation", "off")
	} else {
		attrs = append(attrs, "next_rotation", v.nextRotation)
	}
	k.log.Info("jwks: key ring open", attrs...)
	return k, nil
}

// newKeyRing checks cfg and applies its defaults.
func newKeyRing(cfg KeyRingConfig) (*KeyRing, error) {
	alg := cmp.Or(cfg.Algorithm, algES256)
	switch alg {
	case algES256, algES384, algRS256, algPS256, algEdDSA:
	default:
		return nil, unsupportedAlg(alg)
	}
	switch {
	case cfg.RotateEvery < 0, cfg.RotateEvery > 0 && cfg.RotateEvery < minRotateEvery:
		return nil, fmt.Errorf("jwks: rotation period %v: want 0 (no rotation) or at least %v", cfg.RotateEvery, minRotateEvery)
	case cfg.RetainFor < 0:
		return nil, fmt.Errorf("jwks: retention %v is negative", cfg.RetainFor)
	}
	k := &KeyRing{
		dir:      cfg.KeyDir,
		alg:      alg,
		strategy: rotationStrategy{every: cfg.RotateEvery, retain: cfg.RetainFor},
		now:      cfg.Now,
		log:      cfg.Logger,
	}
	if k.strategy.retain == 0 {
		k.strategy.retain = cmp.Or(cfg.RotateEvery, defaultRetainNoRotation)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	return k, nil
}

// loadDir reads KeyDir: its key files and the state file.
func (k *KeyRing) loadDir(now time.Time) ([]ringKey, bool, error) {
	if err := ensureDir(k.dir, k.log); err != nil {
		return nil, false, err
	}
	files, err := loadKeyFiles(k.dir)
	if err != nil {
		return nil, false, err
	}
	state, err := readState(k.dir)
	if err != nil {
		return nil, false, err
	}
	return adoptKeys(files, state, k.alg, now, k.log)
}

// newKey generates a next key and, with a KeyDir, writes its file.
func (k *KeyRing) newKey(now time.Time) (ringKey, error) {
	s, err := GenerateKey(k.alg)
	if err != nil {
		return ringKey{}, err
	}
	id, err := thumbprintID(s.Public())
	if err != nil {
		return ringKey{}, fmt.Errorf("jwks: new key: %w", err)
	}
	rk := ringKey{SigningKey: SigningKey{ID: id, Algorithm: k.alg, Signer: s}, created: now}
	if k.dir != "" {
		if rk.file, err = writeKeyFile(k.dir, rk.SigningKey); err != nil {
			return ringKey{}, err
		}
	}
	k.log.Info("jwks: generated key", "kid", id, "alg", k.alg)
	return rk, nil
}

// commit builds the view of keys, persists the state when persist is set
// and there is a KeyDir, and makes the view current.
func (k *KeyRing) commit(keys []ringKey, now time.Time, persist bool) (*ringView, error) {
	v, err := k.newView(keys, now)
	if err != nil {
		return nil, err
	}
	if persist && k.dir != "" {
		if err := writeState(k.dir, v.keys); err != nil {
			return nil, err
		}
	}
	k.mu.Lock()
	if k.view != nil {
		v.version = k.view.version + 1
	}
	k.view = v
	k.mu.Unlock()
	return v, nil
}

// Version increases whenever the published keys change; caches of verified
// tokens compare it to know their keys may be gone. Safe for concurrent use.
func (k *KeyRing) Version() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.view.version
}

// newView orders keys and precomputes the served key set.
func (k *KeyRing) newView(keys []ringKey, now time.Time) (*ringView, error) {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b ringKey) int {
		rank := func(r ringKey) int {
			switch {
			case r.isActive():
				return 0
			case r.isNext():
				return 1
			}
			return 2
		}
		return cmp.Or(cmp.Compare(rank(a), rank(b)), b.retired.Compare(a.retired), cmp.Compare(a.ID, b.ID))
	})
	v := &ringView{keys: keys, updated: now, nextRotation: k.strategy.rotationAt(keys)}
	for _, rk := range keys {
		v.public = append(v.public, Key{ID: rk.ID, Algorithm: rk.Algorithm, Public: rk.Signer.Public()})
	}
	var old []Key
	k.mu.RLock()
	if k.view != nil {
		old = k.view.public
	}
	k.mu.RUnlock()
	precompute(v.public, old)
	body, err := Encode(v.public)
	if err != nil {
		return nil, err
	}
	v.body, v.etag = body, etagOf(body)
	return v, nil
}

// current returns the current view.
func (k *KeyRing) current() *ringView {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.view
}

// Active returns the key that signs now. Its Signer is shared and must not
// be modified.
func (k *KeyRing) Active() SigningKey {
	return k.current().keys[0].SigningKey
}

// Public returns the published verification keys — the active key, the
// next key, then retired keys still retained, newest first — as public
// halves with their ID and Algorithm. The slice is the caller's; the keys
// in it are shared and read-only.
func (k *KeyRing) Public() []Key {
	return slices.Clone(k.current().public)
}

// Keys returns the published keys whose ID is kid, or all of them when kid
// is empty, like [Remote.Keys], so the gateway can verify the built-in
// issuer's tokens in-process. It does no I/O and ignores ctx. When nothing
// matches the error wraps [ErrKeyNotFound].
func (k *KeyRing) Keys(ctx context.Context, kid string) ([]Key, error) {
	var out []Key
	for _, pk := range k.current().public {
		if kid == "" || pk.ID == kid {
			out = append(out, pk)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w in the local key ring", ErrKeyNotFound)
	}
	return out, nil
}

// Ready reports true: a KeyRing always has keys once opened. It exists for
// parity with [Remote.Ready].
func (k *KeyRing) Ready() bool { return true }

// Updated returns the time (per [KeyRingConfig.Now]) the ring last changed:
// when it was opened, or its latest rotation or removal of a retired key.
func (k *KeyRing) Updated() time.Time {
	return k.current().updated
}

// NextRotation returns when the next key is due to take over: a rotation
// period after it was published (and after the active key started
// signing). It is zero when rotation is off, and may be in the past when
// [KeyRing.Rotate] has not run since.
func (k *KeyRing) NextRotation() time.Time {
	return k.current().nextRotation
}

// Rotate applies the rotation strategy at Now and reports whether the ring
// changed. When the rotation is due (see [KeyRing.NextRotation]) the next
// key becomes active — it has been published a whole period, so every
// verifier that cached the key set since knows it — the active key is
// retired, and a new next key is generated and published. Independently,
// retired keys published for RetainFor since their retirement are dropped
// and their files removed. Changes are persisted before they take effect;
// on error nothing changes. Calls are serialised.
func (k *KeyRing) Rotate() (bool, error) {
	if k.static {
		return false, nil
	}
	k.rotMu.Lock()
	defer k.rotMu.Unlock()
	now := k.now()
	keys, rotate, dropped := k.strategy.apply(k.current().keys, now)
	if !rotate && len(dropped) == 0 {
		return false, nil
	}
	var added ringKey
	if rotate {
		var err error
		if added, err = k.newKey(now); err != nil {
			return false, err
		}
		keys = append(keys, added)
	}
	v, err := k.commit(keys, now, true)
	if err != nil {
		if added.file != "" {
			_ = os.Remove(filepath.Join(k.dir, added.file))
		}
		return false, err
	}
	for _, d := range dropped {
		k.log.Info("jwks: dropped retired key", "kid", d.ID, "retired", d.retired)
		if d.file == "" {
			continue
		}
		if err := os.Remove(filepath.Join(k.dir, d.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
			k.log.Warn("jwks: remove retired key file", "file", d.file, "err", err)
		}
	}
	if rotate {
		k.log.Info("jwks: rotated signing key", "active", v.keys[0].ID, "next", added.ID,
			"next_rotation", v.nextRotation)
	}
	return true, nil
}

// Run calls [KeyRing.Rotate] whenever a rotation or the removal of a retired
// key is due, until ctx is done. Waits use real timers (at most an hour at a
// time, so a jumped wall clock is noticed); decisions use
// [KeyRingConfig.Now]. A failed rotation is logged and retried after a
// minute. Call it once, in its own goroutine.
func (k *KeyRing) Run(ctx context.Context) {
	for ctx.Err() == nil {
		at, ok := k.strategy.nextEvent(k.current().keys)
		if !ok {
			<-ctx.Done()
			return
		}
		if d := at.Sub(k.now()); d > 0 {
			wait(ctx, min(d, runMaxWait))
			continue
		}
		changed, err := k.Rotate()
		if err != nil {
			k.log.Warn("jwks: key rotation failed; retrying", "err", err, "retry_in", runRetry)
		}
		if err != nil || !changed {
			wait(ctx, runRetry) // never spin on a due event that changes nothing
		}
	}
}

// wait returns after d or when ctx is done, whichever is first.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// rotationStrategy decides, as a pure function of the keys and the time,
// when keys change roles and when retired keys go.
type rotationStrategy struct {
	every  time.Duration // 0: no rotation
	retain time.Duration // how long a retired key stays published
}

// rotationAt returns when the next key takes over: every after the later of
// its creation and the active key's activation, so it has been published a
// whole period. Zero when rotation is off or a role is empty.
func (s rotationStrategy) rotationAt(keys []ringKey) time.Time {
	ai := slices.IndexFunc(keys, ringKey.isActive)
	ni := slices.IndexFunc(keys, ringKey.isNext)
	if s.every <= 0 || ai < 0 || ni < 0 {
		return time.Time{}
	}
	return laterOf(keys[ai].activated, keys[ni].created).Add(s.every)
}

// expiresAt returns when the retired key r stops being published.
func (s rotationStrategy) expiresAt(r ringKey) time.Time {
	return r.retired.Add(s.retain)
}

// nextEvent returns the earliest time at which apply would change
// something, and false if nothing is ever due.
func (s rotationStrategy) nextEvent(keys []ringKey) (time.Time, bool) {
	at := s.rotationAt(keys)
	for _, r := range keys {
		if r.isRetired() && (at.IsZero() || s.expiresAt(r).Before(at)) {
			at = s.expiresAt(r)
		}
	}
	return at, !at.IsZero()
}

// apply returns keys as they are at now: when the rotation is due the
// next key is activated and the active one retired (rotate reports it; the
// caller adds a new next key), and retired keys past their retention are
// left out and returned as dropped. keys is not modified.
func (s rotationStrategy) apply(keys []ringKey, now time.Time) (out []ringKey, rotate bool, dropped []ringKey) {
	due := s.rotationAt(keys)
	rotate = !due.IsZero() && !now.Before(due)
	for _, r := range keys {
		switch {
		case r.isRetired() && !now.Before(s.expiresAt(r)):
			dropped = append(dropped, r)
			continue
		case rotate && r.isActive():
			r.retired = now
		case rotate && r.isNext():
			r.activated = now
		}
		out = append(out, r)
	}
	return out, rotate, dropped
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// The key ring answers the gateway's key lookups like a [Remote].
var _ interface {
	Keys(context.Context, string) ([]Key, error)
	Ready() bool
	Updated() time.Time
} = (*KeyRing)(nil)

// openStatic loads the keys of cfg.KeyFiles: the first is active, the
// others published as retired keys that never expire.
func (k *KeyRing) openStatic(cfg KeyRingConfig) (*KeyRing, error) {
	if cfg.KeyDir != "" || cfg.RotateEvery != 0 {
		return nil, fmt.Errorf("jwks: key files are given from outside: key_dir and rotation must be unset")
	}
	now := k.now()
	keys := make([]ringKey, 0, len(cfg.KeyFiles))
	for i, path := range cfg.KeyFiles {
		s, err := readKeyFile(path, true)
		if err != nil {
			return nil, err
		}
		alg, err := keyAlgorithm(s, k.alg)
		if err != nil {
			return nil, fmt.Errorf("jwks: key file %s: %w", path, err)
		}
		id, err := thumbprintID(s.Public())
		if err != nil {
			return nil, fmt.Errorf("jwks: key file %s: %w", path, err)
		}
		if slices.ContainsFunc(keys, func(r ringKey) bool { return r.ID == id }) {
			return nil, fmt.Errorf("jwks: key file %s holds a key given twice", path)
		}
		rk := ringKey{SigningKey: SigningKey{ID: id, Algorithm: alg, Signer: s}, created: now, activated: now}
		if i > 0 {
			rk.retired = now
		}
		keys = append(keys, rk)
	}
	k.static = true
	k.strategy = rotationStrategy{retain: 100 * 365 * 24 * time.Hour}
	v, err := k.commit(keys, now, false)
	if err != nil {
		return nil, err
	}
	k.log.Info("jwks: key ring open from key files", "active", v.keys[0].ID, "alg", v.keys[0].Algorithm, "published", len(v.keys))
	return k, nil
}
