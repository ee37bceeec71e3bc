package faults_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func init() {
	// The toxics log through zerolog's global logger.
	zerolog.SetGlobalLevel(zerolog.Disabled)
}

// link is a Toxiproxy proxy, run in this process, between portcullis and
// one dependency: Addr is where portcullis connects instead.
type link struct {
	Addr string
	p    *toxiproxy.Proxy
}

// newLink starts a proxy from a free loopback port to upstream
// (host:port) until the test ends.
func newLink(t *testing.T, name, upstream string) *link {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &link{Addr: p.Listen, p: p}
}

// toxic adds a toxic of type typ on stream (upstream: towards the
// dependency, downstream: back to portcullis) with attrs, and returns a
// function that removes it.
func (l *link) toxic(t *testing.T, typ, stream string, attrs map[string]any) (remove func()) {
	t.Helper()
	name := typ + "_" + stream
	b, _ := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if _, err := l.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
		t.Fatalf("toxic %s: %v", name, err)
	}
	removed := false
	remove = func() {
		if !removed {
			removed = true
			if err := l.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
				t.Errorf("remove toxic %s: %v", name, err)
			}
		}
	}
	t.Cleanup(remove)
	return remove
}
