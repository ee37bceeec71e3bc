package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"testing"

	"gopkg.in/yaml.v3"
)

// The parts of the Kubernetes objects the checks read. yaml.v3 ignores the
// other fields.
type (
	meta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	object struct {
		Kind     string    `yaml:"kind"`
		Metadata meta      `yaml:"metadata"`
		node     yaml.Node // the whole document, to decode as its kind
	}
	deployment struct {
		Spec struct {
			Replicas *int          `yaml:"replicas"`
			Selector labelSelector `yaml:"selector"`
			Template struct {
				Metadata meta    `yaml:"metadata"`
				Spec     podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot   *bool           `yaml:"runAsNonRoot"`
			RunAsUser      *int64          `yaml:"runAsUser"`
			SeccompProfile *seccompProfile `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		InitContainers []container `yaml:"initContainers"`
		Containers     []container `yaml:"containers"`
		Volumes        []volume    `yaml:"volumes"`
	}
	volume struct {
		Name      string    `yaml:"name"`
		EmptyDir  *struct{} `yaml:"emptyDir"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode *int   `yaml:"defaultMode"`
		} `yaml:"secret"`
	}
	volumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	seccompProfile struct {
		Type string `yaml:"type"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env       []envVar `yaml:"env"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext *struct {
			RunAsNonRoot             *bool           `yaml:"runAsNonRoot"`
			RunAsUser                *int64          `yaml:"runAsUser"`
			ReadOnlyRootFilesystem   *bool           `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool           `yaml:"allowPrivilegeEscalation"`
			Privileged               *bool           `yaml:"privileged"`
			SeccompProfile           *seccompProfile `yaml:"seccompProfile"`
			Capabilities             struct {
				Add  []string `yaml:"add"`
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		LivenessProbe  *probe        `yaml:"livenessProbe"`
		ReadinessProbe *probe        `yaml:"readinessProbe"`
		VolumeMounts   []volumeMount `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ResourceFieldRef *struct {
				ContainerName string `yaml:"containerName"`
				Resource      string `yaml:"resource"`
				Divisor       string `yaml:"divisor"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"` // a number or a port name
		} `yaml:"httpGet"`
	}
	service struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"` // a number or a port name
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	networkPolicy struct {
		Spec struct {
			PodSelector labelSelector `yaml:"podSelector"`
			PolicyTypes []string      `yaml:"policyTypes"`
			Ingress     []struct {
				From []struct {
					PodSelector       *labelSelector `yaml:"podSelector"`
					NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
					IPBlock           any            `yaml:"ipBlock"`
				} `yaml:"from"`
				Ports []struct {
					Port     string `yaml:"port"`
					Protocol string `yaml:"protocol"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
		} `yaml:"spec"`
	}
	podDisruptionBudget struct {
		Spec struct {
			Selector labelSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
	secret struct {
		Metadata   meta              `yaml:"metadata"`
		StringData map[string]string `yaml:"stringData"`
	}
)

// mountedAt returns the volume of spec that container c mounts at dir, and
// its mount.
func mountedAt(spec podSpec, c container, dir string) (volume, volumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != path.Clean(dir) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name {
				return v, m, true
			}
		}
	}
	return volume{}, volumeMount{}, false
}

// rendered is the output of one "kubectl kustomize".
type rendered struct {
	objects []object
}

// all decodes every object of the given kind.
func all[T any](t *testing.T, r rendered, kind string) []T {
	t.Helper()
	var out []T
	for _, o := range r.objects {
		if o.Kind != kind {
			continue
		}
		var v T
		if err := o.node.Decode(&v); err != nil {
			t.Fatalf("decode %s %s: %v", kind, o.Metadata.Name, err)
		}
		out = append(out, v)
	}
	return out
}

// named decodes the object of the given kind and name, or fails.
func named[T any](t *testing.T, r rendered, kind, name string) T {
	t.Helper()
	for _, o := range r.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			var v T
			if err := o.node.Decode(&v); err != nil {
				t.Fatalf("decode %s %s: %v", kind, name, err)
			}
			return v
		}
	}
	t.Fatalf("no %s named %q in the output", kind, name)
	panic("unreachable")
}

// kubectl finds kubectl, which CI must have and a developer may lack.
func kubectl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kubectl is needed to render the manifests: %v", err)
		}
		t.Skipf("kubectl not found, manifests not rendered: %v", err)
	}
	return p
}

// kustomize renders dir and decodes every document.
func kustomize(t *testing.T, bin, dir string) rendered {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	r := decodeRendered(t, "kubectl kustomize "+dir, &stdout)
	if len(r.objects) == 0 {
		t.Fatalf("kubectl kustomize %s rendered nothing", dir)
	}
	return r
}

// decodeRendered decodes every document that what (a command) printed.
func decodeRendered(t *testing.T, what string, out io.Reader) rendered {
	t.Helper()
	var r rendered
	dec := yaml.NewDecoder(out)
	for {
		var o object
		if err := dec.Decode(&o.node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode the output of %s: %v", what, err)
		}
		if o.node.Kind == 0 {
			continue // an empty document
		}
		if err := o.node.Decode(&o); err != nil {
			t.Fatalf("decode the output of %s: %v", what, err)
		}
		r.objects = append(r.objects, o)
	}
	return r
}
