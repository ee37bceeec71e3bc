package jwks

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Names inside [KeyRingConfig.KeyDir].
const (
	stateFileName = "keyring.json" // roles and times of the keys
	keyFileExt    = ".pem"         // one PKCS#8 private key per file
	tempPrefix    = ".keyring-tmp-"
)

// Modes of what a key ring writes.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// keyState is one key's entry in the state file.
type keyState struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	File      string    `json:"file"`
	Created   time.Time `json:"created"`
	Activated time.Time `json:"activated,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
}

// stateDoc is the state file: a JSON object with a "keys" array.
type stateDoc struct {
	Keys []keyState `json:"keys"`
}

// keyFile is a private key loaded from KeyDir, not yet given a role.
type keyFile struct {
	name string // base name in the directory
	key  SigningKey
}

// ensureDir creates dir with mode 0700 when missing. An existing directory
// that others may write to is only warned about: its key files are still
// checked one by one.
func ensureDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("jwks: key directory: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("jwks: key directory: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("jwks: key directory %s is not a directory", dir)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o022 != 0 {
		log.Warn("jwks: key directory is writable by group or others; run chmod 700 on it",
			"dir", dir, "mode", fmt.Sprintf("%04o", info.Mode().Perm()))
	}
	removeTemps(dir, log)
	return nil
}

// removeTemps deletes temporary files left by a write that was interrupted
// before its rename.
func removeTemps(dir string, log *slog.Logger) {
	names, _ := filepath.Glob(filepath.Join(dir, tempPrefix+"*"))
	for _, n := range names {
		if err := os.Remove(n); err != nil {
			log.Warn("jwks: remove temporary file", "file", n, "err", err)
		}
	}
}

// loadKeyFiles reads every *.pem file in dir, sorted by name. A file that
// group or others can read, that does not hold a supported PKCS#8 key, or
// that holds the same key as another file is an error naming the file.
func loadKeyFiles(dir string) ([]keyFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("jwks: key directory: %w", err)
	}
	var out []keyFile
	seen := make(map[string]string) // kid → file name
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, keyFileExt) || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		s, err := readKeyFile(path, false)
		if err != nil {
			return nil, err
		}
		id, err := thumbprintID(s.Public())
		if err != nil {
			return nil, fmt.Errorf("jwks: key file %s: %w", path, err)
		}
		if other, dup := seen[id]; dup {
			return nil, fmt.Errorf("jwks: key files %s and %s hold the same key; remove one", other, name)
		}
		seen[id] = name
		out = append(out, keyFile{name: name, key: SigningKey{ID: id, Signer: s}})
	}
	return out, nil
}

// readKeyFile checks the mode of the key file at path (following symbolic
// links, as mounted secrets use them) and parses it. Others may never
// reach it; with groupRead its group may read it, as a Kubernetes Secret
// mounted into a pod with an fsGroup always is (mode 0440 whatever the
// volume's defaultMode), so that a non-root process can read it at all.
func readKeyFile(path string, groupRead bool) (crypto.Signer, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("jwks: key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		switch {
		case !groupRead:
			return nil, fmt.Errorf("jwks: key file %s is accessible by group or others (mode %04o); run chmod 600 %s",
				path, perm, path)
		case perm&0o037 != 0:
			return nil, fmt.Errorf("jwks: key file %s is accessible by others or writable by its group (mode %04o); run chmod 600 %s (or mount the Secret with defaultMode 0440)",
				path, perm, path)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwks: key file: %w", err)
	}
	s, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("jwks: key file %s: %w", path, err)
	}
	return s, nil
}

// readState reads the state file in dir; a missing file is an empty state.
// Unknown members and duplicate or malformed entries are errors, as the file
// is written only by the key ring.
func readState(dir string) (map[string]keyState, error) {
	path := filepath.Join(dir, stateFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]keyState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("jwks: state file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc stateDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("jwks: state file %s: %w", path, err)
	}
	out := make(map[string]keyState, len(doc.Keys))
	var active, next int
	for _, ks := range doc.Keys {
		if _, dup := out[ks.ID]; dup || ks.ID == "" {
			return nil, fmt.Errorf("jwks: state file %s: missing or repeated kid %.64q", path, ks.ID)
		}
		switch {
		case ks.Activated.IsZero() && !ks.Retired.IsZero():
			return nil, fmt.Errorf("jwks: state file %s: key %.64q retired but never activated", path, ks.ID)
		case ks.Activated.IsZero():
			next++
		case ks.Retired.IsZero():
			active++
		}
		out[ks.ID] = ks
	}
	if active > 1 || next > 1 {
		return nil, fmt.Errorf("jwks: state file %s: %d active and %d next keys, want at most one each", path, active, next)
	}
	return out, nil
}

// writeState records keys in dir's state file, atomically.
func writeState(dir string, keys []ringKey) error {
	doc := stateDoc{Keys: make([]keyState, 0, len(keys))}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, keyState{
			ID: k.ID, Algorithm: k.Algorithm, File: k.file,
			Created: k.created, Activated: k.activated, Retired: k.retired,
		})
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("jwks: state file: %w", err)
	}
	if err := writeFileAtomic(dir, stateFileName, append(data, '\n')); err != nil {
		return fmt.Errorf("jwks: state file: %w", err)
	}
	return nil
}

// writeKeyFile stores k's private key as dir/<kid>.pem and returns the
// file's base name. The kid is base64url, so it is a safe file name.
func writeKeyFile(dir string, k SigningKey) (string, error) {
	data, err := MarshalPrivateKey(k.Signer)
	if err != nil {
		return "", err
	}
	name := k.ID + keyFileExt
	if err := writeFileAtomic(dir, name, data); err != nil {
		return "", fmt.Errorf("jwks: write key %s: %w", name, err)
	}
	return name, nil
}

// writeFileAtomic writes data to dir/name with mode 0600 through a
// temporary file in the same directory that is synced and then renamed
// over the target, so a crash leaves either the old or the new file.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*") // created with mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(fileMode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir flushes a directory entry change to disk where the platform
// allows it; failure only weakens durability, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// adoptKeys gives every loaded key file its role: the one recorded in the
// state file, or for a file the state does not know (say, one made with
// `portcullis keygen`) the first free one of active, next and retired. State
// entries without a file are dropped with a warning. The result may lack an
// active or next key; [OpenKeyRing] fills the gaps. changed reports whether
// the state file needs rewriting.
func adoptKeys(files []keyFile, state map[string]keyState, alg string, now time.Time, log *slog.Logger) (keys []ringKey, changed bool, err error) {
	var untracked []keyFile
	for _, f := range files {
		ks, ok := state[f.key.ID]
		if !ok {
			untracked = append(untracked, f)
			continue
		}
		delete(state, f.key.ID)
		if !algFits(f.key.Signer, ks.Algorithm) {
			return nil, false, fmt.Errorf("jwks: state file: algorithm %.16q does not fit the %s in %s",
				ks.Algorithm, describeKey(f.key.Signer), f.name)
		}
		f.key.Algorithm = ks.Algorithm
		changed = changed || ks.File != f.name
		keys = append(keys, ringKey{SigningKey: f.key, file: f.name,
			created: ks.Created, activated: ks.Activated, retired: ks.Retired})
	}
	for kid := range state {
		log.Warn("jwks: key in state file has no key file; dropping it", "kid", kid)
		changed = true
	}
	for _, f := range untracked {
		a, err := keyAlgorithm(f.key.Signer, alg)
		if err != nil {
			return nil, false, fmt.Errorf("jwks: key file %s: %w", f.name, err)
		}
		f.key.Algorithm = a
		rk := ringKey{SigningKey: f.key, file: f.name, created: now}
		switch {
		case !slices.ContainsFunc(keys, ringKey.isActive):
			rk.activated = now
		case !slices.ContainsFunc(keys, ringKey.isNext):
		default:
			rk.activated, rk.retired = now, now
		}
		log.Info("jwks: adopted key file", "file", f.name, "kid", rk.ID, "alg", a, "role", rk.role())
		keys = append(keys, rk)
		changed = true
	}
	return keys, changed, nil
}
