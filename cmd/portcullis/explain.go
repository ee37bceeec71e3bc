package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/serve"
)

const explainUsage = "usage: portcullis explain --config FILE (--route NAME | --url URL) [--at TIME] [--method METHOD] [--path PATH] [--dpop PROOF] [TOKEN | -]"

// errRefused makes explain exit 1: the gateway would not let the request
// through.
var errRefused = errors.New("explain: the gateway would refuse the request")

// explain prints every check the gateway runs on a token for one route, and
// its verdict. The token comes from the argument, or from standard input
// when the argument is "-" or absent; it is never printed.
func explain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	route := fs.String("route", "", "name of the route to judge the token for")
	target := fs.String("url", "", "judge the token for the route the gateway would choose for this URL")
	at := fs.String("at", "", "judge the token as at this time (RFC 3339) instead of now")
	method := fs.String("method", "GET", "the request's method, for the route's methods and rules")
	proof := fs.String("dpop", "", "the DPoP proof sent with a DPoP-bound token (RFC 9449); needs --url")
	reqPath := fs.String("path", "", "the request's path, for the route's rules (default: the path of --url, or the route's path_prefix)")
	// Flags may come before or after the token.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *cfgPath == "" || (*route == "") == (*target == "") || len(positional) > 1 {
		fmt.Fprintln(stderr, explainUsage)
		return errUsage
	}
	tok := ""
	if len(positional) == 1 && positional[0] != "-" {
		tok = positional[0]
	} else {
		var err error
		if tok, err = readToken(stdin, stderr); err != nil {
			return err
		}
	}
	tok = trimToken(tok)
	if tok == "" {
		fmt.Fprintln(stderr, "portcullis explain: no token (pass it as an argument or on standard input)")
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if err != nil {
		return err
	}
	chosen := ""
	req := serve.Request{Method: *method, URL: *target, DPoP: *proof}
	if *proof != "" && *target == "" {
		fmt.Fprintln(stderr, "portcullis explain: --dpop needs --url, the request's URL the proof is for")
		return errUsage
	}
	if *target != "" {
		if u, err := url.Parse(*target); err == nil {
			req.Path, req.Host = u.EscapedPath(), u.Hostname()
		}
		name, why, err := serve.RouteForURL(cfg, *target)
		if errors.Is(err, serve.ErrNotURL) {
			fmt.Fprintln(stderr, "portcullis explain: --url", err)
			return errUsage
		}
		if err != nil {
			fmt.Fprintln(stderr, "portcullis explain:", err)
			return errRefused
		}
		*route, chosen = name, why
	}
	if !slices.ContainsFunc(cfg.Routes, func(r config.Route) bool { return r.Name == *route }) {
		names := make([]string, 0, len(cfg.Routes))
		for _, r := range cfg.Routes {
			names = append(names, r.Name)
		}
		fmt.Fprintf(stderr, "portcullis explain: %s has no route named %q; its routes are: %s\n", *cfgPath, *route, strings.Join(names, ", "))
		return errUsage
	}
	// Cancelling stops any key set fetch still under way.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pc := serve.Options{Config: cfg}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			fmt.Fprintf(stderr, "portcullis explain: --at %q is not an RFC 3339 time such as 2026-11-24T12:00:00Z\n", *at)
			return errUsage
		}
		pc.Now = func() time.Time { return t }
	}
	if *reqPath != "" {
		req.Path = *reqPath
	}
	if req.Path != "" {
		p, err := url.PathUnescape(req.Path)
		if err != nil || !strings.HasPrefix(p, "/") {
			fmt.Fprintf(stderr, "portcullis explain: --path %q is not a path such as /users/alice\n", req.Path)
			return errUsage
		}
		req.Path = path.Clean(p)
	}
	ex, err := serve.Explain(ctx, pc, *route, tok, req)
	if err != nil {
		return err
	}
	ex.Chosen = chosen
	printExplanation(stdout, ex)
	if !ex.Allowed() {
		return errRefused
	}
	return nil
}

// readToken reads the token from standard input: its first line, at most
// 1 MiB.
func readToken(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(stderr, "reading the token from standard input (end with Enter)…")
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1<<20)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("explain: read token: %w", err)
	}
	return line, nil
}

// trimToken drops surrounding space and a pasted "Bearer " or "DPoP "
// prefix.
func trimToken(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
		s = strings.TrimSpace(s[7:])
	} else if len(s) > 5 && strings.EqualFold(s[:5], "dpop ") {
		s = strings.TrimSpace(s[5:])
	}
	return s
}

// printExplanation writes the route, one line per check and the verdict.
func printExplanation(w io.Writer, ex *serve.Explanation) {
	where := "path_prefix " + ex.PathPrefix
	if ex.Host != "" {
		where = "host " + ex.Host + ", " + where
	}
	fmt.Fprintf(w, "route     %s (%s, auth %s)\n", ex.Route, where, ex.Auth)
	if ex.Chosen != "" {
		fmt.Fprintf(w, "chosen    %s\n", ex.Chosen)
	}
	for _, n := range ex.Notes {
		fmt.Fprintf(w, "note      %s\n", n)
	}
	if ex.Public() {
		fmt.Fprintln(w, "note      the route is public: the checks below are for information only")
	}
	if ex.Explanation != nil {
		width := 14
		for _, c := range ex.Checks {
			width = max(width, len(c.Name)+2)
		}
		for _, c := range ex.Checks {
			detail := c.Detail
			if c.Unverified {
				detail += " (unverified)"
			}
			fmt.Fprintf(w, "%s  %-*s%s\n", c.Status, width, c.Name, detail)
		}
	}
	printRules(w, ex)
	fmt.Fprintf(w, "result: %s\n", ex.Result())
	if !ex.Allowed() || ex.Public() {
		return
	}
	if len(ex.Headers) == 0 {
		fmt.Fprintln(w, "identity headers: none")
	} else {
		names := make([]string, 0, len(ex.Headers))
		for name := range ex.Headers {
			names = append(names, name)
		}
		slices.Sort(names)
		for i, name := range names {
			names[i] = name + ": " + ex.Headers.Get(name)
		}
		fmt.Fprintf(w, "identity headers: %s\n", strings.Join(names, "; "))
	}
	fmt.Fprintf(w, "token to upstream: %s\n", ex.ForwardToken)
}

// printRules prints the route's methods check and each rule's result for
// the request, in the form of the checks.
func printRules(w io.Writer, ex *serve.Explanation) {
	if ex.MethodRefused {
		fmt.Fprintf(w, "FAIL  %-14s%s is not one of the route's methods\n", "method", ex.Method)
		return
	}
	if ex.Decision == nil {
		return
	}
	width := 14
	for _, r := range ex.Rules {
		width = max(width, len("rule ")+len(r.Name)+2)
	}
	for i, r := range ex.Rules {
		kind := "deny"
		if r.Allow {
			kind = "allow"
		}
		status, detail := "SKIP", kind+" rule does not match"
		switch {
		case i == ex.Decision.Rule && r.Allow:
			status, detail = "PASS", "allow rule matches: allowed"
		case i == ex.Decision.Rule && r.Err != nil:
			status, detail = "FAIL", "deny rule could not be evaluated, which denies: "+r.Err.Error()
		case i == ex.Decision.Rule:
			status, detail = "FAIL", "deny rule matches: denied"
		case ex.Decision.Rule >= 0 && i > ex.Decision.Rule:
			detail = "not reached"
		case r.Err != nil:
			detail = kind + " rule could not be evaluated, which does not match: " + r.Err.Error()
		}
		fmt.Fprintf(w, "%s  %-*s%s (%s %s)\n", status, width, "rule "+r.Name, detail, ex.Method, ex.Path)
	}
	if ex.Decision.Rule < 0 {
		fmt.Fprintf(w, "FAIL  %-*sno rule matches: denied\n", width, "rules")
	}
}
