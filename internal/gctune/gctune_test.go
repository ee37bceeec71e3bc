package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, maxPercent},
		{1 * mib, maxPercent},   // 31 MiB of room would be 3100%: capped
		{4 * mib, 700},          // collect at 32 MiB
		{8 * mib, 300},          // idem
		{15 * mib, 113},         // idem
		{16 * mib, minPercent},  // half the floor: Go's default pace
		{200 * mib, minPercent}, // a large heap: never more eager than Go
	} {
		if got := Percent(tc.live, 32*mib); got != tc.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestTunesAfterEveryCollection keeps a live heap of known size and checks
// the pace follows it, collection after collection.
func TestTunesAfterEveryCollection(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	adjusted := make(chan int, 1)
	floor := uint64(256 << 20)
	tu := start(floor, adjusted)
	defer func() {
		tu.Stop()
		if debug.SetMemoryLimit(-1) != noLimit {
			t.Error("Stop left a memory limit")
		}
	}()
	<-adjusted // the first, synchronous adjustment

	var keep [][]byte
	for _, liveMiB := range []int{0, 64, 160} {
		for len(keep) < liveMiB {
			keep = append(keep, make([]byte, 1<<20))
		}
		var got int
		for range 3 { // the cleanup of one cycle may see the previous heap
			runtime.GC()
			select {
			case got = <-adjusted:
			case <-time.After(30 * time.Second):
				// Without the tuner, only the runtime's forced
				// collection, every 2 minutes, would end the wait.
				t.Fatalf("live %d MiB: a collection went by without an adjustment", liveMiB)
			}
		}
		want := Percent(uint64(liveMiB)<<20, floor)
		if liveMiB >= 128 && got != minPercent || liveMiB < 128 && (got < want*8/10 || got > want*12/10+1) {
			t.Fatalf("live %d MiB: GOGC %d, want about %d", liveMiB, got, want)
		}
		if cur := debug.SetGCPercent(got); cur != got {
			t.Fatalf("live %d MiB: runtime GOGC %d, tuner says %d", liveMiB, cur, got)
		}
		wantLimit := int64(noLimit)
		if got > minPercent {
			wantLimit = int64(floor) + headroom
		}
		if cur := debug.SetMemoryLimit(-1); cur != wantLimit {
			t.Fatalf("live %d MiB (GOGC %d): memory limit %d, want %d", liveMiB, got, cur, wantLimit)
		}
	}
	runtime.KeepAlive(keep)
}

func TestStartLeavesOperatorsChoice(t *testing.T) {
	t.Setenv("GOGC", "50")
	if Start(32<<20) != nil {
		t.Fatal("tuned although GOGC is set")
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "100MiB")
	if Start(32<<20) != nil {
		t.Fatal("tuned although GOMEMLIMIT is set")
	}
}
