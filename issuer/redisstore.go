package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/internal/redislog"
	"github.com/portcullis-dev/portcullis/internal/redistrace"
)

const (
	// redisDefaultPrefix is RedisConfig.Prefix when it is empty.
	redisDefaultPrefix = "portcullis:"
	// redisTimeout is the dial, read and write timeout unless the URL sets
	// one (dial_timeout, read_timeout, write_timeout).
	redisTimeout = 2 * time.Second
	// redisCallTimeout bounds one store call, retries included, unless
	// RedisConfig.CallTimeout is set, so a Redis that hangs costs a request
	// a second and not a minute.
	redisCallTimeout = time.Second
	// redisExpirySlack is added to every key's Redis TTL. Decisions compare
	// the expiry kept in the value with the store's clock; the TTL only
	// removes dead data, and the slack keeps a Redis whose clock runs ahead
	// of the issuer's from dropping a live entry (a revocation, say) early.
	redisExpirySlack = time.Minute
)

// RedisConfig configures a [RedisStore].
type RedisConfig struct {
	// URL is redis://[user:password@]host[:port][/db] or rediss://… for
	// TLS, parsed by [redis.ParseURL] (so its query options, such as
	// read_timeout, apply). Required. It may hold a password: errors never
	// repeat it.
	URL string
	// CallTimeout bounds each call, retries included; zero means 1s.
	CallTimeout time.Duration
	// Prefix starts every key, so that several issuers (or other
	// applications) can share one database. Empty means "portcullis:".
	Prefix string
	// Now is the clock every expiry is computed and compared with; nil
	// means time.Now. Redis' own clock only drives key TTLs.
	Now func() time.Time
	// Logger receives a warning when Redis becomes unreachable and a notice
	// when it is back; nil discards them.
	Logger *slog.Logger
	// Tracer, when set, gives the commands of traced requests client
	// spans. Nil traces nothing.
	Tracer trace.Tracer
}

// RedisStore is the [Store] for issuers that share state: every replica
// pointed at the same Redis sees the same codes, refresh-token families,
// revocations, sessions, consents and rate-limit counters.
//
// Every decision (redeeming a code, creating, rotating or revoking a
// refresh-token family, recording an access token with one) runs as one Lua
// script, so it is atomic across processes. The scripts are written so that
// running one twice with the same arguments, as the client does when a
// connection drops before the reply arrives, has the effect of running it
// once. The scripts derive a family's key from its tokens, so the store
// needs a single Redis (with replicas or Sentinel if wanted), not Redis
// Cluster.
//
// Keys are [RedisConfig.Prefix], a kind, ":" and an ID: the code and refresh
// token hashes callers pass, a family ID, a jti, the SHA-256 of a session ID
// (the session cookie is a bearer secret), the base64url subject and client
// of a consent, or the rate-limit key. Each is a hash whose "until" field is
// the entry's end in Unix milliseconds on the store's clock, with its other
// fields JSON or plain IDs, and every key has a TTL. The clients that took
// part in a session are fields of its hash. The indexes (a subject's
// sessions and families, a session's families, under the base64url subject
// or the session ID's SHA-256) are sorted sets scored by each member's
// "until", pruned as they are written and read, whose TTL follows their
// last member. Registered clients are the exception: a client that was
// used, or registered with no unused TTL, has neither "until" nor TTL and
// stays until deleted, and one sorted set, "clients:all", indexes every
// client for the limit (see [RedisStore.RegisterClient]).
//
// When Redis cannot be reached or answers with an error, methods return an
// error wrapping [ErrUnavailable] within a few seconds; the client
// reconnects by itself once Redis is back. All methods are safe for
// concurrent use. Create one with [NewRedisStore] and release it with
// [RedisStore.Close].
type RedisStore struct {
	rdb    *redis.Client
	prefix string
	now    func() time.Time
	log    *slog.Logger
	down   atomic.Bool // the last call found Redis unreachable

	callTimeout time.Duration
}

// NewRedisStore checks cfg and returns a store. It does not connect:
// Redis need not be up yet, and [RedisStore.Ping] reports whether it is.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// url.Error repeats the URL, password included; keep only the reason.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("issuer: redis store: bad URL: %w", err)
	}
	for _, d := range []*time.Duration{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout} {
		if *d == 0 {
			*d = redisTimeout
		}
	}
	// Fail fast while Redis is down (one dial per attempt, not five), and
	// let the caller's deadline cut socket waits short.
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	s := &RedisStore{
		rdb:    redis.NewClient(opt),
		prefix: cfg.Prefix,
		now:    cfg.Now,
		log:    cfg.Logger,

		callTimeout: cfg.CallTimeout,
	}
	if s.callTimeout <= 0 {
		s.callTimeout = redisCallTimeout
	}
	if cfg.Tracer != nil {
		s.rdb.AddHook(redistrace.Hook(cfg.Tracer, opt.Addr))
	}
	if s.prefix == "" {
		s.prefix = redisDefaultPrefix
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	redislog.Install()
	return s, nil
}

// Close closes the connections to Redis. The store must not be used after.
func (s *RedisStore) Close() error {
	return s.rdb.Close()
}

// redisFamily is the JSON "v" field of a refresh-token family.
type redisFamily struct {
	Expiry time.Time
}

// SaveCode implements [Store]. It refuses an empty hash, an expiry that is
// not in the future, and a hash that is already stored.
func (s *RedisStore) SaveCode(ctx context.Context, codeHash string, c AuthCode) error {
	now := s.now()
	switch {
	case codeHash == "":
		return errors.New("issuer: save code: empty code hash")
	case !now.Before(c.Expiry):
		return errors.New("issuer: save code: expiry is not in the future")
	}
	c.Issued = Issued{}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("issuer: save code: %w", err)
	}
	st, err := s.status(ctx, "save code", redisSaveCode, []string{s.key("code", codeHash)},
		redisMs(now), redisMs(c.Expiry), v)
	if err == nil && st != "ok" {
		err = errors.New("issuer: save code: a code with this hash is already stored")
	}
	return err
}

// RedeemCode implements [Store]. A redeemed code is remembered until ten
// minutes after its expiry. A redemption that presents exactly the Issued
// recorded by the first one, with a non-empty AccessJTI, is taken for that
// redemption's retry and succeeds again: the caller chose that jti at
// random, so no one else can present it.
func (s *RedisStore) RedeemCode(ctx context.Context, codeHash string, issued Issued) (AuthCode, error) {
	v, err := json.Marshal(issued)
	if err != nil {
		return AuthCode{}, fmt.Errorf("issuer: redeem code: %w", err)
	}
	r, err := s.strings(ctx, "redeem code", redisRedeemCode, []string{s.key("code", codeHash)},
		redisMs(s.now()), v, memCodeReplayGrace.Milliseconds(), issued.AccessJTI != "")
	if err != nil {
		return AuthCode{}, err
	}
	if r[0] == "notfound" {
		return AuthCode{}, ErrNotFound
	}
	var c AuthCode
	if err := redisDecode("redeem code", r, &c, &c.Issued); err != nil {
		return AuthCode{}, err
	}
	if r[0] == "reused" {
		return c, ErrCodeReused
	}
	return c, nil
}

// CreateRefresh implements [Store] like [MemoryStore.CreateRefresh]: a zero
// rt.FamilyExpiry means rt.Expiry, rt.Expiry is cut to the family's
// expiry, and a family revoked before it was created gives [ErrRevoked].
func (s *RedisStore) CreateRefresh(ctx context.Context, tokenHash string, rt RefreshToken) error {
	now := s.now()
	if rt.FamilyExpiry.IsZero() {
		rt.FamilyExpiry = rt.Expiry
	}
	rt.Expiry = memEarlier(rt.Expiry, rt.FamilyExpiry)
	switch {
	case tokenHash == "":
		return errors.New("issuer: create refresh token: empty token hash")
	case rt.FamilyID == "":
		return errors.New("issuer: create refresh token: empty family ID")
	case !now.Before(rt.Expiry):
		return errors.New("issuer: create refresh token: expiry is not in the future")
	}
	tv, err := json.Marshal(rt)
	if err != nil {
		return fmt.Errorf("issuer: create refresh token: %w", err)
	}
	fv, err := json.Marshal(redisFamily{Expiry: rt.FamilyExpiry})
	if err != nil {
		return fmt.Errorf("issuer: create refresh token: %w", err)
	}
	sessionHash := ""
	if rt.SessionID != "" {
		sessionHash = hashToken(rt.SessionID)
	}
	st, err := s.status(ctx, "create refresh token", redisCreateRefresh,
		[]string{s.key("refresh", tokenHash), s.key("family", rt.FamilyID),
			s.subjectKey("subject-families", rt.Subject), s.key("session-families", sessionHash)},
		redisMs(now), tokenHash, redisMs(rt.FamilyExpiry), fv, redisMs(rt.Expiry), rt.FamilyID, tv,
		rt.ClientID, rt.Subject, sessionHash)
	switch {
	case err != nil:
		return err
	case st == "revoked":
		return ErrRevoked
	case st == "family":
		return errors.New("issuer: create refresh token: the family already exists")
	case st == "exists":
		return errors.New("issuer: create refresh token: a token with this hash is already stored")
	}
	return nil
}

// RotateRefresh implements [Store] like [MemoryStore.RotateRefresh]: the
// new token keeps the family's expiry, a reuse revokes the family before
// anything about the new token is checked, and otherwise nothing changes
// unless the rotation succeeds. A rotation of oldHash to the family's
// current token newHash is taken for this rotation's retry and succeeds
// again: newHash is the hash of a token only the caller has seen.
func (s *RedisStore) RotateRefresh(ctx context.Context, oldHash, newHash string, next RefreshToken, accessJTI string, accessExpiry time.Time) (RefreshToken, error) {
	now := s.now()
	// Refusals the script reports only after the reuse check.
	refuse := ""
	switch {
	case newHash == "" || newHash == oldHash:
		refuse = "the new token hash is empty or unchanged"
	case !now.Before(next.Expiry):
		refuse = "expiry is not in the future"
	}
	next.FamilyID, next.FamilyExpiry = "", time.Time{} // the family's, filled in on reads
	v, err := json.Marshal(next)
	if err != nil {
		return RefreshToken{}, fmt.Errorf("issuer: rotate refresh token: %w", err)
	}
	retryUntil, retrySealed := "", ""
	if rr := next.Retry; rr != nil && rr.Until.After(now) {
		retryUntil, retrySealed = strconv.FormatInt(redisMs(rr.Until), 10), string(rr.Sealed)
	}
	r, err := s.strings(ctx, "rotate refresh token", redisRotateRefresh,
		[]string{s.key("refresh", oldHash), s.key("refresh", newHash), s.key("access", accessJTI)},
		redisMs(now), s.key("family", ""), oldHash, newHash, refuse,
		redisMs(next.Expiry), v, accessJTI != "", redisMsCeil(accessExpiry), retryUntil, retrySealed, s.key("refresh", ""))
	if err != nil {
		return RefreshToken{}, err
	}
	return s.refreshReply("rotate refresh token", r)
}

// RetryRefresh implements [Store], atomically like every decision.
func (s *RedisStore) RetryRefresh(ctx context.Context, oldHash string) (RefreshRetry, error) {
	r, err := s.strings(ctx, "retry refresh token", redisRetryRefresh,
		[]string{s.key("refresh", oldHash)}, redisMs(s.now()), s.key("family", ""), s.key("refresh", ""), oldHash)
	if err != nil {
		return RefreshRetry{}, err
	}
	if r[0] != "ok" || len(r) != 3 {
		return RefreshRetry{}, ErrNotFound
	}
	ms, err := strconv.ParseInt(r[1], 10, 64)
	if err != nil {
		return RefreshRetry{}, fmt.Errorf("issuer: retry refresh token: redis store: bad grace end %q", r[1])
	}
	return RefreshRetry{Until: time.UnixMilli(ms), Sealed: []byte(r[2])}, nil
}

// LookupRefresh implements [Store]. It returns the grant along with
// ErrRevoked and ErrRefreshReused.
func (s *RedisStore) LookupRefresh(ctx context.Context, tokenHash string) (RefreshToken, error) {
	r, err := s.strings(ctx, "look up refresh token", redisLookupRefresh,
		[]string{s.key("refresh", tokenHash)}, redisMs(s.now()), s.key("family", ""), tokenHash)
	if err != nil {
		return RefreshToken{}, err
	}
	return s.refreshReply("look up refresh token", r)
}

// refreshReply turns a refresh script's reply {status, token JSON, family
// ID, family JSON} into the grant and the status's error.
func (s *RedisStore) refreshReply(op string, r []string) (RefreshToken, error) {
	var st error
	switch r[0] {
	case "notfound":
		return RefreshToken{}, ErrNotFound
	case "ok":
	case "revoked":
		st = ErrRevoked
	case "reused":
		st = ErrRefreshReused
	case "retry":
		st = ErrRefreshRetry
	case "exists":
		st = fmt.Errorf("issuer: %s: a token with the new hash is already stored", op)
	default: // a refusal RotateRefresh passed in
		st = fmt.Errorf("issuer: %s: %s", op, r[0])
	}
	var (
		rt  RefreshToken
		fam redisFamily
	)
	if len(r) != 4 {
		return RefreshToken{}, fmt.Errorf("issuer: %s: redis store: reply of %d values, want 4", op, len(r))
	}
	if err := redisDecode(op, []string{r[0], r[1], r[3]}, &rt, &fam); err != nil {
		return RefreshToken{}, err
	}
	rt.FamilyID, rt.FamilyExpiry = r[2], fam.Expiry
	rt.Expiry = memEarlier(rt.Expiry, fam.Expiry)
	return rt, st
}

// AddFamilyAccess implements [Store]. An unknown or expired family gives
// ErrNotFound. If the family is revoked, the access token is recorded (and
// so denied) all the same and ErrRevoked is returned.
func (s *RedisStore) AddFamilyAccess(ctx context.Context, familyID, accessJTI string, accessExpiry time.Time) error {
	if accessJTI == "" {
		return errors.New("issuer: add family access: empty jti")
	}
	st, err := s.status(ctx, "add family access", redisAddAccess,
		[]string{s.key("family", familyID), s.key("access", accessJTI)},
		redisMs(s.now()), familyID, redisMsCeil(accessExpiry))
	switch {
	case err != nil:
		return err
	case st == "notfound":
		return ErrNotFound
	case st == "revoked":
		return ErrRevoked
	}
	return nil
}

// RevokeFamily implements [Store]. Revoking again is not an error; a
// family that does not exist (yet) is remembered as revoked for ten
// minutes, as [MemoryStore.RevokeFamily] explains.
func (s *RedisStore) RevokeFamily(ctx context.Context, familyID string) error {
	if familyID == "" {
		return errors.New("issuer: revoke family: empty family ID")
	}
	now := s.now()
	_, err := s.status(ctx, "revoke family", redisRevokeFamily, []string{s.key("family", familyID)},
		redisMs(now), redisMs(now.Add(memTombstoneTTL)))
	return err
}

// RevokeAccess implements [Store]. An expiry that has passed changes
// nothing; revoking again keeps the later expiry.
func (s *RedisStore) RevokeAccess(ctx context.Context, jti string, expiry time.Time) error {
	now := s.now()
	if jti == "" {
		return errors.New("issuer: revoke access token: empty jti")
	}
	if !now.Before(expiry) {
		return nil
	}
	_, err := s.status(ctx, "revoke access token", redisRevokeAccess, []string{s.key("revoked", jti)},
		redisMs(now), redisMsCeil(expiry))
	return err
}

// IsAccessRevoked implements [Store]. A jti is denied if it was revoked
// itself or was recorded with a family that is now revoked.
func (s *RedisStore) IsAccessRevoked(ctx context.Context, jti string) (bool, error) {
	v, err := s.run(ctx, "check access token", redisIsRevoked,
		[]string{s.key("revoked", jti), s.key("access", jti)}, redisMs(s.now()), s.key("family", ""))
	if err != nil {
		return false, err
	}
	return v == int64(1), nil
}

// SaveSession implements [Store]. Saving under an existing ID replaces
// that session.
func (s *RedisStore) SaveSession(ctx context.Context, id string, sess Session) error {
	now := s.now()
	switch {
	case id == "":
		return errors.New("issuer: save session: empty session ID")
	case !now.Before(sess.Expiry):
		return errors.New("issuer: save session: expiry is not in the future")
	}
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("issuer: save session: %w", err)
	}
	_, err = s.status(ctx, "save session", redisSaveSession,
		[]string{s.sessionKey(id), s.subjectKey("subject-sessions", sess.Subject)},
		redisMs(now), redisMs(sess.Expiry), v, hashToken(id), sess.Subject != "")
	return err
}

// GetSession implements [Store].
func (s *RedisStore) GetSession(ctx context.Context, id string) (Session, error) {
	var sess Session
	err := s.get(ctx, "get session", s.sessionKey(id), &sess)
	return sess, err
}

// DeleteSession implements [Store].
func (s *RedisStore) DeleteSession(ctx context.Context, id string) error {
	_, err := s.status(ctx, "delete session", redisDeleteSession, []string{s.sessionKey(id)},
		redisMs(s.now()), hashToken(id))
	return err
}

// SaveConsent implements [Store]. Saving again replaces the scopes and
// expiry.
func (s *RedisStore) SaveConsent(ctx context.Context, subject, clientID string, scopes []string, expiry time.Time) error {
	now := s.now()
	if !now.Before(expiry) {
		return errors.New("issuer: save consent: expiry is not in the future")
	}
	return s.put(ctx, "save consent", s.consentKey(subject, clientID), now, expiry, scopes)
}

// GetConsent implements [Store].
func (s *RedisStore) GetConsent(ctx context.Context, subject, clientID string) ([]string, error) {
	var scopes []string
	if err := s.get(ctx, "get consent", s.consentKey(subject, clientID), &scopes); err != nil {
		return nil, err
	}
	return scopes, nil
}

// Hit implements [Store]. The window must be positive.
func (s *RedisStore) Hit(ctx context.Context, key string, window time.Duration) (int, error) {
	if window <= 0 {
		return 0, fmt.Errorf("issuer: rate-limit hit: window %v is not positive", window)
	}
	now := s.now()
	v, err := s.run(ctx, "rate-limit hit", redisHit, []string{s.key("hit", key)},
		redisMs(now), redisMs(now)+(window+time.Millisecond-1).Milliseconds())
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("issuer: rate-limit hit: redis store: reply %T, want an integer", v)
	}
	return int(n), nil
}

// Count implements [Store].
func (s *RedisStore) Count(ctx context.Context, key string) (int, error) {
	var f []any
	err := s.do(ctx, "rate-limit count", func(ctx context.Context) (err error) {
		f, err = s.rdb.HMGet(ctx, s.key("hit", key), "until", "n").Result()
		return err
	})
	if err != nil || !s.live(f[0]) {
		return 0, err
	}
	str, _ := f[1].(string)
	n, err := strconv.Atoi(str)
	if err != nil {
		return 0, fmt.Errorf("issuer: rate-limit count: redis store: bad counter: %w", err)
	}
	return n, nil
}

// Ping implements [Store]: it reports whether Redis answers.
func (s *RedisStore) Ping(ctx context.Context) error {
	return s.do(ctx, "ping", func(ctx context.Context) error {
		return s.rdb.Ping(ctx).Err()
	})
}

// key returns the Redis key of an entry of the given kind.
func (s *RedisStore) key(kind, id string) string {
	return s.prefix + kind + ":" + id
}

// sessionKey keys a session by the SHA-256 of its ID, which is the
// browser's cookie: whoever reads Redis must not be able to sign in.
func (s *RedisStore) sessionKey(id string) string {
	return s.key("session", hashToken(id))
}

// subjectKey keys an index of a subject's entries by the encoded subject.
func (s *RedisStore) subjectKey(kind, subject string) string {
	return s.key(kind, base64.RawURLEncoding.EncodeToString([]byte(subject)))
}

// consentKey encodes both parts, so that no subject or client ID can make
// two pairs share a key.
func (s *RedisStore) consentKey(subject, clientID string) string {
	enc := base64.RawURLEncoding
	return s.key("consent", enc.EncodeToString([]byte(subject))+":"+enc.EncodeToString([]byte(clientID)))
}

// put stores val as JSON under key until expiry, replacing what was there.
func (s *RedisStore) put(ctx context.Context, op, key string, now, expiry time.Time, val any) error {
	v, err := json.Marshal(val)
	if err != nil {
		return fmt.Errorf("issuer: %s: %w", op, err)
	}
	_, err = s.status(ctx, op, redisPut, []string{key}, redisMs(now), redisMs(expiry), v)
	return err
}

// get decodes the live value under key into val, or returns ErrNotFound.
func (s *RedisStore) get(ctx context.Context, op, key string, val any) error {
	var f []any
	err := s.do(ctx, op, func(ctx context.Context) (err error) {
		f, err = s.rdb.HMGet(ctx, key, "until", "v").Result()
		return err
	})
	switch {
	case err != nil:
		return err
	case !s.live(f[0]):
		return ErrNotFound
	}
	str, _ := f[1].(string)
	if err := json.Unmarshal([]byte(str), val); err != nil {
		return fmt.Errorf("issuer: %s: redis store: bad value: %w", op, err)
	}
	return nil
}

// live reports whether an "until" field read from Redis is after now.
func (s *RedisStore) live(until any) bool {
	str, _ := until.(string)
	ms, err := strconv.ParseInt(str, 10, 64)
	return err == nil && redisMs(s.now()) < ms
}

// run runs a script, with the arguments' first being now in milliseconds.
func (s *RedisStore) run(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) (any, error) {
	var v any
	err := s.do(ctx, op, func(ctx context.Context) (err error) {
		v, err = sc.Run(ctx, s.rdb, keys, args...).Result()
		return err
	})
	return v, err
}

// status runs a script that answers with one status word.
func (s *RedisStore) status(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) (string, error) {
	r, err := s.strings(ctx, op, sc, keys, args...)
	if err != nil {
		return "", err
	}
	return r[0], nil
}

// strings runs a script that answers with a status word or a list of
// strings starting with one.
func (s *RedisStore) strings(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) ([]string, error) {
	v, err := s.run(ctx, op, sc, keys, args...)
	if err != nil {
		return nil, err
	}
	var r []string
	switch v := v.(type) {
	case string:
		r = []string{v}
	case []any:
		for _, e := range v {
			str, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("issuer: %s: redis store: reply holds %T, want strings", op, e)
			}
			r = append(r, str)
		}
	}
	if len(r) == 0 {
		return nil, fmt.Errorf("issuer: %s: redis store: reply %T, want a status", op, v)
	}
	return r, nil
}

// do runs one call to Redis under the per-call timeout and turns every
// failure into an error wrapping [ErrUnavailable]: whatever went wrong, the
// call's outcome is unknown and must not be taken as success.
func (s *RedisStore) do(ctx context.Context, op string, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.callTimeout)
	defer cancel()
	err := call(ctx)
	if err == nil {
		if s.down.CompareAndSwap(true, false) {
			s.log.Info("issuer: redis store reachable again")
		}
		return nil
	}
	if !errors.Is(err, context.Canceled) && s.down.CompareAndSwap(false, true) {
		s.log.Warn("issuer: redis store unreachable", "op", op, "err", err)
	}
	return fmt.Errorf("issuer: %s: %w: %w", op, ErrUnavailable, err)
}

// redisDecode decodes the JSON values r[1:] into vals.
func redisDecode(op string, r []string, vals ...any) error {
	if len(r) != len(vals)+1 {
		return fmt.Errorf("issuer: %s: redis store: reply of %d values, want %d", op, len(r), len(vals)+1)
	}
	for i, v := range vals {
		if err := json.Unmarshal([]byte(r[i+1]), v); err != nil {
			return fmt.Errorf("issuer: %s: redis store: bad value: %w", op, err)
		}
	}
	return nil
}

// redisMs is t in Unix milliseconds, rounded down: an entry whose expiry
// is compared this way ends up to a millisecond early, never late.
func redisMs(t time.Time) int64 { return t.UnixMilli() }

// redisMsCeil is t in Unix milliseconds, rounded up, for denials (a
// revoked jti, an access token recorded with a family), which must last at
// least as long as the token.
func redisMsCeil(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Add(time.Millisecond - 1).UnixMilli()
}

var _ Store = (*RedisStore)(nil)
