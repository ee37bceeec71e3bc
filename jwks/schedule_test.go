package jwks

import (
	"net/http"
	"testing"
	"time"
)

func TestRefreshAt(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const minAge, maxAge = time.Minute, time.Hour
	tests := []struct {
		name string
		cc   []string // Cache-Control field values
		age  string
		want time.Duration
	}{
		{"no header", nil, "", maxAge},
		{"max-age within bounds", []string{"max-age=300"}, "", 5 * time.Minute},
		{"max-age below MinAge", []string{"max-age=5"}, "", minAge},
		{"max-age zero", []string{"max-age=0"}, "", minAge},
		{"max-age above MaxAge", []string{"max-age=86400"}, "", maxAge},
		{"max-age overflowing int64", []string{"max-age=99999999999999999999999"}, "", maxAge},
		{"with other directives", []string{"public, max-age=600, must-revalidate"}, "", 10 * time.Minute},
		{"directive name case", []string{"Max-Age=120"}, "", 2 * time.Minute},
		{"quoted argument", []string{`max-age="180"`}, "", 3 * time.Minute},
		{"spaces", []string{" public ,  max-age=240 "}, "", 4 * time.Minute},
		{"second field value", []string{"public", "max-age=420"}, "", 7 * time.Minute},
		{"invalid max-age", []string{"max-age=soon"}, "", maxAge},
		{"negative max-age", []string{"max-age=-5"}, "", maxAge},
		{"max-age without value", []string{"max-age"}, "", maxAge},
		{"fraction", []string{"max-age=1.5"}, "", maxAge},
		{"no-cache", []string{"no-cache"}, "", minAge},
		{"no-store wins over max-age", []string{"max-age=600, no-store"}, "", minAge},
		{"no-cache with field names", []string{`no-cache="Set-Cookie", max-age=600`}, "", minAge},
		{"age subtracted", []string{"max-age=900"}, "300", 10 * time.Minute},
		{"age beyond max-age", []string{"max-age=900"}, "1000", minAge},
		{"invalid age ignored", []string{"max-age=900"}, "old", 15 * time.Minute},
		{"age without max-age", nil, "100", maxAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.cc {
				h.Add("Cache-Control", v)
			}
			if tt.age != "" {
				h.Set("Age", tt.age)
			}
			if got := refreshAt(now, h, minAge, maxAge); !got.Equal(now.Add(tt.want)) {
				t.Errorf("refreshAt = now+%v, want now+%v", got.Sub(now), tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		failures int
		base     time.Duration // before jitter: the result is in [base/2, base]
	}{
		{-1, time.Second},
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{7, time.Minute},
		{8, time.Minute},
		{64, time.Minute},
		{1 << 30, time.Minute},
	}
	for _, tt := range tests {
		lo, hi := backoff(tt.failures, 0), backoff(tt.failures, 0.9999999)
		if lo != tt.base/2 {
			t.Errorf("backoff(%d, 0) = %v, want %v", tt.failures, lo, tt.base/2)
		}
		if hi < lo || hi > tt.base {
			t.Errorf("backoff(%d, ~1) = %v, want in [%v, %v]", tt.failures, hi, lo, tt.base)
		}
		for _, j := range []float64{-3, 0.25, 0.5, 7} {
			if d := backoff(tt.failures, j); d < tt.base/2 || d > tt.base {
				t.Errorf("backoff(%d, %v) = %v, out of [%v, %v]", tt.failures, j, d, tt.base/2, tt.base)
			}
		}
	}
	t.Run("non-decreasing", func(t *testing.T) {
		prev := time.Duration(0)
		for n := 1; n < 100; n++ {
			d := backoff(n, 0.5)
			if d < prev {
				t.Fatalf("backoff(%d) = %v < backoff(%d) = %v", n, d, n-1, prev)
			}
			prev = d
		}
	})
}

func TestRunDelay(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		next time.Time
		want time.Duration
	}{
		{"nothing scheduled", time.Time{}, 0},
		{"due in the future", now.Add(90 * time.Second), 90 * time.Second},
		{"due now", now, 0},
		{"overdue", now.Add(-time.Hour), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runDelay(now, tt.next); got != tt.want {
				t.Errorf("runDelay = %v, want %v", got, tt.want)
			}
		})
	}
}
