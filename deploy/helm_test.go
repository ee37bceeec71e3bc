package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The chart's shapes, each with its values file beside the chart, and the
// kustomize configuration each must carry unchanged.
var helmShapes = map[string]string{
	"sidecar": "base/config.yaml",
	"gateway": "overlays/gateway/config.yaml",
	"issuer":  "overlays/issuer/config.yaml",
}

const chartDir = "helm/portcullis"

// helmBin finds helm, which CI must have (.ci/run builds it from the Go
// module proxy) and a developer may lack.
func helmBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("helm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("helm is needed to lint and render the chart: %v", err)
		}
		t.Skipf("helm not found, chart not rendered: %v", err)
	}
	return p
}

func runHelm(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// TestHelmChart lints the chart and renders it with helm template for
// every shape, then checks the output as TestOverlays checks each
// overlay's.
func TestHelmChart(t *testing.T) {
	bin := helmBin(t)
	tmpl := secretTemplate(t)
	for shape, cfgFile := range helmShapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			values := filepath.Join("helm", "values-"+shape+".yaml")
			runHelm(t, bin, "lint", "--strict", chartDir, "-f", values)
			out := runHelm(t, bin, "template", "portcullis", chartDir, "-f", values)
			r := decodeRendered(t, "helm template -f "+values, bytes.NewReader(out))
			checkOverlay(t, shape, r, tmpl)

			// The values file carries the kustomize configuration as it is,
			// so the two ways to deploy cannot drift apart.
			var v struct {
				Shape  string `yaml:"shape"`
				Config string `yaml:"config"`
			}
			data, err := os.ReadFile(values)
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(data, &v); err != nil {
				t.Fatalf("%s: %v", values, err)
			}
			want, err := os.ReadFile(cfgFile)
			if err != nil {
				t.Fatal(err)
			}
			if v.Shape != shape {
				t.Errorf("%s: shape %q, want %q", values, v.Shape, shape)
			}
			if v.Config != string(want) {
				t.Errorf("%s: config differs from %s; keep them the same", values, cfgFile)
			}
		})
	}
}

// TestHelmChartRefusesBadValues: values that cannot work fail rendering
// with a message, rather than rendering a pod that cannot start.
func TestHelmChartRefusesBadValues(t *testing.T) {
	bin := helmBin(t)
	for args, want := range map[string]string{
		"--set shape=daemon":                 `shape "daemon": want sidecar, gateway or issuer`,
		"--set-string config=":               "config is empty",
		"--set resources.limits.memory=null": "resources.limits.memory is required",
	} {
		cmd := exec.Command(bin, append([]string{"template", "portcullis", chartDir, "-f", "helm/values-gateway.yaml"}, strings.Fields(args)...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("helm template %s: err %v, output lacks %q:\n%s", args, err, want, out)
		}
	}
}
