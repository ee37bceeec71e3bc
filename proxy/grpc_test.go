package proxy_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portcullis-dev/portcullis/internal/testgw"
	"github.com/portcullis-dev/portcullis/internal/testidp"
)

// echoServer is a gRPC service written out by hand (no generated code):
// test.Echo with a unary call reporting what the server saw, the three
// kinds of stream, and calls that never answer.
type echoServer struct {
	canceled chan error // Wait reports how its stream ended
}

// seen is what the unary call reports about the call it received.
type seen struct {
	Users    []string `json:"users"`    // x-auth-request-user metadata
	Authz    bool     `json:"authz"`    // whether authorization metadata arrived
	Deadline float64  `json:"deadline"` // seconds left, -1 without a deadline
}

func (s *echoServer) unary(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	out := seen{Users: md.Get("x-auth-request-user"), Authz: len(md.Get("authorization")) > 0, Deadline: -1}
	if d, ok := ctx.Deadline(); ok {
		out.Deadline = time.Until(d).Seconds()
	}
	b, _ := json.Marshal(out)
	return wrapperspb.String(string(b)), nil
}

// hang never answers: it returns when the call's context ends.
func (s *echoServer) hang(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	_ = dec(new(wrapperspb.StringValue))
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// count sends as many messages as asked for.
func (s *echoServer) count(_ any, st grpc.ServerStream) error {
	in := new(wrapperspb.Int32Value)
	if err := st.RecvMsg(in); err != nil {
		return err
	}
	for i := range in.Value {
		if err := st.SendMsg(wrapperspb.Int32(i)); err != nil {
			return err
		}
	}
	return nil
}

// sum receives messages until the client closes, and answers their count.
func (s *echoServer) sum(_ any, st grpc.ServerStream) error {
	n := int32(0)
	for {
		err := st.RecvMsg(new(wrapperspb.Int32Value))
		if errors.Is(err, io.EOF) {
			return st.SendMsg(wrapperspb.Int32(n))
		}
		if err != nil {
			return err
		}
		n++
	}
}

// chat echoes every message.
func (s *echoServer) chat(_ any, st grpc.ServerStream) error {
	for {
		in := new(wrapperspb.Int32Value)
		err := st.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := st.SendMsg(in); err != nil {
			return err
		}
	}
}

// wait sends one message, then holds the stream open until the client
// ends it, and reports how it ended.
func (s *echoServer) wait(_ any, st grpc.ServerStream) error {
	if err := st.SendMsg(wrapperspb.Int32(1)); err != nil {
		return err
	}
	<-st.Context().Done()
	s.canceled <- st.Context().Err()
	return st.Context().Err()
}

// slow sends one message, then a second after three times the route's
// response-header timeout: a healthy stream that outlives the timeout, and
// the listener's write timeout.
func (s *echoServer) slow(_ any, st grpc.ServerStream) error {
	if err := st.SendMsg(wrapperspb.Int32(1)); err != nil {
		return err
	}
	select {
	case <-time.After(3 * grpcRouteTimeout):
	case <-st.Context().Done():
		return st.Context().Err()
	}
	return st.SendMsg(wrapperspb.Int32(2))
}

// grpcRouteTimeout is the echo route's timeout for response headers;
// grpcWriteTimeout the listener's write timeout in testGRPC.
const (
	grpcRouteTimeout = 100 * time.Millisecond
	grpcWriteTimeout = 250 * time.Millisecond
)

func (s *echoServer) desc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Unary", Handler: s.unary},
			{MethodName: "AdminUnary", Handler: s.unary},
			{MethodName: "Hang", Handler: s.hang},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "Count", Handler: s.count, ServerStreams: true},
			{StreamName: "Sum", Handler: s.sum, ClientStreams: true},
			{StreamName: "Chat", Handler: s.chat, ServerStreams: true, ClientStreams: true},
			{StreamName: "Wait", Handler: s.wait, ServerStreams: true},
			{StreamName: "Slow", Handler: s.slow, ServerStreams: true},
		},
	}
}

// startGRPC serves the echo and health services on loopback, over
// cleartext HTTP/2, or over TLS with the given server options, and returns
// the server's address.
func startGRPC(t *testing.T, es *echoServer, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(es.desc(), es)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// grpcGateway is the configuration of a gateway in front of the echo
// server: %[1]s the issuer, %[2]s the echo server's address, %[3]s a dead
// address, %[4]s extra server settings.
const grpcGateway = `server: {listen: "127.0.0.1:0", public_url: "https://grpc.example", %[4]s}
admin: {listen: off}
issuers:
  - issuer: %[1]q
    audiences: [api]
    algorithms: [ES256]
routes:
  - name: health
    path_prefix: /grpc.health.v1.Health
    upstream: %[2]s
%[7]s    auth: public
  - name: admin
    path_prefix: /test.Echo/AdminUnary
    upstream: %[2]s
%[7]s    require_scopes: [admin]
  - name: echo
    path_prefix: /test.Echo
    upstream: %[2]s
%[7]s    timeout: ` + "100ms" + `
    forward_headers: {X-Auth-Request-User: sub}
  - name: rules
    path_prefix: /test.Rules
    upstream: %[2]s
%[7]s    rules:
      - {name: not-alice, deny: 'claims.sub == "alice"'}
      - allow: 'true'
  - name: down
    path_prefix: /test.Down
    upstream: h2c://%[3]s
  - name: web
    path_prefix: /web
    upstream: %[5]q
    auth: public
  - name: socket
    path_prefix: /socket
    upstream: %[6]q
    auth: public
`

// TestGRPCThroughTheGateway runs a real grpc-go client against a real
// grpc-go server through portcullis: over h2c on both sides, with a TLS
// listener (h2 by ALPN) in front of the same h2c upstream, and with an h2c
// listener in front of a TLS upstream (https://, h2 by ALPN).
func TestGRPCThroughTheGateway(t *testing.T) {
	for _, mode := range []string{"h2c", "tls", "tls-upstream"} {
		t.Run(mode, func(t *testing.T) { testGRPC(t, mode) })
	}
}

func testGRPC(t *testing.T, mode string) {
	es := &echoServer{canceled: make(chan error, 1)}
	idp, keys := testgw.NewIssuer(t)
	extra, creds, routeExtra := "h2c: true", insecure.NewCredentials(), ""
	ca, dir := newTestCA(t), t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, 2, cert, key)
	var upstream string
	switch mode {
	case "tls":
		extra = fmt.Sprintf("tls: {cert_file: %q, key_file: %q}", cert, key)
		creds = credentials.NewTLS(&tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"})
		upstream = "h2c://" + startGRPC(t, es)
	case "tls-upstream":
		tc, err := credentials.NewServerTLSFromFile(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		upstream = "https://" + startGRPC(t, es, grpc.Creds(tc))
		caFile := filepath.Join(dir, "ca.pem")
		ca.writeCert(t, caFile)
		routeExtra = fmt.Sprintf("    upstream_ca_file: %q\n", caFile)
	default:
		upstream = "h2c://" + startGRPC(t, es)
	}
	// A write timeout shorter than the slow stream: streams outlive it.
	extra += fmt.Sprintf(", write_timeout: %s", grpcWriteTimeout)
	logs := &testgw.LogBuffer{}
	g := testgw.Start(t, testgw.Options{Logger: testgw.Logger(t, -4, logs), Admin: true, Config: func(string) string {
		return fmt.Sprintf(grpcGateway, idp.Issuer, upstream, closedAddr(t), extra, testgw.Upstream(t),
			testgw.Serve(t, http.HandlerFunc(echoUpgrade)), routeExtra)
	}})
	conn, err := grpc.NewClient(g.Addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	claims := testgw.Claims(idp, "alice", time.Now())
	alice := testidp.Mint(t, keys["ES256"], claims, nil)
	withToken := func(ctx context.Context, tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	authed := withToken(ctx, alice)

	// Unary, with a spoofed identity and a deadline.
	out := new(wrapperspb.StringValue)
	spoofed := metadata.AppendToOutgoingContext(authed, "x-auth-request-user", "mallory")
	if err := conn.Invoke(spoofed, "/test.Echo/Unary", wrapperspb.String("hi"), out); err != nil {
		t.Fatalf("unary: %v", err)
	}
	var s seen
	if err := json.Unmarshal([]byte(out.Value), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 1 || s.Users[0] != "alice" {
		t.Errorf("the server saw x-auth-request-user %q, want only [alice]", s.Users)
	}
	if s.Authz {
		t.Error("the server saw the client's authorization metadata; the route does not forward the token")
	}
	if s.Deadline <= 0 || s.Deadline > 30 {
		t.Errorf("the server saw %.1fs left of the client's 30s deadline", s.Deadline)
	}

	// Refusals are gRPC statuses.
	wantCode := func(what string, err error, code codes.Code, msgPart string) {
		t.Helper()
		st, _ := status.FromError(err)
		if st.Code() != code || !strings.Contains(st.Message(), msgPart) {
			t.Errorf("%s: %v (%q), want %v with %q", what, st.Code(), st.Message(), code, msgPart)
		}
	}
	wantCode("no token", conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String("x"), out), codes.Unauthenticated, "token")
	wantCode("bad token", conn.Invoke(withToken(ctx, alice+"x"), "/test.Echo/Unary", wrapperspb.String("x"), out), codes.Unauthenticated, "invalid_token")
	wantCode("missing scope", conn.Invoke(authed, "/test.Echo/AdminUnary", wrapperspb.String("x"), out), codes.PermissionDenied, "insufficient_scope")
	wantCode("upstream down", conn.Invoke(authed, "/test.Down/Call", wrapperspb.String("x"), out), codes.Unavailable, "upstream unavailable")
	wantCode("route timeout", conn.Invoke(authed, "/test.Echo/Hang", wrapperspb.String("x"), out), codes.DeadlineExceeded, "route's timeout")

	// The health check needs no token.
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check on the public route: %v %v", hc, err)
	}

	// Server streaming, 1,000 messages.
	st, err := conn.NewStream(authed, &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Count")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(wrapperspb.Int32(1000)); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	n := 0
	for {
		m := new(wrapperspb.Int32Value)
		if err := st.RecvMsg(m); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("server stream after %d: %v", n, err)
			}
			break
		}
		if int(m.Value) != n {
			t.Fatalf("server stream: message %d is %d", n, m.Value)
		}
		n++
	}
	if n != 1000 {
		t.Errorf("server stream: %d messages, want 1000", n)
	}

	// Client streaming, 1,000 messages.
	st, err = conn.NewStream(authed, &grpc.StreamDesc{ClientStreams: true}, "/test.Echo/Sum")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := st.SendMsg(wrapperspb.Int32(int32(i))); err != nil {
			t.Fatalf("client stream, message %d: %v", i, err)
		}
	}
	_ = st.CloseSend()
	sum := new(wrapperspb.Int32Value)
	if err := st.RecvMsg(sum); err != nil || sum.Value != 1000 {
		t.Errorf("client stream: the server counted %d (%v), want 1000", sum.Value, err)
	}

	// Bidirectional, 1,000 each way at once: every message comes back
	// while the client is still sending, nothing is buffered whole.
	st, err = conn.NewStream(authed, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/test.Echo/Chat")
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		for i := range 1000 {
			if err := st.SendMsg(wrapperspb.Int32(int32(i))); err != nil {
				sent <- err
				return
			}
		}
		sent <- st.CloseSend()
	}()
	for i := range 1000 {
		m := new(wrapperspb.Int32Value)
		if err := st.RecvMsg(m); err != nil || int(m.Value) != i {
			t.Fatalf("bidi: message %d: %d %v", i, m.Value, err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := st.RecvMsg(new(wrapperspb.Int32Value)); !errors.Is(err, io.EOF) {
		t.Errorf("bidi: end of stream: %v", err)
	}
	_ = st.CloseSend()

	// A stream that outlives the route's timeout for response headers and
	// the listener's write timeout.
	st, err = conn.NewStream(authed, &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Slow")
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SendMsg(wrapperspb.Int32(0))
	_ = st.CloseSend()
	for want := int32(1); want <= 2; want++ {
		m := new(wrapperspb.Int32Value)
		if err := st.RecvMsg(m); err != nil || m.Value != want {
			t.Fatalf("slow stream: message %d: %d %v (a timeout cut a healthy stream?)", want, m.Value, err)
		}
	}

	// A client that cancels cancels the upstream's stream.
	wctx, wcancel := context.WithCancel(authed)
	st, err = conn.NewStream(wctx, &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Wait")
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SendMsg(wrapperspb.Int32(0))
	_ = st.CloseSend()
	if err := st.RecvMsg(new(wrapperspb.Int32Value)); err != nil {
		t.Fatal(err)
	}
	wcancel()
	select {
	case err := <-es.canceled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the server's stream ended with %v, want canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the client cancel")
	}

	// What portcullis counted and logged.
	res, err := http.Get(g.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, line := range []string{
		`portcullis_grpc_responses_total{grpc_status="0",route="echo"}`,
		`portcullis_grpc_responses_total{grpc_status="16",route="echo"}`,
		`portcullis_grpc_responses_total{grpc_status="7",route="admin"}`,
		`portcullis_grpc_responses_total{grpc_status="14",route="down"}`,
		`portcullis_grpc_responses_total{grpc_status="4",route="echo"}`,
		`portcullis_grpc_responses_total{grpc_status="0",route="health"}`,
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	if !strings.Contains(logs.String(), "grpc_status=16") || !strings.Contains(logs.String(), "grpc_status=0") {
		t.Errorf("access log lines lack grpc_status:\n%s", logs)
	}

	// HTTP/1.1 on the same listener is unchanged, upgrades included.
	if mode != "tls" {
		res, err := http.Get("http://" + g.Addr + "/web/page")
		if err != nil || res.StatusCode != 200 || res.ProtoMajor != 1 {
			t.Fatalf("HTTP/1.1 beside h2c: %v %v", res, err)
		}
		res.Body.Close()
		upgradeEcho(t, g.Addr)
	}
}

// h2cClient speaks cleartext HTTP/2 with prior knowledge, as a gRPC
// client does, for looking at portcullis' answers byte for byte.
func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// grpcFrame is one length-prefixed gRPC message.
func grpcFrame(msg []byte) []byte {
	return append([]byte{0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

// TestGRPCAnswersAreTrailersOnly looks at portcullis' own gRPC answers on
// the wire: HTTP 200, content-type application/grpc, grpc-status and a
// percent-encoded grpc-message in the headers, which end the stream; the
// RFC 6750 challenge with code 16. The call's grpc-timeout is enforced by
// portcullis itself against an upstream that never answers, with no
// deadline on the client's side.
func TestGRPCAnswersAreTrailersOnly(t *testing.T) {
	es := &echoServer{canceled: make(chan error, 1)}
	addr := startGRPC(t, es)
	idp, keys := testgw.NewIssuer(t)
	g := testgw.Start(t, testgw.Options{Config: func(string) string {
		return fmt.Sprintf(grpcGateway, idp.Issuer, "h2c://"+addr, closedAddr(t), "h2c: true", testgw.Upstream(t), testgw.Upstream(t), "")
	}})
	alice := testidp.Mint(t, keys["ES256"], testgw.Claims(idp, "alice", time.Now()), nil)
	c := h2cClient()
	call := func(path, tok, timeout string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+g.Addr+path, strings.NewReader(string(grpcFrame(nil))))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if timeout != "" {
			req.Header.Set("Grpc-Timeout", timeout)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if len(b) != 0 {
			t.Errorf("%s: a trailers-only answer has no body, got %q", path, b)
		}
		return res
	}
	res := call("/test.Echo/Unary", "", "")
	if res.StatusCode != 200 || res.ProtoMajor != 2 || res.Header.Get("Content-Type") != "application/grpc" ||
		res.Header.Get("Grpc-Status") != "16" || !strings.HasPrefix(res.Header.Get("Www-Authenticate"), "Bearer") {
		t.Errorf("no token: %s %s %v", res.Proto, res.Status, res.Header)
	}
	res = call("/test.Echo/AdminUnary", alice, "")
	if res.Header.Get("Grpc-Status") != "7" || !strings.Contains(res.Header.Get("Www-Authenticate"), "insufficient_scope") {
		t.Errorf("missing scope: %v", res.Header)
	}
	res = call("/test.Rules/Unary", alice, "")
	if res.Header.Get("Grpc-Status") != "7" || !strings.Contains(res.Header.Get("Grpc-Message"), "denied by rule not-alice") ||
		!strings.Contains(res.Header.Get("Www-Authenticate"), "insufficient_scope") {
		t.Errorf("denied by a rule: %v", res.Header)
	}
	res = call("/no.Such/Method", alice, "")
	if res.Header.Get("Grpc-Status") != "12" {
		t.Errorf("no route: %v", res.Header)
	}

	start := time.Now()
	res = call("/test.Echo/Hang", alice, "20m") // within the route's timeout of 100ms
	if got := res.Header.Get("Grpc-Status"); got != "4" || !strings.Contains(res.Header.Get("Grpc-Message"), "grpc-timeout") {
		t.Errorf("grpc-timeout 20m against an upstream that never answers: %v", res.Header)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("grpc-timeout 20m answered after %s", d)
	}

	// grpc-message is percent-encoded.
	res = call("/test.Echo/Unary", "not a token ü", "")
	if m := res.Header.Get("Grpc-Message"); strings.ContainsAny(m, "ü") || m == "" {
		t.Errorf("grpc-message %q is not percent-encoded", m)
	}

}
