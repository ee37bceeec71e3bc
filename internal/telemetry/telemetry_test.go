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

// TestExportProtocols: spans reach a real receiver over OTLP/HTTP and over
// OTLP/gRPC, with the resource the configuration gives them.
func TestExportProtocols(t *testing.T) {
	for _, tc := range []struct {
		proto string
		start func(testing.TB) *otlptest.Receiver
	}{{telemetry.ProtocolHTTP, otlptest.Start}, {telemetry.ProtocolGRPC, otlptest.StartGRPC}} {
		t.Run(tc.proto, func(t *testing.T) {
			rcv := tc.start(t)
			tr, err := telemetry.New(context.Background(), telemetry.Config{Enabled: true, Endpoint: rcv.URL, Protocol: tc.proto,
				ServiceName: "gw-test", ResourceAttributes: map[string]string{"deployment.environment": "ci"}, Version: "v9",
				Getenv: env(map[string]string{"OTEL_SERVICE_NAME": "from-env"})})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tr.Tracer().Start(context.Background(), "one")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Named("one")
			if len(spans) != 1 {
				t.Fatalf("received %d spans named one", len(spans))
			}
			res := map[string]string{}
			for _, kv := range spans[0].Resource {
				res[kv.Key] = otlptest.Value(kv.Value)
			}
			if res["service.name"] != "gw-test" || res["service.version"] != "v9" || res["deployment.environment"] != "ci" {
				t.Fatalf("resource %v", res)
			}
		})
	}
}
