package jwks

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff bounds for failed fetches, see [backoff].
const (
	backoffBase = time.Second
	backoffMax  = time.Minute
)

// refreshAt returns when a key set fetched at now with response header h
// should be fetched again: now plus its remaining freshness lifetime
// (RFC 9111 §4.2.1 max-age minus §5.1 Age), clamped to [minAge, maxAge].
// "no-cache" or "no-store" mean minAge; a missing or invalid max-age means
// maxAge. It is a pure function so the refresh schedule is testable without
// a clock.
func refreshAt(now time.Time, h http.Header, minAge, maxAge time.Duration) time.Time {
	return now.Add(freshness(h, minAge, maxAge))
}

// freshness computes the clamped lifetime described at [refreshAt].
func freshness(h http.Header, minAge, maxAge time.Duration) time.Duration {
	age, ok, noCache := maxAgeDirective(h.Values("Cache-Control"), maxAge)
	switch {
	case noCache:
		return minAge
	case !ok:
		return maxAge
	}
	if a, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && a > 0 {
		if a >= int64(age/time.Second) {
			age = 0
		} else {
			age -= time.Duration(a) * time.Second
		}
	}
	return min(max(age, minAge), maxAge)
}

// maxAgeDirective scans Cache-Control field values (RFC 9111 §5.2) for
// max-age, no-cache and no-store. Directive names are case-insensitive and
// max-age may be quoted. A max-age beyond limit is returned as limit, which
// also keeps the arithmetic from overflowing.
func maxAgeDirective(values []string, limit time.Duration) (age time.Duration, ok, noCache bool) {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache", "no-store":
				noCache = true
			case "max-age":
				arg = strings.Trim(strings.TrimSpace(arg), `"`)
				if !isDigits(arg) {
					continue
				}
				n, err := strconv.ParseInt(arg, 10, 64)
				if err != nil || n > int64(limit/time.Second) {
					age, ok = limit, true // only digits, so err means too large
					continue
				}
				age, ok = time.Duration(n)*time.Second, true
			}
		}
	}
	return age, ok, noCache
}

// isDigits reports whether s is a non-empty run of ASCII digits, the
// delta-seconds syntax of RFC 9111 §1.2.2.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// backoff returns the wait before retrying after the given number of
// consecutive failed fetches (at least 1): 1s doubling per failure, capped at
// one minute, with "equal jitter" so that replicas started together do not
// retry in lockstep. jitter is in [0, 1); the result is in [d/2, d] for the
// capped exponential d.
func backoff(failures int, jitter float64) time.Duration {
	failures = max(failures, 1)
	d := backoffMax
	if failures <= 7 { // 1s<<6 = 64s already exceeds the cap
		d = min(backoffBase<<(failures-1), backoffMax)
	}
	jitter = min(max(jitter, 0), 1)
	return d/2 + time.Duration(jitter*float64(d/2))
}

// runDelay returns how long [Remote.Run] waits, at now, before the fetch due
// at next; zero means fetch now. A zero next (nothing scheduled yet) is due
// immediately.
func runDelay(now, next time.Time) time.Duration {
	if next.IsZero() {
		return 0
	}
	return max(next.Sub(now), 0)
}
