# Build, test and render the Kubernetes manifests. The Dockerfile runs the
# same build as `make build`.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
KUBECTL ?= kubectl
OVERLAYS := $(notdir $(wildcard deploy/overlays/*))

.PHONY: build test manifests

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/portcullis ./cmd/portcullis

test:
	go test -race ./...

# One file per overlay: bin/manifests/<overlay>.yaml.
manifests:
	@mkdir -p bin/manifests
	@set -e; for o in $(OVERLAYS); do \
		$(KUBECTL) kustomize deploy/overlays/$$o > bin/manifests/$$o.yaml.tmp; \
		mv bin/manifests/$$o.yaml.tmp bin/manifests/$$o.yaml; \
		echo "bin/manifests/$$o.yaml"; \
	done
