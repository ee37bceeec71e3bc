// Package gctune paces the garbage collector for a gateway, whose live heap
// is small (bounded caches, a few buffers per request) while it allocates
// quickly. With the default GOGC=100 such a heap is collected every few
// megabytes of allocation, dozens of times a second under load. gctune
// instead lets the heap grow to a floor before a collection, and falls back
// to the default pace once the live heap is half the floor or more, so a
// large live heap is never collected more eagerly than Go would by itself.
// While the pace is raised, a soft memory limit a little above the floor
// keeps the heap from overshooting it between collections and has the
// runtime return what it does not need; it is lifted with the pace, so a
// live heap that grows never meets a limit it cannot fit under.
//
// It does nothing when the operator set GOGC or GOMEMLIMIT: their choice
// wins.
package gctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Tuner adjusts GOGC after every collection.
type Tuner struct {
	floor uint64

	mu      sync.Mutex
	stopped bool
	percent int
	limit   int64
	sample  []metrics.Sample
	// adjusted, when set, receives every GOGC value applied (tests).
	adjusted chan int
}

// minPercent and maxPercent bound the GOGC values used: never below Go's
// default, never so high that a sudden growth of the live heap goes
// unnoticed for long.
const (
	minPercent = 100
	maxPercent = 1000
)

// headroom is how far above the floor the soft memory limit sits while the
// pace is raised: the runtime's own memory (stacks, metadata) counts too.
const headroom = 8 << 20

// noLimit is the runtime's "no memory limit".
const noLimit = math.MaxInt64

// Start tunes the collector so that, while the live heap is small, the heap
// may grow to about floor bytes between collections. It returns nil, and
// changes nothing, when GOGC or GOMEMLIMIT is set in the environment.
func Start(floor uint64) *Tuner {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	return start(floor, nil)
}

func start(floor uint64, adjusted chan int) *Tuner {
	t := &Tuner{
		floor:    floor,
		percent:  debug.SetGCPercent(-1),
		limit:    debug.SetMemoryLimit(-1),
		sample:   []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
		adjusted: adjusted,
	}
	debug.SetGCPercent(t.percent)
	t.adjust()
	t.arm()
	return t
}

// Stop restores Go's default pace and stops tuning.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(minPercent)
	debug.SetMemoryLimit(noLimit)
}

// arm registers a cleanup on a fresh object: it runs after the next
// collection finds the object unreachable, that is once per cycle. The
// cleanup arms the next object before it adjusts, so that a collection
// that begins as soon as the adjustment is seen (runtime.GC right after it,
// say) already has an object to find unreachable; armed after, the object
// could be allocated during that collection, survive it, and leave the
// cycle without an adjustment.
func (t *Tuner) arm() {
	runtime.AddCleanup(new([16]byte), func(t *Tuner) {
		t.mu.Lock()
		stopped := t.stopped
		t.mu.Unlock()
		if !stopped {
			t.arm()
			t.adjust()
		}
	}, t)
}

// Percent returns the GOGC value that puts the next collection at floor
// for a live heap of live bytes.
func Percent(live, floor uint64) int {
	if live == 0 {
		return maxPercent
	}
	if live >= floor/2 {
		return minPercent
	}
	p := int((floor - live) * 100 / live)
	return max(minPercent, min(maxPercent, p))
}

// Limit returns the soft memory limit that goes with a GOGC value: a little
// above the floor while the pace is raised, none at Go's default pace.
func Limit(percent int, floor uint64) int64 {
	if percent <= minPercent {
		return noLimit
	}
	return int64(floor) + headroom
}

func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.floor)
	limit := Limit(p, t.floor)
	t.mu.Lock()
	if !t.stopped && p != t.percent {
		// Small moves are not worth a change of pace.
		if d := p - t.percent; d > t.percent/10 || -d > t.percent/10 || p == minPercent {
			t.percent = p
			debug.SetGCPercent(p)
		}
	}
	if !t.stopped && limit != t.limit {
		t.limit = limit
		debug.SetMemoryLimit(limit)
	}
	applied := t.percent
	t.mu.Unlock()
	if t.adjusted != nil {
		select {
		case t.adjusted <- applied:
		default:
		}
	}
}
