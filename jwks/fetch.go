package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxBody bounds every response body read, discovery document or key set.
const maxBody = 1 << 20

// discoveryPath is appended to the issuer URL (OpenID Connect Discovery §4).
const discoveryPath = "/.well-known/openid-configuration"

// fetchResult is the outcome of one fetch: a new set, or a nil set for a
// 304 Not Modified, with the response header for the set's freshness; or
// an error.
type fetchResult struct {
	set    *Set
	header http.Header
	err    error
}

// fetch discovers the key set URL if needed, then fetches the key set.
// Only the goroutine running the current fetch calls it.
func (r *Remote) fetch() fetchResult {
	uri, err := r.keySetURL()
	if err != nil {
		return fetchResult{err: err}
	}
	return r.fetchSet(uri)
}

// keySetURL returns the configured key set URL, or the discovered one,
// running discovery until it succeeds once.
func (r *Remote) keySetURL() (string, error) {
	switch {
	case r.jwksURI != "":
		return r.jwksURI, nil
	case r.discovered != "":
		return r.discovered, nil
	case r.issuer == "":
		return "", errors.New("jwks: neither issuer nor jwks uri configured")
	}
	u := strings.TrimSuffix(r.issuer, "/") + discoveryPath
	_, body, err := r.get("discovery", u, nil, false)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("jwks: discovery %s: decode: %w", u, err)
	}
	if doc.Issuer != r.issuer {
		return "", fmt.Errorf("jwks: discovery %s: issuer %q does not match %q", u, clip(doc.Issuer), r.issuer)
	}
	if err := checkKeySetURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("jwks: discovery %s: %w", u, err)
	}
	r.discovered = doc.JWKSURI
	return r.discovered, nil
}

// checkKeySetURL accepts only an absolute http or https URL with a host.
func checkKeySetURL(s string) error {
	if s == "" {
		return errors.New("no jwks_uri")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("jwks_uri: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("jwks_uri %q is not an absolute http(s) url", clip(s))
	}
	return nil
}

// fetchSet fetches and parses the key set at uri. Once a set is loaded,
// requests carry "Cache-Control: no-cache", so that caches on the way
// revalidate and a rotated key is seen at once, and the set's ETag in
// If-None-Match; a 304 answer keeps the set.
func (r *Remote) fetchSet(uri string) fetchResult {
	h := http.Header{}
	loaded := r.set.Load() != nil
	if loaded {
		h.Set("Cache-Control", "no-cache")
		if r.etag != "" {
			h.Set("If-None-Match", r.etag)
		}
	}
	resp, body, err := r.get("key set", uri, h, loaded && r.etag != "")
	if err != nil {
		return fetchResult{err: err}
	}
	if resp.StatusCode == http.StatusNotModified {
		return fetchResult{header: resp.Header}
	}
	set, err := parseSet(body)
	if err != nil {
		return fetchResult{err: fmt.Errorf("jwks: parse key set from %s: %w", uri, err)}
	}
	r.etag = resp.Header.Get("ETag")
	return fetchResult{set: set, header: resp.Header}
}

// get sends a GET for u on the Remote's context and returns the response
// with its body read, at most [maxBody] bytes. A status other than 2xx (or
// 304 when allowNotModified) is an error; what names the request in errors.
func (r *Remote) get(what, u string, h http.Header, allowNotModified bool) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: %s request: %w", what, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: %s: %w", what, err)
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && allowNotModified:
		return resp, nil, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		// Drain a little so the connection can be reused; never echo it.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, nil, fmt.Errorf("jwks: %s %s: unexpected status %d %s",
			what, u, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: %s %s: read body: %w", what, u, err)
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("jwks: %s %s: response larger than %d bytes", what, u, maxBody)
	}
	return resp, body, nil
}

// clip shortens a value from a remote document for an error message.
func clip(s string) string {
	const n = 128
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
