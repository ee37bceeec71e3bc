package proxy

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// accessWriter records what the access log needs about one request while
// passing everything through; Unwrap lets http.ResponseController reach
// the connection for flushing, hijacking and deadlines.
type accessWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	route    string
	outcome  string
	reason   string // why a request was refused
	subject  string
	original string // forward-auth: the method and path asked about
	grpc     bool   // a gRPC call: portcullis' own answers are gRPC statuses
}

var accessWriters = sync.Pool{New: func() any { return new(accessWriter) }}

func (a *accessWriter) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *accessWriter) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	n, err := a.ResponseWriter.Write(p)
	a.bytes += int64(n)
	return n, err
}

func (a *accessWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// Hijack records an upgrade: ReverseProxy takes the connection over and
// writes the upstream's 101 on it itself, past WriteHeader, so without
// this the access log would call the request abandoned (499).
func (a *accessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(a.ResponseWriter).Hijack()
	if err == nil && a.status == 0 {
		a.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Flush supports ReverseProxy's streaming when called directly.
func (a *accessWriter) Flush() {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush() // net/http's own writers, HTTP/1.1 and HTTP/2
		return
	}
	_ = http.NewResponseController(a.ResponseWriter).Flush()
}

// note records the route, outcome and subject of the request on w, if w is
// the access log's writer.
func note(w http.ResponseWriter, route, outcome, subject string) {
	if a, ok := w.(*accessWriter); ok {
		a.route, a.outcome = route, outcome
		if subject != "" {
			a.subject = subject
		}
	}
}

// noteReason records why the request was refused.
func noteReason(w http.ResponseWriter, reason string) {
	if a, ok := w.(*accessWriter); ok {
		a.reason = reason
	}
}

// noteOriginal records, on a forward-auth answer, the original request it
// judged.
func noteOriginal(w http.ResponseWriter, original string) {
	if a, ok := w.(*accessWriter); ok {
		a.original = original
	}
}

// requestID returns the request's X-Request-Id when it is a sane value,
// or a new random one.
func requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && len(v) <= 128 && saneID(v) {
		return v
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func saneID(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// serve runs one request on the current configuration, then counts it
// once, with its final status, in portcullis_requests_total and
// portcullis_request_duration_seconds, and writes its access-log line. The
// handlers only note the route, outcome and subject on the writer; this is
// the one place that counts.
func (gw *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var id string
	if gw.accessLog {
		id = requestID(r)
		r.Header.Set("X-Request-Id", id)
		w.Header().Set("X-Request-Id", id)
	}
	aw := accessWriters.Get().(*accessWriter)
	*aw = accessWriter{ResponseWriter: w, grpc: isGRPC(r)}
	g := gw.enter()
	defer g.leave() // also when a handler panics, which net/http recovers
	var span trace.Span
	if gw.tracing != nil {
		r, span = gw.tracing.startServer(g, r)
	}
	if st, out := g.handle(aw, r); st != nil {
		st.forward(aw, out)
	}
	if aw.status == 0 {
		aw.status = 499 // the client went away before an answer
	}
	traceID := ""
	if span != nil {
		gw.tracing.endServer(span, r, aw)
		if sc := span.SpanContext(); sc.IsValid() {
			traceID = sc.TraceID().String()
		}
	}
	elapsed := time.Since(start)
	gw.metrics.observe(aw.route, aw.outcome, aw.status, elapsed)
	grpcStatus := ""
	if aw.grpc {
		if grpcStatus = grpcStatusOf(w.Header()); grpcStatus == "" {
			grpcStatus = "none" // no status reached the client
		}
		gw.metrics.grpcResponses.WithLabelValues(aw.route, grpcStatus).Inc()
	}
	if gw.accessLog {
		gw.logRequest(r, aw, id, elapsed, grpcStatus, traceID)
	}
	*aw = accessWriter{}
	accessWriters.Put(aw)
}

// logRequest writes one access-log line: method, path (never the query,
// which may carry a token), route, status, outcome (with the reason of a
// refusal), subject, latency, bytes, remote address and request id; for a
// forward-auth answer also the original request it judged, for a gRPC
// call its grpc_status, for a traced request its trace_id. Tokens and
// cookies are never logged.
func (gw *Gateway) logRequest(r *http.Request, aw *accessWriter, id string, elapsed time.Duration, grpcStatus, traceID string) {
	outcome := aw.outcome
	if aw.reason != "" {
		outcome += ":" + aw.reason
	}
	attrs := [...]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", aw.route),
		slog.Int("status", aw.status),
		slog.String("outcome", outcome),
		slog.String("sub", aw.subject),
		slog.Duration("latency", elapsed),
		slog.Int64("bytes", aw.bytes),
		slog.String("remote", r.RemoteAddr),
		slog.String("request_id", id),
		slog.String("original", aw.original),
	}
	n := len(attrs)
	if aw.original == "" {
		n-- // only forward-auth answers judge another request
	}
	if grpcStatus != "" || traceID != "" {
		out := attrs[:n:n]
		if grpcStatus != "" {
			out = append(out, slog.String("grpc_status", grpcStatus))
		}
		if traceID != "" {
			out = append(out, slog.String("trace_id", traceID))
		}
		gw.log.LogAttrs(r.Context(), slog.LevelInfo, "request", out...)
		return
	}
	gw.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:n]...)
}
