package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// upstreamBody is what the upstream answers: small, like a JSON API reply.
var upstreamBody = []byte(`{"ok":true,"service":"bench-upstream"}` + "\n")

// runRole runs the harness as one of its helper servers until SIGTERM or
// SIGINT. Each role is its own process so it can be pinned to a CPU.
func runRole(role, addr, upstream, jwksFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var h http.Handler
	var protocols *http.Protocols
	switch role {
	case "grpc-upstream":
		h, protocols = http.HandlerFunc(grpcUpstream), h2cProtocols()
	case "grpc-baseline":
		p, err := grpcBaselineProxy(upstream)
		if err != nil {
			return err
		}
		h, protocols = p, h2cProtocols()
	case "upstream":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(upstreamBody)
		})
	case "baseline":
		p, err := baselineProxy(upstream)
		if err != nil {
			return err
		}
		h = p
	case "jwks":
		mux, err := jwksMux(addr, jwksFile)
		if err != nil {
			return err
		}
		h = mux
	default:
		return fmt.Errorf("bench: unknown role %q", role)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", role, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, Protocols: protocols}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("bench: %s: %w", role, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("bench: %s: shutdown: %w", role, err)
	}
	return nil
}

// baselineProxy is the reference point: a plain httputil.ReverseProxy, as a
// careful engineer would write it, with a transport tuned for the load (the
// default keeps only 2 idle connections per host, which alone halves the
// throughput at 32 connections).
func baselineProxy(upstream string) (*httputil.ReverseProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("bench: baseline: bad -upstream %q", upstream)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}, nil
}

// jwksMux serves the key set in file at /jwks and a discovery document at
// /.well-known/openid-configuration for the issuer http://addr.
func jwksMux(addr, file string) (*http.ServeMux, error) {
	set, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bench: jwks: %w", err)
	}
	iss := "http://" + addr
	disc, err := json.Marshal(map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + "/jwks",
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
	})
	if err != nil {
		return nil, err
	}
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=300")
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /jwks", serve(set))
	mux.Handle("GET /.well-known/openid-configuration", serve(disc))
	return mux, nil
}
