package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/jwks"
	"github.com/portcullis-dev/portcullis/serve"
)

// parseFlags parses a subcommand's flags, mapping errors to errUsage.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

// keygen writes a new signing key as PKCS#8 PEM, to a 0600 file or stdout.
func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	alg := fs.String("alg", "ES256", "algorithm: ES256, ES384, RS256, PS256 or EdDSA")
	out := fs.String("out", "", "file to write (created with mode 0600); default stdout")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	key, err := jwks.GenerateKey(*alg)
	if err != nil {
		return err
	}
	pemBytes, err := jwks.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(pemBytes)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s key to %s\n", *alg, *out)
	return nil
}

// hashPassword reads a password from the first line of stdin and prints
// its bcrypt hash, for issuer.users[].password_hash.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	cost := fs.Int("cost", 12, "bcrypt cost (10 to 15)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *cost < 10 || *cost > 15 {
		fmt.Fprintln(stderr, "portcullis hash-password: --cost must be between 10 and 15")
		return errUsage
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1<<12)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("hash-password: no password on standard input (try: echo -n 'secret' | portcullis hash-password)")
	}
	if len(pw) > 72 {
		return errors.New("hash-password: bcrypt uses at most 72 bytes of a password; choose a shorter one")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), *cost)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(h))
	return nil
}

// token mints an access token with the built-in issuer's current key.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file with an issuer section")
	client := fs.String("client", "", "client id the token is issued to")
	sub := fs.String("sub", "", "subject")
	scope := fs.String("scope", "", "space-separated scopes")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *path == "" || *client == "" || *sub == "" {
		fmt.Fprintln(stderr, `usage: portcullis token --config FILE --client ID --sub SUBJECT [--scope "a b"] [--ttl 1h]`)
		return errUsage
	}
	cfg, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	if cfg.Issuer == nil {
		return fmt.Errorf("%s has no issuer section", *path)
	}
	if cfg.Issuer.Signing.KeyDir == "" && len(cfg.Issuer.Signing.KeyFiles) == 0 {
		return errors.New("token: issuer.signing.key_dir and key_files are empty, so the running server has keys of its own that this token would not match")
	}
	iss, _, store, err := serve.NewIssuer(cfg, serve.Options{})
	if err != nil {
		return err
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	tok, err := iss.MintAccessToken(*client, *sub, strings.Fields(*scope), *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
