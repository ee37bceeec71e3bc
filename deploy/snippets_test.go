package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/jwks"
)

// readmeCommands returns the shell commands of README.md's code blocks that
// contain want, each with its continuation lines joined.
func readmeCommands(t *testing.T, file, want string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	in, cur := false, ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "```"):
			in, cur = !in, ""
			continue
		case !in || strings.HasPrefix(line, "#") && cur == "":
			continue
		}
		if c, ok := strings.CutSuffix(line, `\`); ok {
			cur += c + " "
			continue
		}
		cur += line
		if strings.Contains(cur, want) {
			cmds = append(cmds, cur)
		}
		cur = ""
	}
	return cmds
}

// TestSecretCommands runs the commands deploy/README.md gives for making the
// Secrets, with the real portcullis and kubectl (a client-side dry run, so
// no cluster is needed), and checks that what they make is what the issuer
// overlay reads: every key its containers take from Secret portcullis, a
// signing key file for every issuer.signing.key_files entry, and values
// that the overlay's configuration accepts.
func TestSecretCommands(t *testing.T) {
	kube := kubectl(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "portcullis"), "github.com/portcullis-dev/portcullis/cmd/portcullis")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build portcullis: %v\n%s", err, out)
	}
	made := map[string][]map[string]string{} // Secret name → each command's data
	for _, cmd := range readmeCommands(t, "README.md", "kubectl create secret") {
		sh := exec.Command("bash", "-o", "pipefail", "-c", cmd+" --dry-run=client -o yaml")
		sh.Env = append(os.Environ(), "PATH="+bin+":"+filepath.Dir(kube)+":"+os.Getenv("PATH"))
		out, err := sh.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		var s struct {
			Metadata meta              `yaml:"metadata"`
			Data     map[string]string `yaml:"data"`
		}
		if err := yaml.Unmarshal(out, &s); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		data := map[string]string{}
		for k, v := range s.Data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			data[k] = string(b)
		}
		made[s.Metadata.Name] = append(made[s.Metadata.Name], data)
	}

	r := kustomize(t, kube, "overlays/issuer")
	pod := all[deployment](t, r, "Deployment")[0].Spec.Template.Spec
	pc := portcullisContainer(t, pod)
	// The most complete Secret portcullis the README makes must hold
	// every key the container reads.
	var secret map[string]string
	for _, d := range made[tmplName(t)] {
		if len(d) > len(secret) {
			secret = d
		}
	}
	env := map[string]string{}
	for _, e := range pc.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		v, ok := secret[e.ValueFrom.SecretKeyRef.Key]
		if !ok {
			t.Errorf("the README's commands make no key %q in Secret portcullis, which %s reads", e.ValueFrom.SecretKeyRef.Key, e.Name)
		}
		env[e.Name] = v
	}
	cfgText, err := os.ReadFile("overlays/issuer/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The key files come from the README's signing-key Secret, written
	// where the pod would see them.
	var doc struct {
		Issuer struct {
			Signing struct {
				KeyFiles []string `yaml:"key_files"`
			} `yaml:"signing"`
		} `yaml:"issuer"`
	}
	if err := yaml.Unmarshal(cfgText, &doc); err != nil {
		t.Fatal(err)
	}
	text := string(cfgText)
	for _, f := range doc.Issuer.Signing.KeyFiles {
		v, _, _ := mountedAt(pod, pc, path.Dir(f)+"/")
		if v.Secret == nil {
			t.Fatalf("key file %s is not in a Secret volume", f)
		}
		var pem string
		for _, d := range made[v.Secret.SecretName] {
			pem = d[path.Base(f)]
		}
		if pem == "" {
			t.Fatalf("the README's commands make no %s in Secret %s", path.Base(f), v.Secret.SecretName)
		}
		if _, err := jwks.ParsePrivateKey([]byte(pem)); err != nil {
			t.Errorf("%s from the README's command: %v", path.Base(f), err)
		}
		here := filepath.Join(t.TempDir(), path.Base(f))
		if err := os.WriteFile(here, []byte(pem), 0o600); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, f, here)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if _, err := config.Parse("overlays/issuer/config.yaml", []byte(text), lookup); err != nil {
		t.Errorf("the issuer overlay's configuration with the Secrets the README makes:\n%v", err)
	}
}

// tmplName is the name of the Secret secret.example.yaml describes.
func tmplName(t *testing.T) string { return secretTemplate(t).Metadata.Name }
