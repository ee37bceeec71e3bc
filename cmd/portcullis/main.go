// Command portcullis is a JWT-enforcing reverse proxy.
//
//	portcullis serve --config FILE     run the gateway
//	portcullis check --config FILE     validate a configuration, report every error
//	portcullis demo                    run a self-contained demo on loopback
//	portcullis keygen [--alg ES256]    write a new signing key
//	portcullis hash-password           bcrypt a password read from stdin
//	portcullis token --config FILE --client ID --sub S [--scope "…"] [--ttl 1h]
//	portcullis explain --config FILE --route NAME [--method M] [--path P] [TOKEN | -]
//	portcullis version                 print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/gctune"
	"github.com/portcullis-dev/portcullis/serve"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: portcullis <command> [flags]

commands:
  serve --config FILE   run the gateway
  check --config FILE   validate a configuration file and report every error
  demo                  run a gateway, a key server and an echo upstream on loopback
  keygen [--alg ES256] [--out FILE]
                        write a new signing key (PKCS#8 PEM)
  hash-password [--cost 12]
                        print the bcrypt hash of the password on standard input
  token --config FILE --client ID --sub SUBJECT [--scope "a b"] [--ttl 1h]
                        mint an access token with the built-in issuer's key
  explain --config FILE --route NAME [--method M] [--path P] [TOKEN | -]
                        show every check the gateway runs on a token, and
                        each of the route's rules, and why
  revoke --config FILE --sub SUBJECT [--sid SID]
                        end a user's sessions at the running gateway (its
                        admin listener, with admin.token)
  version               print the version
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, os.Stdin, stdout, stderr)
}

// runWith is run with an explicit standard input.
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = runServe(ctx, rest, stderr)
	case "check":
		err = check(rest, stdout, stderr)
	case "demo":
		err = demo(ctx, rest, stdout, stderr)
	case "keygen":
		err = keygen(rest, stdout, stderr)
	case "hash-password":
		err = hashPassword(rest, stdin, stdout, stderr)
	case "token":
		err = token(rest, stdout, stderr)
	case "explain":
		err = explain(ctx, rest, stdin, stdout, stderr)
	case "revoke":
		err = revoke(ctx, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "portcullis", versionString())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "portcullis:", err)
	return 1
}

var errUsage = errors.New("usage")

func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// configFlag parses "--config FILE" for serve and check.
func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", errUsage
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: portcullis %s --config FILE\n", name)
		return "", errUsage
	}
	return *path, nil
}

// loadConfig loads and validates a configuration, printing every error.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stderr, e)
			}
			return nil, fmt.Errorf("%s: %d error(s)", path, len(errs))
		}
		return nil, err
	}
	return cfg, nil
}

func check(args []string, stdout, stderr io.Writer) error {
	path, err := configFlag("check", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%s, %s)\n", path, count(len(cfg.Routes), "route"), count(len(cfg.Issuers), "issuer"))
	if u := cfg.BackchannelLogoutURL(); u != "" {
		how := "register it at the provider as the client's backchannel_logout_uri"
		if cfg.LoginAtBuiltinIssuer() {
			how = "the built-in issuer's client " + cfg.Login.ClientID + " has it registered"
		}
		fmt.Fprintf(stdout, "back-channel logout URI: %s (%s)\n", u, how)
	}
	for i, rt := range cfg.Routes {
		if res := cfg.RouteResource(i); res != "" {
			fmt.Fprintf(stdout, "route %s: resource %s, metadata at %s\n", rt.Name, res, resourceMetadataURL(res))
		}
	}
	return nil
}

// resourceMetadataURL is where RFC 9728 §3.1 puts the metadata of
// resource: the well-known URI inserted between its host and its path.
func resourceMetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return "?"
	}
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.EscapedPath(), "/")
}

// count is "1 route", "2 routes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// gcFloor is the heap size below which serve's collector does not hurry.
const gcFloor = 24 << 20

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	path, err := configFlag("serve", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	log.Info("starting portcullis", "version", versionString(), "config", path)
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "warning", w.Error())
	}
	if cfg.Server.InsecureAllowHTTP {
		log.Warn("insecure_allow_http is set: the gateway is served over plain http on a non-loopback address")
	}
	if cfg.Issuer != nil && cfg.Issuer.Signing.KeyDir == "" && len(cfg.Issuer.Signing.KeyFiles) == 0 {
		log.Warn("issuer.signing.key_dir is empty: signing keys live in memory and every token becomes invalid when portcullis restarts")
	}
	// A gateway's live heap is small and its allocation rate high: let the
	// heap reach gcFloor before collecting (unless GOGC or GOMEMLIMIT is set).
	defer gctune.Start(gcFloor).Stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gw, err := serve.New(ctx, serve.Options{Config: cfg, Logger: log, Version: versionString()})
	if err != nil {
		return err
	}
	defer func() {
		// The spans of the last requests, before the process ends.
		flush, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := gw.StopTracing(flush); err != nil {
			log.Warn("tracing: spans left unexported at exit", "err", err)
		}
	}()
	// Reload on SIGHUP and when the file changes.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading configuration", "path", path)
				_ = gw.ReloadFile(path)
			}
		}
	}()
	go gw.WatchFile(ctx, path, 2*time.Second)
	return gw.ListenAndServe(ctx)
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
