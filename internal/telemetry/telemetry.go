// Package telemetry sets up OpenTelemetry tracing: a tracer provider that
// exports over OTLP (HTTP/protobuf, or gRPC), configured by the
// configuration's telemetry.tracing section and by the standard OTEL_*
// environment variables, and the W3C Trace Context and Baggage
// propagator. With tracing off, New returns nil and nothing is set up: the
// packages that trace take a nil tracer as "do nothing".
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of portcullis' spans.
const Scope = "github.com/portcullis-dev/portcullis"

// Protocols of the OTLP exporter.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Config is what the configuration file says; every field left empty
// falls back to its OTEL_* environment variable, then to the SDK's
// default.
type Config struct {
	// Enabled turns tracing on. It is on as well when
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
	// set, and off, whatever else says, when OTEL_SDK_DISABLED is true.
	Enabled bool
	// Endpoint is the OTLP base URL (OTEL_EXPORTER_OTLP_ENDPOINT): for
	// http/protobuf, /v1/traces is added when it has no path.
	Endpoint string
	// Protocol is http/protobuf or grpc (OTEL_EXPORTER_OTLP_PROTOCOL).
	Protocol string
	// Headers are sent with every export (OTEL_EXPORTER_OTLP_HEADERS).
	Headers map[string]string
	// Sampler and SamplerArg are OTEL_TRACES_SAMPLER's names and argument.
	Sampler    string
	SamplerArg string
	// ServiceName is service.name (OTEL_SERVICE_NAME); default portcullis.
	ServiceName string
	// ResourceAttributes are added to the resource
	// (OTEL_RESOURCE_ATTRIBUTES).
	ResourceAttributes map[string]string
	// Version is service.version.
	Version string
	// Getenv reads the environment; nil means none is set.
	Getenv func(string) string
	// Dropped is told how many spans were not exported and why: "export"
	// (the exporter failed) or "queue_full".
	Dropped func(reason string, n int)
}

// Tracing is a running tracer provider.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// Tracer is portcullis' tracer.
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Propagator is the W3C Trace Context and Baggage propagator.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// ForceFlush exports every span ended so far.
func (t *Tracing) ForceFlush(ctx context.Context) error { return t.provider.ForceFlush(ctx) }

// Shutdown exports what is left and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// On reports whether c and the environment turn tracing on.
func On(c Config) bool {
	env := getenv(c)
	if strings.EqualFold(strings.TrimSpace(env("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	return c.Enabled || env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

func getenv(c Config) func(string) string {
	if c.Getenv != nil {
		return c.Getenv
	}
	return func(string) string { return "" }
}

// queueSize bounds the spans ended and not yet exported; past it spans are
// dropped, and counted, rather than queued or waited for.
const queueSize = 2048

// New starts a tracer provider for c, or returns nil when tracing is off.
// The exporter connects lazily: an unreachable collector never fails New.
func New(ctx context.Context, c Config) (*Tracing, error) {
	if !On(c) {
		return nil, nil
	}
	env := getenv(c)
	exp, err := exporter(ctx, c, env)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, c)
	if err != nil {
		return nil, err
	}
	gate := &gate{dropped: c.Dropped}
	counted := &countingExporter{SpanExporter: exp, gate: gate}
	batch := sdktrace.NewBatchSpanProcessor(counted,
		// Room for every span the gate lets through: the SDK itself never
		// drops one uncounted.
		sdktrace.WithMaxQueueSize(queueSize+512), sdktrace.WithMaxExportBatchSize(512))
	gate.next = batch
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(gate), sdktrace.WithResource(res)}
	if c.Sampler != "" {
		s, err := Sampler(c.Sampler, c.SamplerArg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithSampler(s))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{provider: tp, tracer: tp.Tracer(Scope, trace.WithInstrumentationVersion(c.Version)),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}, nil
}

// exporter is the OTLP exporter c and the environment ask for. The
// exporters read the OTEL_EXPORTER_OTLP_* variables themselves; the
// configuration's values, when set, win.
func exporter(ctx context.Context, c Config, env func(string) string) (sdktrace.SpanExporter, error) {
	proto := c.Protocol
	if proto == "" {
		proto = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if proto == "" {
		proto = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "", ProtocolHTTP:
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			u, err := url.Parse(c.Endpoint)
			if err != nil {
				return nil, fmt.Errorf("telemetry: endpoint: %w", err)
			}
			if u.Path == "" || u.Path == "/" {
				u.Path = "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		return otlptracehttp.New(ctx, opts...)
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("telemetry: protocol %q is not supported; want %s or %s", proto, ProtocolHTTP, ProtocolGRPC)
}

// newResource is the resource of portcullis' spans: service.name
// portcullis (or OTEL_SERVICE_NAME, or the configuration's), its version,
// OTEL_RESOURCE_ATTRIBUTES and the configuration's attributes, later ones
// winning.
func newResource(ctx context.Context, c Config) (*resource.Resource, error) {
	base := []attribute.KeyValue{attribute.String("service.name", "portcullis")}
	if c.Version != "" {
		base = append(base, attribute.String("service.version", c.Version))
	}
	var own []attribute.KeyValue
	for k, v := range c.ResourceAttributes {
		own = append(own, attribute.String(k, v))
	}
	if c.ServiceName != "" {
		own = append(own, attribute.String("service.name", c.ServiceName))
	}
	r, err := resource.New(ctx, resource.WithAttributes(base...), resource.WithTelemetrySDK(), resource.WithFromEnv(),
		resource.WithAttributes(own...))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return r, nil
}

// Sampler returns the sampler OTEL_TRACES_SAMPLER names: always_on,
// always_off, traceidratio, parentbased_always_on, parentbased_always_off
// or parentbased_traceidratio, arg being the ratio (default 1).
func Sampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("telemetry: sampler argument %q is not a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("telemetry: sampler %q is not one of %s", name, strings.Join(SamplerNames, ", "))
}

// SamplerNames are the samplers [Sampler] knows.
var SamplerNames = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// gate is the span processor in front of the batch processor: it counts
// the spans ended and not yet exported, and drops (and counts) those past
// queueSize, so that no span is lost uncounted.
type gate struct {
	next    sdktrace.SpanProcessor
	pending atomic.Int64
	dropped func(reason string, n int)
}

func (g *gate) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) { g.next.OnStart(parent, s) }

func (g *gate) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if g.pending.Add(1) > queueSize {
		g.pending.Add(-1)
		g.drop("queue_full", 1)
		return
	}
	g.next.OnEnd(s)
}

func (g *gate) Shutdown(ctx context.Context) error   { return g.next.Shutdown(ctx) }
func (g *gate) ForceFlush(ctx context.Context) error { return g.next.ForceFlush(ctx) }

func (g *gate) drop(reason string, n int) {
	if g.dropped != nil && n > 0 {
		g.dropped(reason, n)
	}
}

// countingExporter tells the gate which spans have left the queue, and
// counts those whose export failed.
type countingExporter struct {
	sdktrace.SpanExporter
	gate *gate
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.gate.pending.Add(-int64(len(spans)))
	if err != nil {
		e.gate.drop("export", len(spans))
	}
	return err
}

// ExportTimeout bounds one export; the exporters' own default is 10s.
const ExportTimeout = 10 * time.Second
