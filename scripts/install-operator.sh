#!/usr/bin/env bash
# Installs the Helm chart with the real `helm install` into the cluster of
# $KUBECONFIG, the way a user would, and writes
# STATE_DIR/operator.kubeconfig: a kubeconfig carrying a token of the
# chart's ServiceAccount, so a locally run operator (scripts/start-operator.sh)
# has exactly the chart's RBAC.
#
#   scripts/install-operator.sh STATE_DIR
#
# 1. release `vaultsync` with the chart's defaults (CRDs included);
# 2. release `all-options` with charts/vaultsync/ci/all-options.yaml (every
#    value set), in a namespace of its own: every object it renders must be
#    accepted by the API server; then uninstalled again;
# 3. `helm upgrade` of release `vaultsync` to e2e/chart-values.yaml and a
#    free containerPort, which the local operator then serves on.
set -euo pipefail
state=${1:?usage: install-operator.sh STATE_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
chart=$root/charts/vaultsync
namespace=vaultsync-system

# established ARGS...: waits until the API server has established the CRDs
# ARGS name (`-f FILE` or `crd/NAME`...). `kubectl wait` fails at once,
# instead of waiting, when it reads a CRD whose status has no conditions yet
# (seen with ESO's large CRDs), so it is asked again.
established() {
  for _ in $(seq 30); do
    kubectl wait --for=condition=Established --timeout=60s "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  kubectl wait --for=condition=Established --timeout=10s "$@" >/dev/null
}

helm install vaultsync "$chart" --namespace "$namespace" --create-namespace >"$state/helm-install.log"
established crd/externalsecrets.vaultsync.dev crd/secretstores.vaultsync.dev crd/clustersecretstores.vaultsync.dev \
  crd/clusterexternalsecrets.vaultsync.dev

# The ServiceMonitor and PrometheusRule kinds the all-options release
# renders, and the Argo Rollout the rollout_restart test restarts: our own
# minimal CRDs stand in for the Prometheus Operator's and Argo Rollouts'.
for crds in "$root"/e2e/crds/*.yaml; do
  kubectl apply --server-side -f "$crds" >/dev/null
  established -f "$crds"
done
# ESO's own CRDs (v2.9.0, unmodified; e2e/eso/crds/README.md), as ESO's
# chart would have installed them: the release serves ESO's group
# (esoApi.enabled in e2e/chart-values.yaml).
for crds in "$root"/e2e/eso/crds/*.yaml; do
  kubectl apply --server-side -f "$crds" >/dev/null
  established -f "$crds"
done
helm install all-options "$chart" --namespace vaultsync-all-options --create-namespace \
  -f "$chart/ci/all-options.yaml" >"$state/helm-install-all-options.log"
helm get manifest all-options --namespace vaultsync-all-options >"$state/chart-all-options.yaml"
helm uninstall all-options --namespace vaultsync-all-options --wait >/dev/null
kubectl delete namespace vaultsync-all-options --wait=false >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
helm upgrade vaultsync "$chart" --namespace "$namespace" -f "$root/e2e/chart-values.yaml" \
  --set containerPort="$port" >"$state/helm-upgrade.log"
helm get manifest vaultsync --namespace "$namespace" >"$state/chart.yaml"
echo "127.0.0.1:$port" >"$state/operator-health-addr"

token=$(kubectl create token vaultsync --namespace "$namespace" --duration=24h)
server=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
umask 077
cat >"$state/operator.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: vaultsync
  user:
    token: $token
contexts:
- name: vaultsync
  context:
    cluster: local
    user: vaultsync
    namespace: $namespace
current-context: vaultsync
KUBECONFIG
echo "installed the chart (release vaultsync, namespace $namespace); operator kubeconfig: $state/operator.kubeconfig" >&2
