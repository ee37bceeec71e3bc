package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Setenv("PORTCULLIS_CLIENT_SECRET", "a-client-secret-for-tests")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"example is valid", []string{"check", "--config", "../../config.example.yaml"}, 0, []string{"ok"}, nil},
		{"broken config: every error with file:line", []string{"check", "--config", "testdata/broken.yaml"}, 1, nil, []string{
			"testdata/broken.yaml:2: server.listen:",
			"testdata/broken.yaml:5: issuers[0].algorithms",
			"testdata/broken.yaml:8: routes[0].upstream:",
			"testdata/broken.yaml:9:",
			"colour",
		}},
		{"missing file", []string{"check", "--config", "testdata/nope.yaml"}, 1, nil, []string{"nope.yaml"}},
		{"no flag", []string{"check"}, 2, nil, []string{"usage"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{"unknown command"}},
		{"version", []string{"version"}, 0, []string{"portcullis"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), c.args, &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			if strings.Contains(errb.String(), "goroutine") || strings.Contains(errb.String(), "panic") {
				t.Errorf("stack trace in output:\n%s", errb.String())
			}
		})
	}
}
