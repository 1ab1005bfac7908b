#!/usr/bin/env bash
# Installs the Helm chart (CRDs, ServiceAccount, RBAC, Deployment) into the
# cluster of $KUBECONFIG, validating it server-side first, and writes
# STATE_DIR/operator.kubeconfig: a kubeconfig carrying a token of the
# chart's ServiceAccount, so a locally run operator has exactly the chart's
# RBAC.
#
#   scripts/install-operator.sh STATE_DIR
set -euo pipefail
state=${1:?usage: install-operator.sh STATE_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
namespace=vaultsync-system

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
helm template vaultsync "$root/charts/vaultsync" --namespace "$namespace" --include-crds >"$state/chart.yaml"
# Server-side validation of every manifest the chart renders, with the
# defaults and with every option set (charts/vaultsync/ci/all-options.yaml).
kubectl apply --server-side --dry-run=server -f "$state/chart.yaml" >/dev/null
helm template all-options "$root/charts/vaultsync" --namespace "$namespace" \
  -f "$root/charts/vaultsync/ci/all-options.yaml" >"$state/chart-all-options.yaml"
kubectl apply --server-side --dry-run=server -f "$state/chart-all-options.yaml" >/dev/null
kubectl apply --server-side --force-conflicts -f "$state/chart.yaml" >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/externalsecrets.vaultsync.dev crd/secretstores.vaultsync.dev crd/clustersecretstores.vaultsync.dev \
  crd/clusterexternalsecrets.vaultsync.dev >/dev/null

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
echo "installed the chart into namespace $namespace; operator kubeconfig: $state/operator.kubeconfig" >&2
