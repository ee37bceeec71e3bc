package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/proxy"
)

// revoke ends a user's sessions through the running gateway's admin
// listener: POST /admin/sessions/revoke with admin.token, both from the
// configuration.
func revoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file of the running gateway (YAML)")
	sub := fs.String("sub", "", "the user whose sessions end")
	sid := fs.String("sid", "", "only this session of the user (the sid of its tokens)")
	admin := fs.String("admin", "", "the admin listener's base URL; default http:// + admin.listen")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *path == "" || *sub == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: portcullis revoke --config FILE --sub SUBJECT [--sid SID] [--admin URL]")
		return errUsage
	}
	cfg, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	if cfg.Admin.Token == "" {
		return fmt.Errorf("%s: admin.token is not set, so the gateway serves no %s; set it (from the environment) and restart or reload the gateway", *path, proxy.RevokePath)
	}
	base := *admin
	if base == "" {
		if cfg.Admin.Listen == "off" {
			return fmt.Errorf("%s: admin.listen is off; give the admin listener an address, or pass --admin URL", *path)
		}
		base = "http://" + cfg.Admin.Listen
	}
	form := url.Values{"sub": {*sub}}
	if *sid != "" {
		form.Set("sid", *sid)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+proxy.RevokePath, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("--admin %q: %w", base, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+cfg.Admin.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the gateway's admin listener did not answer: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		var e struct {
			Desc string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Desc != "" {
			return fmt.Errorf("the gateway answered %d: %s", res.StatusCode, e.Desc)
		}
		return fmt.Errorf("the gateway answered %d", res.StatusCode)
	}
	var r proxy.RevokeResult
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("the gateway's answer is not a revocation result: %w", err)
	}
	who := r.Subject
	if r.SID != "" {
		who += " (session " + r.SID + ")"
	}
	fmt.Fprintf(stdout, "sessions of %s ended\n", who)
	if r.IssuerSessions != nil {
		fmt.Fprintf(stdout, "  built-in issuer: %d session(s) ended, refresh tokens revoked, back-channel logouts sent\n", *r.IssuerSessions)
	}
	switch {
	case r.GatewaySessions != nil:
		fmt.Fprintf(stdout, "  gateway: %d stored session(s) deleted\n", *r.GatewaySessions)
	case r.CookieSessionsRefused:
		fmt.Fprintln(stdout, "  gateway: cookie sessions refused from their next request")
	}
	return nil
}
