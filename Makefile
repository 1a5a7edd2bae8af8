# netconform — Kubernetes Service data-plane conformance.
#
#   make test               the project's own tests (no cluster)
#   make test-networking    the suites on a live cluster (created, or $KUBECONFIG's)
#
# Variables: CLUSTER_CONFIG (a cell: clusters/<minor>/<mode>.yaml), K8S_VERSION,
# LABEL_FILTER, FOCUS, KEEP_CLUSTER=1, PROCS (parallel spec processes), KUBECONFIG, KIND_EXPERIMENTAL_PROVIDER=podman,
# NETCONFORM_OFFLINE=1 (build node images even when kindest/node can be pulled).

SHELL := /bin/bash
GO ?= go
NETCONFORM := $(GO) run ./cmd/netconform
CLUSTER_CONFIG ?=
K8S_VERSION ?= v1.37.2
export CLUSTER_CONFIG LABEL_FILTER FOCUS KEEP_CLUSTER CLUSTER_NAME FAULTS PROCS

.PHONY: all test test-networking test-mutants host node-image images cluster cluster-delete clean vet fuzz bench

all: test

## test: unit, parser, tracer and fixture-rendering tests, and actionlint on the workflows; no cluster, no engine needed.
# The suites under suites/ need a live cluster (make test-networking); here they are only vetted
# (their harness, suites/internal, has unit tests of its own, run here).
test:
	$(GO) vet ./...
	$(GO) test $$($(GO) list ./... | grep -v /suites/) ./suites/internal/...
	$(GO) tool actionlint .github/workflows/*.yaml

## test-networking: host bootstrap, node image, cluster (unless $$KUBECONFIG), every suite, reports/latest.
test-networking:
	$(NETCONFORM) run

## test-mutants: roll kube-proxies with one known fault each onto the cluster (CLUSTER_CONFIG's or
## $$KUBECONFIG's) and check that the specs of each fault's area fail; FAULTS=a,b picks faults.
test-mutants:
	$(NETCONFORM) mutants

## host: make sure the container engine runs (and the runtime shim where needed).
host:
	$(NETCONFORM) host

## node-image: the kind node image for K8S_VERSION (upstream kindest/node if pullable, else built offline).
node-image:
	$(NETCONFORM) node-image --version $(K8S_VERSION)

## images: the node image for CLUSTER_CONFIG's cell (or K8S_VERSION) and the probe image.
images: node-image
	$(NETCONFORM) probe-image

## cluster: create or reuse the cluster for CLUSTER_CONFIG; the last line is 'export KUBECONFIG=...'.
cluster:
	@$(NETCONFORM) cluster create

## cluster-delete: delete the cluster for CLUSTER_CONFIG.
cluster-delete:
	$(NETCONFORM) cluster delete

## clean: delete every netconform cluster and the project's outputs (the build cache survives; see docs).
clean:
	-$(NETCONFORM) clean
	rm -rf _output reports/[0-9]* reports/latest

fuzz:
	$(GO) test ./pkg/dataplane/iptables -run '^$$' -fuzz=FuzzParse -fuzztime=60s
	$(GO) test ./pkg/dataplane/nftables -run '^$$' -fuzz=FuzzParseJSON -fuzztime=60s

bench:
	$(GO) test ./pkg/dataplane/... -run '^$$' -bench . -benchmem
