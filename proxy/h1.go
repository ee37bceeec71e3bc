package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// h1Transport carries the common request, one without a body to a plain
// http upstream, over HTTP/1.1 on the calling goroutine: it writes the
// request, reads the response and hands the connection back to its pool when
// the body has been read, with no goroutines or channels in between. That
// is most of what http.Transport costs on a busy gateway beyond the system
// calls themselves. Everything else (request bodies, upgrades, TLS,
// CONNECT, a request that asks to close) goes to next, an *http.Transport.
type h1Transport struct {
	next            *http.Transport
	host            string // the upstream's URL host, as in request URLs
	addr            string // host:port to dial
	dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	responseTimeout time.Duration // 0: none
	idleTimeout     time.Duration
	maxIdle         int
	now             func() time.Time

	mu      sync.Mutex
	idle    []*h1Conn   // most recently used last
	sweeper *time.Timer // closes connections idle too long; nil when none are
}

// h1Conn is one pooled upstream connection.
type h1Conn struct {
	t      *h1Transport
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	limit  int64 // bytes Read may still return; bounds response headers
	idleAt time.Time
	reused bool
}

// maxResponseHeaderBytes bounds an upstream's response headers, as
// http.Transport's MaxResponseHeaderBytes does.
const maxResponseHeaderBytes = 1 << 20

func newH1Transport(next *http.Transport, host string, responseTimeout time.Duration) *h1Transport {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "80")
	}
	return &h1Transport{
		next:            next,
		host:            host,
		addr:            addr,
		dial:            next.DialContext,
		responseTimeout: responseTimeout,
		idleTimeout:     next.IdleConnTimeout,
		maxIdle:         next.MaxIdleConnsPerHost,
		now:             time.Now,
	}
}

// fast reports whether req can take the direct path.
func (t *h1Transport) fast(req *http.Request) bool {
	return req.URL.Scheme == "http" && req.URL.Host == t.host &&
		(req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0 &&
		req.Method != http.MethodConnect && !req.Close &&
		len(req.TransferEncoding) == 0 && len(req.Trailer) == 0 &&
		req.Header["Upgrade"] == nil
}

// RoundTrip implements http.RoundTripper.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.fast(req) {
		return t.next.RoundTrip(req)
	}
	if err := validHeaders(req.Header); err != nil {
		return nil, err
	}
	replay := replayable(req)
	for attempt := 0; ; attempt++ {
		c, err := t.get(req.Context(), !replay)
		if err != nil {
			return nil, err
		}
		res, retry, err := c.roundTrip(req)
		if err == nil {
			return res, nil
		}
		c.close()
		// A pooled connection the upstream closed while it sat idle fails
		// before a byte of response; a replayable request gets one fresh
		// connection, as http.Transport does.
		if !retry || attempt > 0 || !replay || req.Context().Err() != nil {
			return nil, err
		}
	}
}

// replayable reports whether a request may be sent again after a pooled
// connection failed before answering: it has no body and is idempotent.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header["Idempotency-Key"] != nil || req.Header["X-Idempotency-Key"] != nil
}

// validHeaders refuses header names and values that would break the
// request's framing, as http.Transport does before writing.
func validHeaders(h http.Header) error {
	for k, vv := range h {
		if k == "" || !validHeaderName(k) {
			return errors.New("proxy: invalid header name " + safeQuote(k))
		}
		for _, v := range vv {
			if !validHeaderValue(v) {
				return errors.New("proxy: invalid value for header " + k)
			}
		}
	}
	return nil
}

func validHeaderName(k string) bool {
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func safeQuote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		} else {
			b = append(b, '?')
		}
	}
	return string(append(b, '"'))
}

// get returns a pooled connection or dials a new one. With probe, a pooled
// connection is first checked for having been closed by the upstream: a
// request that cannot be sent twice must not be lost on one.
func (t *h1Transport) get(ctx context.Context, probe bool) (*h1Conn, error) {
	now := t.now()
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if t.idleTimeout > 0 && now.Sub(c.idleAt) > t.idleTimeout || c.br.Buffered() > 0 {
			// Too old to trust, or the upstream said something unasked.
			t.mu.Unlock()
			c.conn.Close()
			t.mu.Lock()
			continue
		}
		t.mu.Unlock()
		if probe && !c.alive() {
			c.conn.Close()
			t.mu.Lock()
			continue
		}
		c.reused = true
		return c, nil
	}
	t.mu.Unlock()
	conn, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{t: t, conn: conn}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(conn, 4<<10)
	return c, nil
}

// put returns a connection whose exchange completed cleanly to the pool.
func (t *h1Transport) put(c *h1Conn) {
	c.idleAt = t.now()
	t.mu.Lock()
	if len(t.idle) >= max(t.maxIdle, 2) {
		t.mu.Unlock()
		c.conn.Close()
		return
	}
	t.idle = append(t.idle, c)
	if t.idleTimeout > 0 && t.sweeper == nil {
		t.sweeper = time.AfterFunc(t.idleTimeout, t.sweep)
	}
	t.mu.Unlock()
}

// sweep closes connections idle for longer than the idle timeout, oldest
// first, and runs again while any remain.
func (t *h1Transport) sweep() {
	now := t.now()
	t.mu.Lock()
	n := 0
	for n < len(t.idle) && now.Sub(t.idle[n].idleAt) > t.idleTimeout {
		n++
	}
	old := append([]*h1Conn(nil), t.idle[:n]...)
	t.idle = append(t.idle[:0], t.idle[n:]...)
	if len(t.idle) > 0 {
		t.sweeper.Reset(t.idleTimeout)
	} else {
		t.sweeper = nil
	}
	t.mu.Unlock()
	for _, c := range old {
		c.conn.Close()
	}
}

// CloseIdleConnections closes the pooled connections of both paths.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
	t.next.CloseIdleConnections()
}

// Read reads from the connection within the remaining limit.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		return 0, errors.New("proxy: upstream response headers too large")
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.conn.Read(p)
	c.limit -= int64(n)
	return n, err
}

func (c *h1Conn) close() { c.conn.Close() }

// alive reports whether an idle connection is still open and silent.
func (c *h1Conn) alive() bool { return connAlive(c.conn) }

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads
// and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip sends req and reads the response head. retry reports that the
// connection failed before any byte of a response arrived.
func (c *h1Conn) roundTrip(req *http.Request) (res *http.Response, retry bool, err error) {
	ctx := req.Context()
	// A client that goes away aborts the exchange; the connection is then
	// closed, never pooled.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(err)
	}
	if err := c.bw.Flush(); err != nil {
		r, _, err := fail(err)
		return r, c.reused && ctx.Err() == nil, err
	}
	if c.t.responseTimeout > 0 {
		_ = c.conn.SetReadDeadline(c.t.now().Add(c.t.responseTimeout))
	}
	c.limit = maxResponseHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		r, _, err := fail(err)
		return r, c.reused && ctx.Err() == nil && !isTimeout(err), err
	}
	trace := httptrace.ContextClientTrace(ctx)
	for n1xx := 0; ; n1xx++ {
		res, err = http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		code := res.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			break
		}
		if n1xx >= 5 {
			return fail(errors.New("proxy: too many 1xx responses from upstream"))
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return fail(err)
			}
		}
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("proxy: upstream switched protocols for a request that asked for no upgrade"))
	}
	if c.t.responseTimeout > 0 {
		_ = c.conn.SetReadDeadline(time.Time{})
	}
	c.limit = 1<<63 - 1
	reusable := !res.Close && (res.ContentLength >= 0 || chunked(res.TransferEncoding))
	res.Body = &h1Body{rc: res.Body, c: c, stop: stop, reusable: reusable}
	return res, false, nil
}

func chunked(te []string) bool { return len(te) == 1 && te[0] == "chunked" }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// h1Body is a response body that pools its connection once read to the
// end and closed, and closes it otherwise.
type h1Body struct {
	rc       io.ReadCloser
	c        *h1Conn
	stop     func() bool
	reusable bool
	eof      bool
	done     bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		b.reusable = false
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// Closing the body of a response would otherwise read the rest of
		// it: drop the connection first, whatever is left unread.
		b.stop()
		b.c.close()
		_ = b.rc.Close()
		return nil
	}
	err := b.rc.Close()
	// stop reports false when the client went away and the deadline
	// trap already fired: that connection is spoiled.
	if b.stop() && b.reusable && err == nil {
		b.c.reused = false
		b.c.t.put(b.c)
		return nil
	}
	b.c.close()
	return err
}
