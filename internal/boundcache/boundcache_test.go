package boundcache

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func key(i int) *[32]byte {
	k := sha256.Sum256([]byte(fmt.Sprint(i)))
	return &k
}

func TestGetPutDeadlineAndValidity(t *testing.T) {
	c := New[string](100, 1<<20)
	c.Put(key(1), "one", t0.Add(time.Minute), t0, 10)
	if v, ok := c.Get(key(1), t0, nil); !ok || v != "one" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	if _, ok := c.Get(key(2), t0, nil); ok {
		t.Fatal("hit for a key never put")
	}
	if _, ok := c.Get(key(1), t0.Add(time.Minute), nil); ok {
		t.Fatal("hit at the deadline")
	}
	if st := c.Stats(); st != (Stats{Lookups: 3, Hits: 1}) {
		t.Fatalf("after a hit, a miss and an expiry: %+v", st)
	}
	c.Put(key(3), "three", t0.Add(time.Minute), t0, 10)
	if _, ok := c.Get(key(3), t0, func(v string) bool { return v != "three" }); ok {
		t.Fatal("hit for a value valid refused")
	}
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("refused entry kept: %d entries, %d bytes", st.Entries, st.Bytes)
	}
	c.Put(key(4), "late", t0, t0, 10) // deadline not after now
	if n := c.Stats().Entries; n != 0 {
		t.Fatal("cached a value already past its deadline")
	}
}

func TestBounds(t *testing.T) {
	c := New[int](160, 1<<30)
	for i := range 5000 {
		c.Put(key(i), i, t0.Add(time.Hour), t0, 100)
	}
	if n := c.Stats().Entries; n > 160 || n < 100 {
		t.Fatalf("%d entries for a bound of 160", n)
	}
	c = New[int](1<<20, 16*10_000) // 10 000 bytes a shard
	for i := range 5000 {
		c.Put(key(i), i, t0.Add(time.Hour), t0, 1000)
	}
	if st := c.Stats(); st.Bytes > 16*10_000 || st.Entries > 16*10 {
		t.Fatalf("%d entries, %d bytes for a bound of %d bytes", st.Entries, st.Bytes, 16*10_000)
	}
	// A value larger than a shard may hold is not cached at all.
	c.Put(key(-1), -1, t0.Add(time.Hour), t0, 1<<20)
	if _, ok := c.Get(key(-1), t0, nil); ok {
		t.Fatal("oversized value cached")
	}
}

// TestSecondChance: when a full cache takes a capacity's worth of new
// entries, the entries in use survive and the others go.
func TestSecondChance(t *testing.T) {
	const capacity = 16 * 64
	c := New[int](capacity, 1<<30)
	for i := range capacity {
		c.Put(key(i), i, t0.Add(time.Hour), t0, 1)
	}
	touchHot := func() {
		for j := 0; j < capacity; j += 8 {
			c.Get(key(j), t0, nil)
		}
	}
	for i := range capacity {
		if i%16 == 0 {
			touchHot() // an eighth of the entries stays in use
		}
		c.Put(key(100_000+i), i, t0.Add(time.Hour), t0, 1)
	}
	hot, cold := 0, 0
	for i := range capacity {
		if _, ok := c.Get(key(i), t0, nil); ok {
			if i%8 == 0 {
				hot++
			} else {
				cold++
			}
		}
	}
	if hot < capacity/8*3/4 || cold > capacity*7/8/2 {
		t.Fatalf("survived: %d of %d entries in use, %d of %d others", hot, capacity/8, cold, capacity*7/8)
	}
}

func TestConcurrent(t *testing.T) {
	c := New[int](1000, 1<<20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := key(g*10_000 + i%300)
				if v, ok := c.Get(k, t0, nil); ok && v != g*10_000+i%300 {
					t.Errorf("wrong value %d", v)
					return
				}
				c.Put(k, g*10_000+i%300, t0.Add(time.Hour), t0, 50)
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.Entries > 1000 || st.Hits == 0 || st.Lookups < st.Hits {
		t.Fatalf("%+v", st)
	}
}
