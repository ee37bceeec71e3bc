package telemetry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/otlptest"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    telemetry.Config
		want bool
	}{
		{"nothing", telemetry.Config{}, false},
		{"enabled", telemetry.Config{Enabled: true}, true},
		{"endpoint variable", telemetry.Config{Getenv: env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})}, true},
		{"traces endpoint variable", telemetry.Config{Getenv: env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})}, true},
		{"SDK disabled beats enabled", telemetry.Config{Enabled: true, Getenv: env(map[string]string{"OTEL_SDK_DISABLED": "true"})}, false},
		{"SDK disabled beats the endpoint", telemetry.Config{Getenv: env(map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})}, false},
		{"SDK disabled false", telemetry.Config{Enabled: true, Getenv: env(map[string]string{"OTEL_SDK_DISABLED": "false"})}, true},
	} {
		if got := telemetry.On(tc.c); got != tc.want {
			t.Errorf("%s: On = %v, want %v", tc.name, got, tc.want)
		}
	}
	if tr, err := telemetry.New(context.Background(), telemetry.Config{}); tr != nil || err != nil {
		t.Fatalf("off: New = %v, %v; want nil, nil", tr, err)
	}
}

func TestSampler(t *testing.T) {
	for _, name := range telemetry.SamplerNames {
		if _, err := telemetry.Sampler(name, "0.5"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range [][2]string{{"sometimes", ""}, {"traceidratio", "2"}, {"traceidratio", "x"}} {
		if _, err := telemetry.Sampler(bad[0], bad[1]); err == nil {
			t.Errorf("%q %q accepted", bad[0], bad[1])
		}
	}
}

// TestDropsCounted: with the collector stalled, spans past the queue are
// dropped and counted, and every span is either exported or counted once.
func TestDropsCounted(t *testing.T) {
	rcv := otlptest.Start(t)
	var mu sync.Mutex
	dropped := map[string]int{}
	tr, err := telemetry.New(context.Background(), telemetry.Config{Enabled: true, Endpoint: rcv.URL, Sampler: "always_on",
		Dropped: func(reason string, n int) { mu.Lock(); dropped[reason] += n; mu.Unlock() }})
	if err != nil || tr == nil {
		t.Fatal(tr, err)
	}
	release := rcv.Hold()
	const total = 4000
	for range total {
		_, span := tr.Tracer().Start(context.Background(), "s")
		span.End()
	}
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	got := len(rcv.Spans())
	if dropped["queue_full"] == 0 || got+dropped["queue_full"]+dropped["export"] != total {
		t.Fatalf("exported %d, dropped %v: want some dropped and every one of %d accounted for", got, dropped, total)
	}
}
