#!/usr/bin/env bash
# Installs what e2e/node.sh needs to run a real node next to the control
# plane of e2e/env.sh, pinned, into the same cache as scripts/tools.sh:
#
#   kubelet, kube-proxy,        built from k8s.io/kubernetes at the control
#   kube-scheduler              plane's version (KUBERNETES_VERSION of
#                               scripts/tools.sh, same module dir, same stamp)
#   containerd, ctr,            built from github.com/containerd/containerd/v2
#   containerd-shim-runc-v2     (e2e/toolchain/containerd)
#   coredns                     built from github.com/coredns/coredns with
#                               only the plugins the node's cluster DNS
#                               needs (e2e/toolchain/coredns/main.go; no
#                               forward plugin: e2e/lib/cluster-dns.sh)
#   runc, CNI plugins, iptables, conntrack, busybox-static, buildah, socat
#                               Debian's packages, installed when missing;
#                               the versions found are checked against the
#                               ones below and written to $cache/node-debs.txt
#
#   scripts/node-tools.sh            install what is missing, print the bin dir
#   scripts/node-tools.sh --print    print the bin dir only
#   scripts/node-tools.sh --coredns  build coredns only (when missing), print
#                                    the bin dir (e2e/cluster-dns-check.sh)
#
# Build times on the 2-core machine with other builds running: cold Go
# cache kubelet ~13 min, kube-proxy ~6 min, containerd ~3 min; with the
# cache warm from scripts/tools.sh's builds kubelet ~70 s, kube-proxy and
# kube-scheduler under 100 s; coredns ~2 min with an empty Go build cache,
# ~1 min with the cache warm from the Kubernetes builds. See
# docs/node-prototype.md.
set -euo pipefail

# The control plane's version: one place, scripts/tools.sh.
root=$(cd "$(dirname "$0")/.." && pwd)
KUBERNETES_VERSION=$(sed -n 's/^KUBERNETES_VERSION=//p' "$root/scripts/tools.sh")
# containerd 2.x: the kubelet takes its cgroup driver from the CRI
# RuntimeConfig RPC (containerd >= 2.0); kubelet 1.37 still falls back
# without it but announces the end of that for 1.38. Newest 2.x the Go
# module proxy served on 2026-12-02.
CONTAINERD_VERSION=v2.4.2
# CoreDNS: newest the Go module proxy served on 2026-12-02; the same version
# is required in e2e/toolchain/coredns/go.mod (check_stamps below fails when
# the two differ: CoreDNS's version is a constant of its module).
COREDNS_VERSION=v1.15.0
# Debian bookworm's versions, as installed when this was written. A point
# release of Debian may bump them: then the script says so and goes on.
DEBS=(
  runc=1.1.5+ds1-1+deb12u1
  containernetworking-plugins=1.1.1+ds1-3+b5
  iptables=1.8.9-2
  conntrack=1:1.4.7-1+b2
  busybox-static=1:1.35.0-4+deb12u1+b1
  buildah=1.28.2+ds1-3+deb12u1+b3
  socat=1.7.4.4-2
)

log() { echo "node-tools: $*" >&2; }
# shellcheck source=scripts/lib/go-tools.sh
. "$root/scripts/lib/go-tools.sh"

if [ "${1:-}" = "--print" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"

# CoreDNS for the node's cluster DNS, from our own main package in
# e2e/toolchain/coredns (CoreDNS's way of a custom plugin set); without cgo
# like every tool here.
build_coredns() {
  go_tool coredns "$COREDNS_VERSION" coredns vaultsync.dev/e2e/toolchain/coredns \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  check_stamps "coredns -version:CoreDNS-${COREDNS_VERSION#v}"
}
if [ "${1:-}" = "--coredns" ]; then
  build_coredns
  echo "$bin"
  exit 0
fi

go_tool kubelet "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kubelet "$kube_stamp"
go_tool kube-proxy "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-proxy "$kube_stamp"
# e2e/env.sh runs no scheduler (nothing ran in a Pod); a node needs one.
go_tool kube-scheduler "$KUBERNETES_VERSION" k8s k8s.io/kubernetes/cmd/kube-scheduler "$kube_stamp"

# containerd without cgo: the btrfs snapshotter needs cgo and is left out
# (no_btrfs says so explicitly); overlayfs and native remain. The shim is
# looked up on PATH by containerd, so it sits in $bin beside it.
ctrd_stamp="-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
ctrd_stamp+=" -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
for c in containerd ctr containerd-shim-runc-v2; do
  go_tool "$c" "$CONTAINERD_VERSION" containerd "github.com/containerd/containerd/v2/cmd/$c" "$ctrd_stamp" no_btrfs
done

check_stamps "kubelet --version:$KUBERNETES_VERSION" "kube-proxy --version:$KUBERNETES_VERSION" \
  "containerd --version:$CONTAINERD_VERSION"
build_coredns

# Debian's packages: installed when missing, unpinned (an old point version
# leaves the archive once a security update lands), versions recorded.
missing=()
for d in "${DEBS[@]}"; do
  name=${d%%=*}
  dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'ok installed' || missing+=("$name")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
: >"$cache/node-debs.txt.tmp"
for d in "${DEBS[@]}"; do
  name=${d%%=*} want=${d#*=}
  got=$(dpkg-query -W -f='${Version}' "$name")
  echo "$name=$got" >>"$cache/node-debs.txt.tmp"
  [ "$got" = "$want" ] || log "note: $name is $got (written for $want)"
done
mv "$cache/node-debs.txt.tmp" "$cache/node-debs.txt"

echo "$bin"
