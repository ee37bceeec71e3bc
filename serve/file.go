package serve

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/portcullis-dev/portcullis/config"
)

// ReloadFile loads, validates and applies a configuration file. An invalid
// file is refused whole: every error is logged, counted in
// portcullis_config_reloads_total{result="invalid"}, and the running
// configuration stays. A file that, with every file it names (issuer key
// files, upstream CA files), is the same as at the last reload or refusal
// is not reloaded again: one edit seen by the file watch and by a SIGHUP
// counts once.
func (s *Server) ReloadFile(path string) error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	c, digest, err := loadWithDigest(path)
	if s.digestKnown && digest == s.digest {
		s.log.Info("configuration unchanged since the last reload; nothing to do", "path", path)
		return s.digestErr
	}
	s.digest, s.digestKnown, s.digestErr = digest, true, err
	if err != nil {
		s.CountReload("invalid")
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				s.log.Error("reload refused", "error", e.Error())
			}
		} else {
			s.log.Error("reload refused", "error", err)
		}
		return err
	}
	if err := s.Reload(c); err != nil {
		s.log.Error("reload failed", "error", err)
		s.digestKnown = false // it may have been passing; try again next time
		return err
	}
	return nil
}

// loadWithDigest loads path and returns, besides the configuration, the
// SHA-256 of the file and of each file the configuration names whose
// contents a reload reads. For a file that does not load, the digest is
// that of its bytes alone.
func loadWithDigest(path string) (*config.Config, [32]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("config: %w", err)
	}
	h := sha256.New()
	h.Write(data)
	c, err := config.Parse(path, data, os.LookupEnv)
	if err == nil {
		var named []string
		if c.Issuer != nil {
			named = append(named, c.Issuer.Signing.KeyFiles...)
		}
		for _, r := range c.Routes {
			if r.UpstreamCAFile != "" {
				named = append(named, r.UpstreamCAFile)
			}
		}
		for _, f := range named {
			b, _ := os.ReadFile(f)
			fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(b))
			h.Write(b)
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return c, d, err
}

// WatchFile reloads path whenever its contents change, checking every
// interval (a poll: it works the same on every filesystem, including the
// symlink swaps of a Kubernetes ConfigMap volume) until ctx is done. The
// configuration running when it starts is taken to be path's.
func (s *Server) WatchFile(ctx context.Context, path string, interval time.Duration) {
	last, _ := fileDigest(path)
	s.fileMu.Lock()
	if !s.digestKnown {
		_, s.digest, _ = loadWithDigest(path)
		s.digestKnown = true
	}
	s.fileMu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d, err := fileDigest(path)
		if err != nil || d == last {
			continue
		}
		last = d
		s.log.Info("configuration file changed; reloading", "path", path)
		_ = s.ReloadFile(path)
	}
}

// fileDigest is the SHA-256 of a file's contents.
func fileDigest(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}
