// Package deploy holds portcullis' Kubernetes manifests: a kustomize base
// and the overlays sidecar (portcullis beside the app in one pod), gateway
// (a standalone Deployment in front of an in-cluster Service) and issuer
// (the gateway with the built-in OpenID issuer), and the same three shapes
// as a Helm chart (helm/portcullis, with one values file per shape beside
// it). README.md walks through them.
//
// The package has no code. Its test renders every overlay with
// "kubectl kustomize" and every chart shape with "helm template" (after
// "helm lint --strict"), and checks what any pod that runs portcullis must
// hold to: a hardened security context, probes on the admin port, resource
// requests and limits, GOMEMLIMIT from the memory limit, scrape
// annotations, a shutdown delay, a grace period longer than the configured
// shutdown delay and grace, signing keys from a Secret, a Service and a NetworkPolicy that open
// portcullis' ports and nothing else, and a configuration that
// [github.com/portcullis-dev/portcullis/config.Parse] accepts.
package deploy
