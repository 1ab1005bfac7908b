#!/usr/bin/env bash
# `make demo`: a local control plane and OpenBao, the operator running with
# the chart's RBAC, a secret seeded into OpenBao, examples/quickstart applied,
# and the synced Secret shown. Everything keeps running afterwards so you can
# play with kubectl; `make demo-down` stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.state/demo
# OpenBao's port; the quickstart's SecretStore is pointed at it.
port=${BAO_PORT:-8200}

bash "$root/e2e/env.sh" down "$state" >/dev/null 2>&1 || true
rm -rf "$state"
mkdir -p "$state"
echo "==> building vaultsync (the first build takes a few minutes)"
(cd "$root" && cargo build -p vaultsync)
BAO_PORT=$port bash "$root/e2e/env.sh" up "$state"
# The vaultsync binary joins kubectl and bao on the PATH of the demo's env.
echo "export PATH=$(printf '%q' "$root/target/debug"):\$PATH" >>"$state/env"
# shellcheck disable=SC1091
source "$state/env"
bash "$root/scripts/install-operator.sh" "$state"
bash "$root/scripts/start-operator.sh" "$state"

echo "==> seeding secret/quickstart/db in OpenBao"
bao kv put -mount=secret quickstart/db username=app password="demo-$(date +%s)" >/dev/null

echo "==> applying examples/quickstart/ in namespace default"
kubectl create secret generic vault-token --namespace default --from-literal=token="$BAO_TOKEN" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The quickstart names port 8200; BAO_PORT moves it.
for manifest in "$root"/examples/quickstart/*.yaml; do
  sed "s|http://127.0.0.1:8200|http://127.0.0.1:$port|" "$manifest"
  echo "---"
done | kubectl apply --namespace default -f -

echo "==> waiting for the Secret db-credentials"
for _ in $(seq 1 60); do
  kubectl get secret db-credentials --namespace default >/dev/null 2>&1 && break
  sleep 1
done
kubectl get externalsecrets.vaultsync.dev --namespace default
echo
echo "Secret default/db-credentials, decoded:"
kubectl get secret db-credentials --namespace default -o go-template='{{range $k, $v := .data}}  {{$k}}: {{$v | base64decode}}{{"\n"}}{{end}}'
echo
echo "==> README.md \"A first sync\", as written (namespace my-app)"
bash "$root/scripts/readme-block.sh" first-sync | bash -euo pipefail
cat <<EOT

The demo keeps running. Try:
  source $state/env        # KUBECONFIG, BAO_ADDR, BAO_TOKEN, and kubectl/bao/vaultsync on PATH
  kubectl get vses,vss -A
  bao kv put -mount=secret quickstart/db username=app password=rotated
  (the Secret follows within 15s; operator log: $state/logs/operator.log)
Stop everything with: make demo-down
KUBECONFIG=$state/kubeconfig
EOT
