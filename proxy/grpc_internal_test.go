package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGRPCTimeoutHeader(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1S": time.Second, "100m": 100 * time.Millisecond, "5u": 5 * time.Microsecond, "7n": 7,
		"2M": 2 * time.Minute, "1H": time.Hour, "99999999H": 1<<63 - 1, "0m": 0,
	} {
		if got, ok := grpcTimeout(in); !ok || got != want {
			t.Errorf("grpc-timeout %q: %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "S", "1", "1s", "-1S", "123456789S", "1.5S", " 1S", "1x", "+0S"} {
		if d, ok := grpcTimeout(in); ok {
			t.Errorf("grpc-timeout %q: accepted as %v", in, d)
		}
	}
}

func TestFormatGRPCTimeout(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0n", -time.Second: "0n", 99_999_999: "99999999n", 100 * time.Millisecond: "100000u",
		30 * time.Second: "30000000u", 200 * time.Second: "200000m", 48 * time.Hour: "172800S",
		1<<63 - 1: "2562047H",
	} {
		got := formatGRPCTimeout(d)
		if got != want {
			t.Errorf("formatGRPCTimeout(%v) = %q, want %q", d, got, want)
		}
		if back, ok := grpcTimeout(got); !ok || back > max(d, 0) {
			t.Errorf("%q reads back as %v %v: more than %v", got, back, ok, d)
		}
	}
}

func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "application/grpc;charset=utf-8": true,
		"Application/GRPC": true, "application/grpc-web": false, "application/grpc-web+proto": false,
		"application/json": false, "": false, "application/grp": false,
	} {
		r := &http.Request{Header: http.Header{"Content-Type": {ct}}}
		if got := isGRPC(r); got != want {
			t.Errorf("content-type %q: gRPC %v, want %v", ct, got, want)
		}
	}
}

func TestGRPCMessageEncoding(t *testing.T) {
	for in, want := range map[string]string{
		"invalid_token: token expired": "invalid_token: token expired",
		"100%":                         "100%25",
		"ü\n":                          "%C3%BC%0A",
	} {
		if got := grpcMessage(in); got != want {
			t.Errorf("grpcMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzGRPCTimeout: any grpc-timeout header parses without panicking to a
// non-negative duration, and an accepted value is one a gRPC client could
// have written (1 to 8 digits and a unit).
func FuzzGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1S", "100m", "99999999H", "0n", "", "1", "-1S", "1.5S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := grpcTimeout(v)
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative %v", v, d)
		}
		digits := v[:len(v)-1]
		if len(digits) < 1 || len(digits) > 8 || strings.Trim(digits, "0123456789") != "" {
			t.Fatalf("%q accepted: not 1 to 8 digits and a unit", v)
		}
	})
}
