#!/usr/bin/env bash
# `make demo`: a local control plane and OpenBao, the operator running with
# the chart's RBAC, a secret seeded into OpenBao, examples/quickstart applied,
# and the synced Secret shown. Everything keeps running afterwards so you can
# play with kubectl; `make demo-down` stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.state/demo

bash "$root/e2e/env.sh" down "$state" >/dev/null 2>&1 || true
rm -rf "$state"
mkdir -p "$state"
(cd "$root" && cargo build -q -p vaultsync)
# The quickstart's SecretStore points at OpenBao on port 8200.
BAO_PORT=8200 bash "$root/e2e/env.sh" up "$state"
# shellcheck disable=SC1091
source "$state/env"
bash "$root/scripts/install-operator.sh" "$state"
bash "$root/scripts/start-operator.sh" "$state"

echo "==> seeding secret/quickstart/db in OpenBao"
bao kv put -mount=secret quickstart/db username=app password="demo-$(date +%s)" >/dev/null

echo "==> applying examples/quickstart/ in namespace default"
kubectl create secret generic vault-token --namespace default --from-literal=token="$BAO_TOKEN" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --namespace default -f "$root/examples/quickstart/"

echo "==> waiting for the Secret db-credentials"
for _ in $(seq 1 60); do
  kubectl get secret db-credentials --namespace default >/dev/null 2>&1 && break
  sleep 1
done
kubectl get externalsecrets.vaultsync.dev --namespace default
echo
echo "Secret default/db-credentials, decoded:"
kubectl get secret db-credentials --namespace default -o go-template='{{range $k, $v := .data}}  {{$k}}: {{$v | base64decode}}{{"\n"}}{{end}}'
cat <<EOT

The demo keeps running. Try:
  source $state/env        # KUBECONFIG, BAO_ADDR, BAO_TOKEN, and kubectl/bao on PATH
  kubectl get vses,vss -A
  bao kv put -mount=secret quickstart/db username=app password=rotated
  (the Secret follows within 15s; operator log: $state/logs/operator.log)
Stop everything with: make demo-down
KUBECONFIG=$state/kubeconfig
EOT
