// Package otlptest is a real OTLP trace receiver for tests, over HTTP or
// gRPC: it decodes the protobuf export requests the exporter sends
// (go.opentelemetry.io/proto/otlp) and keeps their spans.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span with its resource's attributes.
type Span struct {
	*tracepb.Span
	Resource []*commonpb.KeyValue
}

// TraceID and SpanID are the span's ids in hex; Parent its parent's, ""
// for a root.
func (s Span) TraceID() string { return hex.EncodeToString(s.Span.TraceId) }
func (s Span) SpanID() string  { return hex.EncodeToString(s.Span.SpanId) }
func (s Span) Parent() string  { return hex.EncodeToString(s.Span.ParentSpanId) }

// Attr returns the string form of attribute key, "" if absent.
func (s Span) Attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return Value(kv.Value)
		}
	}
	return ""
}

// Value is an attribute value as text.
func Value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	}
	return v.String()
}

// Receiver is an OTLP/HTTP endpoint; URL is its base URL.
type Receiver struct {
	URL string

	mu       sync.Mutex
	spans    []Span
	requests int
	hold     chan struct{} // while open, exports wait
}

// Hold makes exports wait until release is called, as a slow collector
// would.
func (r *Receiver) Hold() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.hold = ch
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Start serves a receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// StartGRPC serves a receiver of OTLP over gRPC until the test ends; URL
// is then http://host:port.
func StartGRPC(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String()}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, grpcReceiver{r: r})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r
}

type grpcReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcReceiver) Export(_ context.Context, ex *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	g.r.keep(ex)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// keep records the spans of one export request.
func (r *Receiver) keep(ex *collectortrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	for _, rs := range ex.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, Span{Span: s, Resource: rs.GetResource().GetAttributes()})
			}
		}
	}
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces with application/x-protobuf", http.StatusBadRequest)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ex collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &ex); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.keep(&ex)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Reset forgets the spans received.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = nil
}

// Named returns the spans named name.
func (r *Receiver) Named(name string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Texts returns every text a span carries, for checks that something never
// appears: attribute keys and values of the span, its events and links, its
// resource, its name and status message.
func (s Span) Texts() []string {
	out := []string{s.Name, s.Status.GetMessage()}
	add := func(kvs []*commonpb.KeyValue) {
		for _, kv := range kvs {
			out = append(out, kv.Key, Value(kv.Value))
		}
	}
	add(s.Attributes)
	add(s.Resource)
	for _, e := range s.Events {
		out = append(out, e.Name)
		add(e.Attributes)
	}
	for _, l := range s.Links {
		add(l.Attributes)
	}
	return out
}
