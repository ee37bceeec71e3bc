package deploy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/jwks"
)

// configPath returns the --config argument of portcullis.
func configPath(c container) string {
	args := c.Args
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	// The image's CMD.
	return "/etc/portcullis/config.yaml"
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// checkConfig finds the ConfigMap mounted at portcullis' --config path,
// parses the file with [config.Parse] and checks the listeners and the
// secrets it refers to. It returns nil when the file does not parse.
func checkConfig(t *testing.T, r rendered, spec podSpec, c container, tmpl secret) *config.Config {
	t.Helper()
	file := configPath(c)
	dir, base := path.Split(file)
	var cmName string
	if v, _, ok := mountedAt(spec, c, dir); ok && v.ConfigMap != nil {
		cmName = v.ConfigMap.Name
	}
	if cmName == "" {
		t.Fatalf("no ConfigMap is mounted at %s, where --config %s is", dir, file)
	}
	data, ok := named[configMap](t, r, "ConfigMap", cmName).Data[base]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cmName, base)
	}

	// ${VARS}: set only those the container has, as at run time; a secret
	// must come from the Secret, never from a literal in the manifest.
	dummies := map[string]string{}
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != tmpl.Metadata.Name {
				t.Errorf("env %s: from Secret %q, but %s describes %q", e.Name, ref.Name, secretFile, tmpl.Metadata.Name)
			} else if _, ok := tmpl.StringData[ref.Key]; !ok {
				t.Errorf("env %s: key %q is missing from %s", e.Name, ref.Key, secretFile)
			}
			dummies[e.Name] = dummy(t, e.Name)
			fromSecret[e.Name] = true
		case e.Value != nil:
			dummies[e.Name] = *e.Value
		}
	}
	for _, m := range envRef.FindAllStringSubmatch(data, -1) {
		name := m[1]
		secretish := strings.Contains(name, "SECRET") || strings.Contains(name, "PASSWORD") || strings.HasSuffix(name, "_URL")
		if _, set := dummies[name]; set && secretish && !fromSecret[name] {
			t.Errorf("config.yaml refers to ${%s}, which the container sets from a literal, not from the Secret", name)
		}
	}
	lookup := func(name string) (string, bool) {
		v, ok := dummies[name]
		return v, ok
	}
	data = keyFilesHere(t, spec, c, data)
	cfg, err := config.Parse("ConfigMap "+cmName+"/"+base, []byte(data), lookup)
	if err != nil {
		t.Errorf("the shipped configuration does not parse:\n%v", err)
		return nil
	}

	// Both listeners on every interface, on the ports the pod declares.
	checkListen(t, c, "server.listen", cfg.Server.Listen, "http")
	checkListen(t, c, "admin.listen", cfg.Admin.Listen, "admin")
	if n, _ := containerPort(c, "admin"); n != adminPort {
		t.Errorf("the admin port is %d, want %d", n, adminPort)
	}
	if u, err := url.Parse(cfg.Server.PublicURL); err != nil || u.Scheme != "https" {
		t.Errorf("server.public_url %q is not https: the session cookie is secure and TLS ends at the ingress", cfg.Server.PublicURL)
	}
	if cfg.Server.InsecureAllowHTTP {
		t.Errorf("server.insecure_allow_http is set; the shipped configs serve an https public_url")
	}

	// Signing keys must outlive the pod: from a Secret, never generated
	// into a directory that a new pod starts without.
	if cfg.Issuer != nil && len(cfg.Issuer.Signing.KeyFiles) == 0 {
		t.Errorf("issuer.signing.key_files is empty: a new pod (any config edit rolls one) would sign with new keys and every token and session would stop working")
	}
	// The issuer's keys need the one writable place.
	if cfg.Issuer != nil && cfg.Issuer.Signing.KeyDir != "" {
		if !writable(spec, c, cfg.Issuer.Signing.KeyDir) {
			t.Errorf("issuer.signing.key_dir %s is not under a writable emptyDir mount; the root filesystem is read-only", cfg.Issuer.Signing.KeyDir)
		}
	}
	return cfg
}

// keyFilesHere checks that every issuer.signing.key_files entry of the
// configuration data is a file of a Secret volume mounted read-only into c
// with at most mode 0440, and returns data with each path replaced by a
// freshly generated key file here, so that the configuration validates.
func keyFilesHere(t *testing.T, spec podSpec, c container, data string) string {
	t.Helper()
	var doc struct {
		Issuer *struct {
			Signing struct {
				KeyFiles []string `yaml:"key_files"`
			} `yaml:"signing"`
		} `yaml:"issuer"`
	}
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil || doc.Issuer == nil {
		return data
	}
	for _, f := range doc.Issuer.Signing.KeyFiles {
		dir, _ := path.Split(f)
		v, m, ok := mountedAt(spec, c, dir)
		fromSecret := ok && v.Secret != nil
		if fromSecret && !m.ReadOnly {
			t.Errorf("key file %s: the Secret's mount is not readOnly", f)
		}
		if fromSecret && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o037 != 0) {
			t.Errorf("key file %s: Secret %s's defaultMode %v lets others read it; want 0400 or 0440", f, v.Secret.SecretName, v.Secret.DefaultMode)
		}
		if !fromSecret {
			t.Errorf("key file %s is not in a Secret volume mounted into container %s", f, c.Name)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pemKey, err := jwks.MarshalPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		here := filepath.Join(t.TempDir(), path.Base(f))
		if err := os.WriteFile(here, pemKey, 0o600); err != nil {
			t.Fatal(err)
		}
		data = strings.ReplaceAll(data, f, here)
	}
	return data
}

// dummy returns a stand-in for the secret environment variable name: what
// the validator wants for its kind, at least 32 bytes.
func dummy(t *testing.T, name string) string {
	t.Helper()
	switch {
	case strings.HasSuffix(name, "_PASSWORD_HASH"):
		h, err := bcrypt.GenerateFromPassword([]byte("a password for the test"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	case strings.HasSuffix(name, "REDIS_URL"):
		return "redis://:" + strings.Repeat("p", 32) + "@redis.example.svc.cluster.local:6379/0"
	}
	return strings.Repeat(strings.ToLower(name)+"-", 4)[:max(32, len(name)+1)]
}

// checkListen checks that addr listens on every interface, on c's port
// named portName.
func checkListen(t *testing.T, c container, key, addr, portName string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s %q: %v", key, addr, err)
		return
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s %q listens on %s only; the kubelet and the Service reach the pod's address, so write :%s", key, addr, host, port)
	}
	want, ok := containerPort(c, portName)
	if !ok || strconv.Itoa(want) != port {
		t.Errorf("%s %q: the container's port %s is %d", key, addr, portName, want)
	}
}

// writable reports whether dir is under a read-write emptyDir mount of c.
func writable(spec podSpec, c container, dir string) bool {
	for _, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if m.ReadOnly || (dir != mp && !strings.HasPrefix(path.Clean(dir), mp+"/")) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.EmptyDir != nil {
				return true
			}
		}
	}
	return false
}
