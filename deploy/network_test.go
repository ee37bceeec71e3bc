package deploy_test

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/config"
)

// checkService checks that a Service selects the pods and forwards to
// portcullis' declared ports only.
func checkService(t *testing.T, r rendered, podLabels map[string]string, spec podSpec, pc container) {
	t.Helper()
	svcs := all[service](t, r, "Service")
	if len(svcs) == 0 {
		t.Fatal("no Service")
	}
	for _, s := range svcs {
		if len(s.Spec.Selector) == 0 || !subset(s.Spec.Selector, podLabels) {
			t.Errorf("Service selector %v does not select the pods %v", s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target == "" {
				target = strconv.Itoa(p.Port)
			}
			if _, ok := containerPort(pc, target); !ok {
				t.Errorf("Service port %s targets %q, which is not a port of the %s container", p.Name, target, containerName)
			}
			for _, c := range spec.Containers {
				if c.Name == containerName {
					continue
				}
				if _, ok := containerPort(c, target); ok {
					t.Errorf("Service port %s targets %q, a port of container %s: it would bypass portcullis", p.Name, target, c.Name)
				}
			}
		}
	}
}

// servicePorts returns the container ports the Services send traffic to.
func servicePorts(t *testing.T, r rendered, pc container) []int {
	var ports []int
	for _, s := range all[service](t, r, "Service") {
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target == "" {
				target = strconv.Itoa(p.Port)
			}
			if n, ok := containerPort(pc, target); ok && !slices.Contains(ports, n) {
				ports = append(ports, n)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// checkNetworkPolicy checks that a policy opens exactly the Service's
// ports of the portcullis pods, and that every in-cluster upstream takes
// traffic from portcullis pods only.
func checkNetworkPolicy(t *testing.T, r rendered, podLabels map[string]string, pc container, cfg *config.Config) {
	t.Helper()
	pols := all[networkPolicy](t, r, "NetworkPolicy")
	if len(pols) == 0 {
		t.Fatal("no NetworkPolicy")
	}
	want := servicePorts(t, r, pc)
	found := false
	for _, p := range pols {
		if len(p.Spec.PodSelector.MatchLabels) == 0 || !subset(p.Spec.PodSelector.MatchLabels, podLabels) {
			continue
		}
		found = true
		if !slices.Contains(p.Spec.PolicyTypes, "Ingress") {
			t.Errorf("the NetworkPolicy of the portcullis pods has policyTypes %v, without Ingress", p.Spec.PolicyTypes)
		}
		var open []int
		for _, rule := range p.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("a rule of the portcullis pods' NetworkPolicy opens every port")
			}
			for _, port := range rule.Ports {
				n, ok := containerPort(pc, port.Port)
				if !ok {
					t.Errorf("the portcullis pods' NetworkPolicy opens port %q, which portcullis does not serve", port.Port)
				}
				if !slices.Contains(open, n) {
					open = append(open, n)
				}
			}
		}
		slices.Sort(open)
		if !slices.Equal(open, want) {
			t.Errorf("the portcullis pods' NetworkPolicy opens ports %v, want the Service's %v", open, want)
		}
	}
	if !found {
		t.Errorf("no NetworkPolicy selects the portcullis pods %v", podLabels)
	}
	if cfg == nil {
		return
	}
	for _, route := range cfg.Routes {
		u, err := url.Parse(route.Upstream)
		if err != nil || isLoopback(u.Hostname()) {
			continue
		}
		app, _, _ := strings.Cut(u.Hostname(), ".") // the Service's name
		checkUpstreamPolicy(t, pols, app, podLabels)
	}
}

// checkUpstreamPolicy checks that a NetworkPolicy lets only portcullis pods
// reach the pods of the upstream Service app.
func checkUpstreamPolicy(t *testing.T, pols []networkPolicy, app string, podLabels map[string]string) {
	t.Helper()
	for _, p := range pols {
		if p.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != app {
			continue
		}
		if !slices.Contains(p.Spec.PolicyTypes, "Ingress") {
			t.Errorf("the NetworkPolicy of %s lacks policyType Ingress", app)
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.From) == 0 {
				t.Errorf("the NetworkPolicy of %s admits every source", app)
			}
			for _, f := range rule.From {
				if f.IPBlock != nil || f.PodSelector == nil || len(f.PodSelector.MatchLabels) == 0 || !subset(f.PodSelector.MatchLabels, podLabels) {
					t.Errorf("the NetworkPolicy of %s admits a source other than the portcullis pods", app)
				}
			}
		}
		return
	}
	t.Errorf("no NetworkPolicy lets only portcullis reach upstream %s (pods labelled app.kubernetes.io/name=%s)", app, app)
}

// checkPDB checks that a PodDisruptionBudget covers the pods.
func checkPDB(t *testing.T, r rendered, podLabels map[string]string) {
	t.Helper()
	for _, p := range all[podDisruptionBudget](t, r, "PodDisruptionBudget") {
		if len(p.Spec.Selector.MatchLabels) > 0 && subset(p.Spec.Selector.MatchLabels, podLabels) {
			return
		}
	}
	t.Errorf("no PodDisruptionBudget selects the pods %v", podLabels)
}

// checkSidecar checks that the app beside portcullis is reachable over
// loopback only and that portcullis routes there.
func checkSidecar(t *testing.T, spec podSpec, cfg *config.Config) {
	t.Helper()
	var apps []container
	for _, c := range spec.Containers {
		if c.Name != containerName {
			apps = append(apps, c)
		}
	}
	if len(apps) == 0 {
		t.Fatal("the sidecar pod has no app container beside portcullis")
	}
	for _, c := range apps {
		if len(c.Ports) > 0 {
			t.Errorf("app container %s declares ports; it should listen on loopback only", c.Name)
		}
		var addrs []string
		for _, e := range c.Env {
			if e.Value != nil {
				addrs = append(addrs, *e.Value)
			}
		}
		addrs = append(addrs, c.Args...)
		listen := ""
		for _, a := range addrs {
			if host, _, err := net.SplitHostPort(a); err == nil {
				if !isLoopback(host) {
					t.Errorf("app container %s is given the address %q, not a loopback one", c.Name, a)
				}
				listen = a
			}
		}
		if listen == "" {
			t.Errorf("app container %s is given no loopback listen address", c.Name)
		}
	}
	if cfg == nil {
		return
	}
	for _, route := range cfg.Routes {
		if u, err := url.Parse(route.Upstream); err != nil || !isLoopback(u.Hostname()) {
			t.Errorf("route %s goes to %s, not to the app on the pod's loopback", route.Name, route.Upstream)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
