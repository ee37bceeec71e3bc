package proxy

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceTrust says whose inbound trace context (traceparent, tracestate,
// baggage) a request's span continues.
type TraceTrust int

// Whose trace context is continued.
const (
	// TraceTrustProxies continues the trace context of requests from
	// server.trusted_proxies only; anyone else's starts a new trace, with
	// a link to the context it sent.
	TraceTrustProxies TraceTrust = iota
	// TraceTrustAll continues everyone's.
	TraceTrustAll
	// TraceTrustNone continues no one's.
	TraceTrustNone
)

// Tracing is how the gateway traces requests; the zero value (no Tracer)
// traces nothing and costs nothing.
type Tracing struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
	Trust      TraceTrust
}

// on reports whether requests are traced.
func (t *Tracing) on() bool { return t != nil && t.Tracer != nil }

// startServer starts r's server span: a child of the inbound trace context
// when its sender is trusted, else the root of a new trace linked to it.
//
// Attributes are set only on a span that records: a request the sampler
// leaves out costs its span's bookkeeping and the upstream's traceparent,
// nothing more (and its children are not started at all).
func (t *Tracing) startServer(g *generation, r *http.Request) (*http.Request, trace.Span) {
	ctx := r.Context()
	opts := serverSpan
	if _, sent := r.Header["Traceparent"]; sent {
		opts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
		trusted := t.Trust == TraceTrustAll || (t.Trust == TraceTrustProxies && g.isTrusted(r.RemoteAddr))
		carrier := propagation.HeaderCarrier(r.Header)
		if trusted {
			ctx = t.Propagator.Extract(ctx, carrier)
		} else if sc := trace.SpanContextFromContext(t.Propagator.Extract(context.Background(), carrier)); sc.IsValid() {
			// Not continued (the sender could pick the sampling), only
			// linked.
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc,
				Attributes: []attribute.KeyValue{attribute.Bool("portcullis.trace.untrusted", true)}}))
		}
	}
	ctx, span := t.Tracer.Start(ctx, r.Method, opts...)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("url.scheme", scheme(r)),
			attribute.String("server.address", r.Host),
			attribute.String("network.protocol.version", protoVersion(r)),
			attribute.String("client.address", host(r.RemoteAddr)),
		)
	}
	return r.WithContext(ctx), span
}

// serverSpan are the start options of a server span without links.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// endServer names the server span after the route, records how the
// request ended and ends it.
func (t *Tracing) endServer(span trace.Span, r *http.Request, aw *accessWriter) {
	if !span.IsRecording() {
		span.End()
		return
	}
	name := r.Method
	if aw.route != "" {
		name += " " + aw.route
	}
	span.SetName(name)
	attrs := [...]attribute.KeyValue{
		attribute.Int("http.response.status_code", aw.status),
		attribute.String("portcullis.route", aw.route),
		attribute.String("portcullis.outcome", aw.outcome),
		attribute.String("portcullis.auth.reason", aw.reason),
	}
	n := len(attrs)
	if aw.reason == "" {
		n--
	}
	span.SetAttributes(attrs[:n]...)
	if aw.status >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(aw.status))
	}
	span.End()
}

// startUpstream starts the client span of the round trip to the upstream
// and puts its trace context on out, in place of whatever the client sent.
// A request that is not sampled gets no span: the upstream receives the
// server span's context, flagged as not sampled, and nil is returned.
func (t *Tracing) startUpstream(out *http.Request) trace.Span {
	// The inbound trace context goes on only as the propagator puts it
	// back: continued from a trusted sender, dropped from anyone else
	// (baggage included, which downstream services would take for the
	// trace's own).
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	out.Header.Del("Baggage")
	if !trace.SpanFromContext(out.Context()).IsRecording() {
		t.Propagator.Inject(out.Context(), propagation.HeaderCarrier(out.Header))
		return nil
	}
	ctx, span := t.Tracer.Start(out.Context(), out.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("http.request.method", out.Method),
		attribute.String("server.address", out.URL.Hostname()),
		attribute.String("url.scheme", out.URL.Scheme),
		attribute.String("url.path", out.URL.Path),
	))
	if p := out.URL.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			span.SetAttributes(attribute.Int("server.port", n))
		}
	}
	t.Propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return span
}

// endUpstream ends the upstream span with the response's status, or the
// error that came instead.
func endUpstream(span trace.Span, status int, err error) {
	if err != nil {
		// The kind only: an error's text can hold the upstream URL, query
		// included.
		span.SetStatus(codes.Error, upstreamFailure(err))
	} else {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(status))
		}
	}
	span.End()
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	return "1.1"
}

func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
