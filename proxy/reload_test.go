package proxy_test

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
)

// TestReloadUnderLoad changes the configuration three times (once to an
// invalid file) while requests keep flowing: none fails, each valid change
// applies to the next request, the invalid one is refused and logged.
func TestReloadUnderLoad(t *testing.T) {
	e := newEnv(t, "")
	e.warm()
	read := e.mint("ES256", e.claims("alice"), nil) // scopes: read write
	only := e.claims("bob")
	only["scope"] = "read"
	readOnly := e.mint("ES256", only, nil)

	// The load: keep requesting a page every configuration allows.
	var stop atomic.Bool
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{}
			for !stop.Load() {
				req, _ := http.NewRequest("GET", e.url+"/orders", nil)
				req.Header.Set("Authorization", "Bearer "+read)
				res, err := client.Do(req)
				if err != nil || res.StatusCode != 200 {
					failed.Add(1)
					if err == nil {
						res.Body.Close()
					}
					continue
				}
				res.Body.Close()
				ok.Add(1)
			}
		})
	}

	hits := e.idp.JWKSHits()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	apply := func(extra, replaceFrom, replaceTo string) {
		t.Helper()
		yml := e.config(extra)
		yml = strings.Replace(yml, replaceFrom, replaceTo, 1)
		if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.gw.ReloadFile(path); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}

	// 1. /orders now needs the write scope too.
	apply(`
  - name: orders
    path_prefix: /orders
    upstream: "`+e.up+`"
    require_scopes: [read, write]
`, "", "")
	expectChallenge(t, e.do("GET", "/orders", readOnly, nil), 403, "insufficient_scope")
	e.echo(e.do("GET", "/orders", read, nil))

	// 2. An invalid file is refused; the running configuration stays.
	if err := os.WriteFile(path, []byte("routes:\n  - name: x\n    upstream: ftp://nope\n    colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := e.gw.ReloadFile(path)
	var errs config.Errors
	if !errorsAs(err, &errs) || len(errs) < 2 {
		t.Fatalf("invalid reload: %v", err)
	}
	expectChallenge(t, e.do("GET", "/orders", readOnly, nil), 403, "insufficient_scope")

	// 3. The /orders rule goes away again: read is enough.
	apply("", "", "")
	e.echo(e.do("GET", "/orders", readOnly, nil))

	stop.Store(true)
	wg.Wait()
	if e.idp.JWKSHits() != hits {
		t.Errorf("reloads refetched the unchanged issuer's keys (%d fetches)", e.idp.JWKSHits()-hits)
	}
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("during reloads: %d ok, %d failed", ok.Load(), failed.Load())
	}
	_, body := e.getAdmin("/metrics")
	for _, want := range []string{`portcullis_config_reloads_total{result="ok"} 2`, `portcullis_config_reloads_total{result="invalid"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	t.Logf("%d requests during three reloads, none failed", ok.Load())
}

// TestOneChangeCountsOneReload: the file watch and a SIGHUP both reload on
// one edit; the second finds nothing changed and neither reloads nor
// counts. A change in a file the configuration names (an upstream CA
// file) is a change.
func TestOneChangeCountsOneReload(t *testing.T) {
	e := newEnv(t, "")
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	caPEM := func(srv *httptest.Server) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	}
	a := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(a.Close)
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ca, caPEM(a))
	write(path, []byte(e.config(`
  - name: tls
    path_prefix: /tls
    upstream: "`+a.URL+`"
    upstream_ca_file: "`+ca+`"
    auth: public
`)))
	reloads := func(result string, want int) {
		t.Helper()
		_, body := e.getAdmin("/metrics")
		line := fmt.Sprintf(`portcullis_config_reloads_total{result=%q} %d`, result, want)
		if want == 0 && !strings.Contains(body, fmt.Sprintf(`result=%q`, result)) {
			return
		}
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	for range 2 { // the watch, then SIGHUP
		if err := e.gw.ReloadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	reloads("ok", 1)
	write(ca, append(caPEM(a), caPEM(a)...)) // the same file; the file it names changed
	if err := e.gw.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	reloads("ok", 2)
	write(path, []byte("routes: [\n"))
	for range 2 {
		if err := e.gw.ReloadFile(path); err == nil {
			t.Fatal("a broken file reloaded")
		}
	}
	reloads("invalid", 1)
	if !strings.Contains(e.logs.String(), "configuration unchanged since the last reload") {
		t.Error("an unchanged reload is not logged")
	}
}
