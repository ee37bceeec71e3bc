package proxy

import (
	"testing"
	"time"
)

// BenchmarkObserve is what counting one finished request costs.
func BenchmarkObserve(b *testing.B) {
	m := newMetrics(func() []keySetInfo { return nil }, func() []cacheInfo { return nil })
	b.ReportAllocs()
	for b.Loop() {
		m.observe("app", outcomeAllowed, 200, time.Millisecond)
	}
}
