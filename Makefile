# vaultsync: `make demo` shows a secret flowing from OpenBao into Kubernetes;
# `make test` runs every check CI runs. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help test demo demo-down bench chaos tools lint unit crds check-crds helm-lint monitoring-check workflow-lint image e2e build fuzz node-test

help:
	@echo "make demo   - local control plane + OpenBao + operator, syncs examples/quickstart"
	@echo "make test   - fmt, clippy, module check, unit tests, CRD freshness, helm lint, image, 30s of fuzzing per target, e2e suite, node tier (root)"
	@echo "make bench  - sync 300 ExternalSecrets from scratch; prints time, Vault requests, memory"
	@echo "make chaos  - handover, a 60s API server outage, OpenBao down 3 min under 500 ExternalSecrets; prints figures"
	@echo "make image  - the operator image (static binary, no daemon) as target/image/vaultsync.oci.tar, checked"
	@echo "make node-test - root: the node tier alone: a real node (containerd, kubelet), the image in Pods installed by helm"

tools:
	@bash scripts/tools.sh >/dev/null

build:
	$(CARGO) build -p vaultsync

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	bash scripts/module-check.sh
	bash scripts/docs-check.sh

unit:
	$(CARGO) test --workspace --exclude vaultsync-e2e

# crds/ is the generated source of truth; the chart ships copies (its
# templates/crds.yaml renders them, so helm upgrade upgrades them), and
# docs/crd-reference.md, the field reference, is made from the same schemas.
crds:
	$(CARGO) run -q -p vaultsync -- crdgen --out crds --reference docs/crd-reference.md
	rm -f charts/vaultsync/files/crds/*.yaml
	cp crds/*.yaml charts/vaultsync/files/crds/

check-crds: crds
	@if [ -n "$$(git status --porcelain -- crds charts/vaultsync/files/crds docs/crd-reference.md)" ]; then \
	  git status --short -- crds charts/vaultsync/files/crds docs/crd-reference.md; \
	  echo "CRDs or their field reference are stale: run 'make crds' and commit the result"; exit 1; fi
	diff -r crds charts/vaultsync/files/crds

helm-lint: tools
	"$$(bash scripts/tools.sh --print)/helm" lint --strict charts/vaultsync
	bash scripts/chart-values-check.sh

# Alert rules (promtool: checked and unit-tested), the PrometheusRule,
# ServiceMonitor and dashboard the chart renders, the dashboard's metrics.
monitoring-check: tools
	bash scripts/monitoring-check.sh

# The release workflow cannot run here; actionlint at least proves it well-formed.
workflow-lint: tools
	"$$(bash scripts/tools.sh --print)/actionlint" .github/workflows/*.yaml

image:
	bash scripts/image.sh

# The node tier (docs/testing.md#the-node-tier): env.sh up, node.sh up
# (kubelet, containerd, kube-proxy, CoreDNS; root), the README's kind
# install and the scenarios of e2e/node-tier/ on real Pods, both downs.
node-test: tools target/image/vaultsync.oci.tar
	bash scripts/node-test.sh

# The image only when the archive is missing or older than its sources.
IMAGE_SOURCES := Cargo.toml Cargo.lock Containerfile scripts/image.sh $(shell find crates -type f 2>/dev/null)
target/image/vaultsync.oci.tar: $(IMAGE_SOURCES)
	bash scripts/image.sh

# Coverage-guided fuzzing of the template engine for a bounded time per
# target, from the committed corpus (which `make unit` replays on stable);
# the long runs are recorded in fuzz/STATS.md. FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 30
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

e2e: tools
	bash scripts/e2e.sh

test: tools lint unit check-crds helm-lint monitoring-check workflow-lint image fuzz e2e node-test

demo: tools
	bash scripts/demo.sh

bench: tools
	bash scripts/bench.sh

# The long versions of the day-2 scenarios `make test` runs short: the
# leadership handover and an API server outage of 60s, then OpenBao down for
# 3 minutes under 500 ExternalSecrets (figures printed).
chaos: tools
	VAULTSYNC_OUTAGE_SECS=60 E2E_FILTER=handover:: bash scripts/e2e.sh
	VAULTSYNC_VAULT_OUTAGE=500,180 E2E_FILTER=vault_outage bash scripts/e2e.sh

demo-down:
	bash e2e/env.sh down .state/demo
