package jwks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Errors returned by [Remote.Keys]. Both may wrap the error of the fetch
// that was tried on the caller's behalf; test for them with [errors.Is].
var (
	// ErrKeyNotFound means a key set is loaded but has no key with the
	// requested kid, even after a refetch (or a refetch was not allowed yet,
	// see [RemoteConfig.RefetchInterval]).
	ErrKeyNotFound = errors.New("jwks: no key with that kid")
	// ErrNotLoaded means no key set has been fetched successfully yet and
	// the fetch tried for this call failed or was not allowed yet.
	ErrNotLoaded = errors.New("jwks: key set not loaded yet")
)

// Defaults for zero fields of [RemoteConfig].
const (
	defaultTimeout         = 5 * time.Second
	defaultMinAge          = time.Minute
	defaultMaxAge          = time.Hour
	defaultRefetchInterval = 10 * time.Second
)

// RemoteConfig configures a [Remote]. The zero value of every field but
// Issuer and JWKSURI (one of which is required) selects the documented
// default. A Remote does not modify its config after [NewRemote].
type RemoteConfig struct {
	// Issuer is the OpenID provider's issuer URL. When JWKSURI is empty the
	// key set URL is discovered at Issuer + "/.well-known/openid-configuration"
	// (a trailing slash of Issuer is dropped first), and the document's
	// "issuer" must equal Issuer exactly (OpenID Connect Discovery §4.3).
	// A successful discovery is remembered for the life of the Remote.
	Issuer string
	// JWKSURI is the key set URL. When set, discovery is skipped.
	JWKSURI string
	// Client sends every request. nil means http.DefaultTransport.
	Client *http.Client
	// Timeout bounds each request (discovery, key set), from dialing to
	// the end of the body, whatever Client's own timeout. Zero or negative
	// means 5s.
	Timeout time.Duration
	// MinAge and MaxAge bound how long a fetched set is used before the next
	// scheduled refresh: the response's Cache-Control max-age (less its Age)
	// clamped to [MinAge, MaxAge]; no or an invalid max-age means MaxAge,
	// "no-cache" or "no-store" mean MinAge. Zero or negative means 1m and 1h;
	// a MaxAge below MinAge is raised to MinAge.
	MinAge, MaxAge time.Duration
	// RefetchInterval is the minimum time between fetches started by
	// [Remote.Keys] for an unknown kid, so that tokens with made-up kids
	// cannot make portcullis hammer the issuer. Zero or negative means 10s.
	RefetchInterval time.Duration
	// Now reads the clock for every decision of the Remote. nil means
	// time.Now. [Remote.Run] still waits on real timers.
	Now func() time.Time
	// Logger receives fetch failures (warn), key set changes (info) and
	// skipped keys (debug). nil discards.
	Logger *slog.Logger
	// OnFetch, when set, is called after every fetch attempt with "ok",
	// "not_modified" or "error", e.g. to count them. It runs on the fetching
	// goroutine, never concurrently with itself, before callers waiting on
	// that fetch are released; it must not call the Remote's methods that
	// fetch ([Remote.Keys], [Remote.Refresh]).
	OnFetch func(result string)
	// Tracer, when set, gives every fetch a span, a child of the request
	// whose unknown kid started it, if one did. Nil traces nothing.
	Tracer trace.Tracer
}

// Remote is an issuer's key set fetched over HTTP, cached, and refreshed
// in the background by [Remote.Run] and on demand when a token names an
// unknown key ID.
//
// All methods are safe for concurrent use. At most one fetch is in flight
// per Remote; concurrent callers that need one share it. Fetches run on the
// context given to [NewRemote], never on a caller's, so a caller that gives
// up does not abort a fetch others wait for. After a successful load a
// failed fetch keeps the last good set (stale-if-error).
type Remote struct {
	version  atomic.Uint64 // see Version
	ctx      context.Context
	issuer   string
	jwksURI  string
	client   *http.Client
	timeout  time.Duration
	minAge   time.Duration
	maxAge   time.Duration
	refetch  time.Duration
	now      func() time.Time
	log      *slog.Logger
	onFetch  func(string)
	tracer   trace.Tracer  // nil: fetches are not traced
	wake     chan struct{} // capacity 1: the schedule changed, Run looks again
	waitHook func()        // tests: a Keys caller starts waiting on a fetch

	set atomic.Pointer[Set] // nil until the first successful fetch

	// Fetch state, used only by the goroutine running the current fetch.
	// Fetches run one at a time and hand over through mu (see startLocked),
	// so these need no lock of their own.
	discovered string // jwks_uri from discovery, once it succeeded
	etag       string // ETag of the current set, for If-None-Match

	mu          sync.Mutex
	inflight    *inflight // the fetch under way, nil if none
	lastAttempt time.Time // start of the latest fetch
	lastErr     error     // of the latest fetch, nil if it succeeded
	updated     time.Time // end of the latest successful fetch
	next        time.Time // when Run fetches next; zero: right away
	failures    int       // consecutive failed fetches
}

// inflight is one fetch that several goroutines may wait on, as in
// go-oidc's RemoteKeySet: done is closed once err is set and the result has
// been recorded in the Remote.
type inflight struct {
	done   chan struct{}
	err    error
	parent trace.SpanContext // of the request that started it, if traced
}

// NewRemote returns a Remote for cfg. It does no I/O: call [Remote.Run] in
// a goroutine to load and refresh the set, and [Remote.Keys] to use it.
//
// ctx is the key set's own lifetime: every fetch runs on it, and Run
// returns when it is done. It must outlive the requests that use the
// Remote. A config with neither Issuer nor JWKSURI, or an invalid URL, is
// not rejected here: every fetch fails with an error saying so.
func NewRemote(ctx context.Context, cfg RemoteConfig) *Remote {
	r := &Remote{
		ctx:     ctx,
		issuer:  cfg.Issuer,
		jwksURI: cfg.JWKSURI,
		client:  cfg.Client,
		timeout: cfg.Timeout,
		minAge:  cfg.MinAge,
		maxAge:  cfg.MaxAge,
		refetch: cfg.RefetchInterval,
		now:     cfg.Now,
		log:     cfg.Logger,
		onFetch: cfg.OnFetch,
		tracer:  cfg.Tracer,
		wake:    make(chan struct{}, 1),
	}
	if r.client == nil {
		r.client = &http.Client{}
	}
	if r.timeout <= 0 {
		r.timeout = defaultTimeout
	}
	if r.minAge <= 0 {
		r.minAge = defaultMinAge
	}
	if r.maxAge <= 0 {
		r.maxAge = defaultMaxAge
	}
	r.maxAge = max(r.maxAge, r.minAge)
	if r.refetch <= 0 {
		r.refetch = defaultRefetchInterval
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Keys returns the keys whose ID is kid, or all keys when kid is empty,
// from the cached set. The returned slice is the caller's; the keys in it
// are shared and read-only.
//
// On a miss (or when nothing is loaded yet) it fetches the set again,
// because the issuer may have rotated its keys — unless the latest fetch
// started less than [RemoteConfig.RefetchInterval] ago, in which case it
// fails at once with [ErrKeyNotFound] (or [ErrNotLoaded]) without I/O.
// Concurrent callers share one fetch; each waits only until its own ctx is
// done, then returns ctx's error while the fetch goes on for the others.
//
// A key set that never loaded fails at once once a fetch has failed: while
// the issuer is unreachable, callers get [ErrNotLoaded] (the caller answers
// 503) without waiting for the retries, which go on in the background.
// Only callers that come before the first fetch ended wait for it, at most
// [RemoteConfig.Timeout].
func (r *Remote) Keys(ctx context.Context, kid string) ([]Key, error) {
	s := r.set.Load()
	if keys := s.Lookup(kid); len(keys) > 0 {
		return keys, nil
	}

	r.mu.Lock()
	if cur := r.set.Load(); cur != s {
		// A fetch finished since the look above; its set may have the key.
		s = cur
		if keys := s.Lookup(kid); len(keys) > 0 {
			r.mu.Unlock()
			return keys, nil
		}
	}
	f := r.inflight
	if s == nil && r.lastErr != nil {
		err := r.lastErr
		if f == nil && r.now().Sub(r.lastAttempt) >= r.refetch {
			r.startLocked(trace.SpanContextFromContext(ctx))
		}
		r.mu.Unlock()
		return nil, missError(false, err)
	}
	if f == nil {
		if !r.lastAttempt.IsZero() && r.now().Sub(r.lastAttempt) < r.refetch {
			r.mu.Unlock()
			return nil, missError(s != nil, nil)
		}
		f = r.startLocked(trace.SpanContextFromContext(ctx))
	}
	hook := r.waitHook
	r.mu.Unlock()
	if hook != nil {
		hook()
	}

	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("jwks: waiting for key set: %w", context.Cause(ctx))
	case <-f.done:
	}
	s = r.set.Load()
	if keys := s.Lookup(kid); len(keys) > 0 {
		return keys, nil
	}
	return nil, missError(s != nil, f.err)
}

// missError is the error of [Remote.Keys] when the kid is not found, with
// the error of the fetch tried for it, if any.
func missError(loaded bool, fetchErr error) error {
	err := ErrKeyNotFound
	if !loaded {
		err = ErrNotLoaded
	}
	if fetchErr != nil {
		return fmt.Errorf("%w: %w", err, fetchErr)
	}
	return err
}

// Refresh fetches the key set now, or waits for the fetch already in
// flight, and returns that fetch's error. It ignores
// [RemoteConfig.RefetchInterval] and waits without a deadline of its own:
// the fetch ends with the client's timeout or the Remote's context.
// A failed Refresh keeps the last good set.
func (r *Remote) Refresh() error {
	r.mu.Lock()
	f := r.inflight
	if f == nil {
		f = r.startLocked(trace.SpanContext{})
	}
	r.mu.Unlock()
	<-f.done
	return f.err
}

// Run loads the key set and keeps it fresh until the context given to
// [NewRemote] is done. Call it once, in its own goroutine; it never blocks
// startup, and until the first load succeeds [Remote.Keys] fails with
// [ErrNotLoaded].
//
// The first load (discovery, then the key set) is retried with exponential
// backoff and jitter (1s doubling, capped at 1m). After a success the set is
// fetched again when its max-age runs out (see [RemoteConfig.MinAge]). A
// failed refresh keeps the last good set, is logged and reported to
// [RemoteConfig.OnFetch], and is retried with the same backoff. Fetches
// started by Keys count too: Run does not refetch a set they just renewed.
func (r *Remote) Run() {
	for r.ctx.Err() == nil {
		r.mu.Lock()
		d := runDelay(r.now(), r.next)
		r.mu.Unlock()
		if d == 0 {
			_ = r.Refresh() // logged, counted and scheduled by finish
			continue
		}
		t := time.NewTimer(d)
		select {
		case <-r.ctx.Done():
		case <-t.C:
		case <-r.wake:
		}
		t.Stop()
	}
}

// Version increases whenever the cached keys change; caches of verified
// tokens compare it to know their keys may be gone.
func (r *Remote) Version() uint64 { return r.version.Load() }

// Ready reports whether a key set has been loaded at least once. It stays
// true when later refreshes fail, as the last good set is kept.
func (r *Remote) Ready() bool {
	return r.set.Load() != nil
}

// Updated returns the time (per [RemoteConfig.Now]) the latest successful
// fetch ended, a 304 Not Modified revalidation included; zero if none.
func (r *Remote) Updated() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updated
}

// Issuer returns the configured issuer URL, "" when only a JWKS URI was
// configured.
func (r *Remote) Issuer() string {
	return r.issuer
}

// startLocked starts a fetch in a new goroutine and records it as the one
// in flight. r.mu must be held and no fetch be in flight.
func (r *Remote) startLocked(parent trace.SpanContext) *inflight {
	f := &inflight{done: make(chan struct{}), parent: parent}
	r.inflight = f
	r.lastAttempt = r.now()
	go r.runFetch(f)
	return f
}

// runFetch performs the fetch f stands for, records its result, and then
// releases everyone waiting on f.
func (r *Remote) runFetch(f *inflight) {
	var span trace.Span
	if r.tracer != nil && (!f.parent.IsValid() || f.parent.IsSampled()) {
		ctx := r.ctx
		if f.parent.IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, f.parent)
		}
		_, span = r.tracer.Start(ctx, "portcullis.jwks.fetch", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("portcullis.issuer", r.issuer)))
	}
	res := r.fetch()
	result := r.finish(res)
	if span != nil {
		span.SetAttributes(attribute.String("portcullis.jwks.result", result))
		if res.set != nil {
			span.SetAttributes(attribute.Int("portcullis.jwks.keys", res.set.Len()))
		}
		if res.err != nil {
			span.SetStatus(codes.Error, result)
		}
		span.End()
	}
	if r.onFetch != nil {
		r.onFetch(result)
	}
	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	f.err = res.err
	close(f.done)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// finish records a fetch's result — the set, its freshness, the failure
// count and the next scheduled fetch — logs it, and returns the result name
// reported to [RemoteConfig.OnFetch].
func (r *Remote) finish(res fetchResult) string {
	now := r.now()
	r.mu.Lock()
	r.lastErr = res.err
	if res.err != nil {
		r.failures++
		n := r.failures
		r.next = now.Add(backoff(n, rand.Float64()))
		r.mu.Unlock()
		r.log.Warn("jwks: fetch failed", "issuer", r.issuer, "err", res.err,
			"consecutive_failures", n, "keeping_last_set", r.Ready())
		return "error"
	}
	r.failures = 0
	r.updated = now
	r.next = refreshAt(now, res.header, r.minAge, r.maxAge)
	next := r.next
	var old *Set
	if res.set != nil {
		res.set.inherit(r.set.Load())
		old = r.set.Swap(res.set)
		if old == nil || !old.equalKeys(res.set) {
			r.version.Add(1)
		}
	}
	r.mu.Unlock()

	if res.set == nil {
		r.log.Debug("jwks: key set not modified", "issuer", r.issuer, "next_refresh", next)
		return "not_modified"
	}
	r.logSet(old, res.set, next)
	return "ok"
}

// logSet logs a newly fetched set: info when its keys changed, debug when
// not, and each skipped key at debug.
func (r *Remote) logSet(old, s *Set, next time.Time) {
	for _, sk := range s.skipped {
		r.log.Debug("jwks: skipped key", "issuer", r.issuer, "kid", sk.ID, "reason", sk.Reason)
	}
	level := slog.LevelInfo
	if old != nil && old.equalKeys(s) {
		level = slog.LevelDebug
	}
	kids := make([]string, 0, s.Len())
	for _, k := range s.keys {
		kids = append(kids, k.ID)
	}
	r.log.Log(r.ctx, level, "jwks: key set loaded", "issuer", r.issuer, "keys", s.Len(),
		"kids", kids, "skipped", len(s.skipped), "next_refresh", next)
	if s.Len() == 0 {
		r.log.Warn("jwks: key set has no usable keys", "issuer", r.issuer, "skipped", len(s.skipped))
	}
}
