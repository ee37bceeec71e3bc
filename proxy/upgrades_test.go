package proxy_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// echoUpgrade is an upstream that switches every request to a raw echo
// protocol and echoes until the connection closes.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	rw.Flush()
	io.Copy(c, rw)
}

// TestShutdownClosesUpgradedConnections: an upgraded connection, which
// http.Server.Shutdown neither waits for nor closes, gets the shutdown
// grace and is then closed, and Serve returns only after its handler has
// (its access-log line is written before Serve returns).
func TestShutdownClosesUpgradedConnections(t *testing.T) {
	up := testgw.Serve(t, http.HandlerFunc(echoUpgrade))
	logs := &testgw.LogBuffer{}
	gw := testgw.Start(t, testgw.Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Config: func(string) string {
			return `
server: {listen: "127.0.0.1:0", shutdown_grace: 200ms}
admin: {listen: off}
routes:
  - name: ws
    path_prefix: /
    upstream: "` + up + `"
    auth: public
`
		},
	})
	c, _, br := upgradeEcho(t, gw.Addr)

	gw.Cancel()
	waited := make(chan error, 1)
	go func() { waited <- gw.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return with an upgraded connection open")
	}
	if !strings.Contains(logs.String(), "path=/socket") || !strings.Contains(logs.String(), "status=101") {
		t.Errorf("the upgraded request's handler had not finished when Serve returned:\n%s", logs.String())
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("upgraded connection still open after shutdown")
	}
}

// TestUpgradeDuringShutdownDelay: while the listener still serves after
// SIGTERM, ordinary answers say Connection: close, but an upgrade's 101
// keeps its Connection: Upgrade and the protocol switch works.
func TestUpgradeDuringShutdownDelay(t *testing.T) {
	up := testgw.Serve(t, http.HandlerFunc(echoUpgrade))
	plain := testgw.Upstream(t)
	gw := testgw.Start(t, testgw.Options{Logger: slog.New(slog.DiscardHandler), Config: func(string) string {
		return `
server: {listen: "127.0.0.1:0", shutdown_delay: 1s, shutdown_grace: 200ms}
admin: {listen: off}
routes:
  - {name: ws, path_prefix: /socket, upstream: "` + up + `", auth: public}
  - {name: page, path_prefix: /, upstream: "` + plain + `", auth: public}
`
	}})
	gw.Cancel()
	// Wait (bounded) until answers say the gateway is draining.
	draining := false
	for start := time.Now(); !draining && time.Since(start) < 900*time.Millisecond; {
		res, err := http.Get(gw.URL + "/page")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		draining = res.Close
	}
	if !draining {
		t.Fatal("no answer said Connection: close after the gateway was told to stop")
	}
	_, res, _ := upgradeEcho(t, gw.Addr)
	if got := res.Header.Values("Connection"); len(got) != 1 || !strings.EqualFold(got[0], "Upgrade") {
		t.Errorf("101 during the delay says Connection: %q, want Upgrade only", got)
	}
}

// upgradeEcho upgrades a new connection to the gateway at addr to the echo
// protocol at /socket, checks one echo, and returns the connection (closed
// when the test ends), the 101 and a reader on the connection.
func upgradeEcho(t *testing.T, addr string) (net.Conn, *http.Response, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /socket HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	return c, res, br
}
