package deploy_test

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The overlays the repository ships; every directory under overlays/ is
// checked, and these must be among them.
var wantOverlays = []string{"sidecar", "gateway", "issuer"}

const (
	containerName = "portcullis" // the container that runs portcullis
	adminPort     = 9090
	nonRootUID    = 65532
	secretFile    = "base/secret.example.yaml"
)

// TestOverlays renders every overlay with "kubectl kustomize" and checks
// the objects it makes.
func TestOverlays(t *testing.T) {
	bin := kubectl(t)
	entries, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	var overlays []string
	for _, e := range entries {
		if e.IsDir() {
			overlays = append(overlays, e.Name())
		}
	}
	for _, want := range wantOverlays {
		if !slices.Contains(overlays, want) {
			t.Errorf("overlay %q is missing from overlays/", want)
		}
	}
	tmpl := secretTemplate(t)
	for _, name := range overlays {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := kustomize(t, bin, filepath.Join("overlays", name))
			checkOverlay(t, name, r, tmpl)
		})
	}
}

// secretTemplate reads the Secret template the README tells operators to
// fill in.
func secretTemplate(t *testing.T) secret {
	t.Helper()
	data, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	var s secret
	if err := yaml.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", secretFile, err)
	}
	return s
}

// checkOverlay checks one rendered overlay.
func checkOverlay(t *testing.T, name string, r rendered, tmpl secret) {
	kinds := map[string]int{}
	for _, o := range r.objects {
		kinds[o.Kind]++
	}
	for _, k := range []string{"StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"} {
		if kinds[k] > 0 {
			t.Errorf("a %s is rendered, whose pods these checks do not cover; extend the test", k)
		}
	}
	if kinds["Secret"] > 0 {
		t.Errorf("a Secret is rendered: applying the manifests would overwrite real keys; keep it in %s", secretFile)
	}
	deps := all[deployment](t, r, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("%d Deployments rendered, want 1", len(deps))
	}
	d := deps[0]
	pod := d.Spec.Template
	if !subset(d.Spec.Selector.MatchLabels, pod.Metadata.Labels) || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("the Deployment's selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	checkPodSecurity(t, pod.Spec)
	checkAnnotations(t, pod.Metadata.Annotations)
	pc := portcullisContainer(t, pod.Spec)
	checkProbes(t, pc)
	checkMemoryLimit(t, pc)
	cfg := checkConfig(t, r, pod.Spec, pc, tmpl)

	if cfg != nil {
		grace := 30 * time.Second // the Kubernetes default
		if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		sd, sg := cfg.Server.ShutdownDelay.D(), cfg.Server.ShutdownGrace.D()
		if grace <= sd+sg {
			t.Errorf("terminationGracePeriodSeconds is %s, not above server.shutdown_delay + shutdown_grace %s: in-flight requests would be killed", grace, sd+sg)
		}
		if sd < 5*time.Second {
			t.Errorf("server.shutdown_delay is %s; want at least 5s, so the endpoints and the ingress stop sending before the listener closes (the image has no sleep for a preStop hook)", sd)
		}
	}
	checkService(t, r, pod.Metadata.Labels, pod.Spec, pc)
	checkNetworkPolicy(t, r, pod.Metadata.Labels, pc, cfg)
	checkPDB(t, r, pod.Metadata.Labels)

	switch name {
	case "gateway":
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("replicas = %v, want 2", ptrString(d.Spec.Replicas))
		}
	case "sidecar":
		checkSidecar(t, pod.Spec, cfg)
	}
}

// checkMemoryLimit checks that the Go runtime's soft memory limit is the
// container's memory limit, in bytes.
func checkMemoryLimit(t *testing.T, c container) {
	t.Helper()
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("container %s has no memory limit", c.Name)
	}
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		ref := (*struct {
			ContainerName string `yaml:"containerName"`
			Resource      string `yaml:"resource"`
			Divisor       string `yaml:"divisor"`
		})(nil)
		if e.ValueFrom != nil {
			ref = e.ValueFrom.ResourceFieldRef
		}
		if ref == nil || ref.Resource != "limits.memory" || (ref.ContainerName != "" && ref.ContainerName != c.Name) ||
			(ref.Divisor != "" && ref.Divisor != "1") {
			t.Errorf("GOMEMLIMIT must come from resourceFieldRef limits.memory of container %s, in bytes (divisor 1): %+v", c.Name, e)
		}
		return
	}
	t.Errorf("container %s sets no GOMEMLIMIT from its memory limit", c.Name)
}

// checkPodSecurity checks the pod's and every container's security
// context, resources and image.
func checkPodSecurity(t *testing.T, spec podSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if psc.RunAsUser == nil || *psc.RunAsUser != nonRootUID {
		t.Errorf("pod securityContext.runAsUser = %s, want %d", ptrString(psc.RunAsUser), nonRootUID)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext.seccompProfile is not RuntimeDefault")
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s: no securityContext", c.Name)
			continue
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			t.Errorf("container %s: runAsNonRoot is false", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser != nonRootUID {
			t.Errorf("container %s: runAsUser = %d, want %d", c.Name, *sc.RunAsUser, nonRootUID)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s: privileged", c.Name)
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: capabilities drop %v add %v, want drop [ALL] and no add", c.Name, sc.Capabilities.Drop, sc.Capabilities.Add)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("container %s: seccompProfile %s overrides the pod's RuntimeDefault", c.Name, sc.SeccompProfile.Type)
		}
		for _, res := range []string{"cpu", "memory"} {
			if c.Resources.Requests[res] == "" {
				t.Errorf("container %s: no %s request", c.Name, res)
			}
			if c.Resources.Limits[res] == "" {
				t.Errorf("container %s: no %s limit", c.Name, res)
			}
		}
		if msg := checkImage(c.Image); msg != "" {
			t.Errorf("container %s: image %q %s", c.Name, c.Image, msg)
		}
	}
}

// checkImage says what is wrong with an image reference, or "".
func checkImage(image string) string {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") {
			return "has a digest that is not sha256"
		}
		return ""
	}
	name := path.Base(image)
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return "has no tag, so it means latest; pin a version"
	case tag == "latest":
		return "is tagged latest; pin a version"
	}
	return ""
}

// checkAnnotations checks the Prometheus scrape annotations.
func checkAnnotations(t *testing.T, a map[string]string) {
	t.Helper()
	want := map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/port":   strconv.Itoa(adminPort),
		"prometheus.io/path":   "/metrics",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("pod annotation %s = %q, want %q", k, a[k], v)
		}
	}
}

// portcullisContainer finds the container that runs portcullis.
func portcullisContainer(t *testing.T, spec podSpec) container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == containerName {
			if !strings.Contains(c.Image, "/portcullis") {
				t.Errorf("container %s runs image %q, not portcullis", c.Name, c.Image)
			}
			return c
		}
	}
	t.Fatalf("no container named %s", containerName)
	panic("unreachable")
}

// containerPort resolves a port given as a number or a name of c's ports.
func containerPort(c container, port string) (int, bool) {
	for _, p := range c.Ports {
		if p.Name == port && port != "" {
			return p.ContainerPort, true
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, false
	}
	for _, p := range c.Ports {
		if p.ContainerPort == n {
			return n, true
		}
	}
	return n, false
}

// checkProbes checks the liveness and readiness probes of portcullis.
func checkProbes(t *testing.T, c container) {
	t.Helper()
	for _, p := range []struct {
		kind, path string
		probe      *probe
	}{
		{"livenessProbe", "/healthz", c.LivenessProbe},
		{"readinessProbe", "/readyz", c.ReadinessProbe},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no httpGet %s", p.kind, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: path %q, want %q", p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if n, ok := containerPort(c, p.probe.HTTPGet.Port); !ok || n != adminPort {
			t.Errorf("%s: port %q, want the admin port %d declared by the container", p.kind, p.probe.HTTPGet.Port, adminPort)
		}
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
