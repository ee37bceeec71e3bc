package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// gRPC status codes portcullis answers with itself
// (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
const (
	grpcInvalidArgument   = 3
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// isGRPC reports whether r is a gRPC call: content-type application/grpc,
// alone or with a codec ("+proto") or parameters. gRPC-Web
// (application/grpc-web) is not: its status travels in the body.
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if len(ct) < len("application/grpc") || !strings.EqualFold(ct[:len("application/grpc")], "application/grpc") {
		return false
	}
	rest := ct[len("application/grpc"):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// grpcCode is the gRPC status of one of portcullis' own HTTP answers.
func grpcCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return grpcInvalidArgument
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return grpcUnimplemented
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return grpcResourceExhausted
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	case http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	}
	return grpcInternal
}

// writeGRPCStatus answers a gRPC call with a trailers-only response: HTTP
// 200 whose headers end the stream with grpc-status and grpc-message, as a
// gRPC server reports a call that failed before any message.
func writeGRPCStatus(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcMessage(msg))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// grpcMessage percent-encodes msg as grpc-message wants: every byte
// outside printable ASCII, and "%".
func grpcMessage(msg string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// grpcTimeout parses a grpc-timeout header: at most 8 digits and a unit,
// H, M, S, m (milli), u (micro) or n (nano). ok is false when v is absent
// or malformed; a gRPC server ignores a malformed one, and so does
// portcullis.
func grpcTimeout(v string) (d time.Duration, ok bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v)-1; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false // no sign, no space: digits only
		}
		n = n*10 + int64(c-'0')
	}
	unit, ok := grpcTimeoutUnits[v[len(v)-1]]
	if !ok {
		return 0, false
	}
	if n > int64(1<<63-1)/int64(unit) {
		return 1<<63 - 1, true
	}
	return time.Duration(n) * unit, true
}

// formatGRPCTimeout writes d as a grpc-timeout value, in the finest unit
// that fits its 8 digits (rounded down: the upstream's deadline never
// outlasts the client's).
func formatGRPCTimeout(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	for _, u := range [...]struct {
		unit time.Duration
		c    byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}} {
		if n := d / u.unit; n <= 99_999_999 {
			return strconv.FormatInt(int64(n), 10) + string(u.c)
		}
	}
	return strconv.FormatInt(min(int64(d/time.Hour), 99_999_999), 10) + "H"
}

// grpcTimeoutUnits are grpc-timeout's units.
var grpcTimeoutUnits = map[byte]time.Duration{
	'H': time.Hour, 'M': time.Minute, 'S': time.Second,
	'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond,
}

// grpcStatusOf is the grpc-status a gRPC answer carried, in its headers
// (trailers-only) or its trailers; "" when it carried none (the client
// went away, or the stream broke).
func grpcStatusOf(h http.Header) string {
	if v := h.Get("Grpc-Status"); v != "" {
		return v
	}
	if v := h[http.TrailerPrefix+"Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// grpcCall reports whether w answers a gRPC call (see Gateway.serve).
func grpcCall(w http.ResponseWriter) bool {
	a, ok := w.(*accessWriter)
	return ok && a.grpc
}

// notGRPC makes w answer in HTTP, for portcullis' own endpoints.
func notGRPC(w http.ResponseWriter) {
	if a, ok := w.(*accessWriter); ok {
		a.grpc = false
	}
}
