# What scripts/tools.sh and scripts/node-tools.sh share: the cache of built
# tools and how a Go program is built into it. Sourced; the caller sets
# `root` (the repository) and KUBERNETES_VERSION first.
#
#   cache, bin    the cache outside the repository, and its bin dir
#   go_tool       builds one pinned Go program into the cache, once
#   kube_stamp    the -X flags that stamp Kubernetes' version
#   check_stamps  fails when a built tool does not say its pinned version

cache=${VAULTSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vaultsync}
bin="$cache/bin"

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
kube_stamp=$(kube_version_flags | tr '\n' ' ')

# go_tool NAME VERSION MODULE_DIR PACKAGE [LDFLAGS [TAGS]]: builds PACKAGE
# from the pinned module in e2e/toolchain/MODULE_DIR into
# $cache/NAME-VERSION-RECIPE and links it into $bin.
go_tool() {
  local name=$1 version=$2 dir=$3 pkg=$4 stamp=${5:-} tags=${6:-}
  local out="$cache/$name-$version-$RECIPE"
  if [ ! -x "$out" ]; then
    log "building $name $version from Go modules (first run only)"
    local t0=$SECONDS
    (cd "$root/e2e/toolchain/$dir" &&
      CGO_ENABLED=0 go build -mod=mod -trimpath -tags="$tags" -ldflags="-s -w $stamp" -o "$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
    log "built $name in $((SECONDS - t0))s"
  fi
  ln -sf "$out" "$bin/$name"
}

# check_stamps "COMMAND:VERSION"...: the stamps are what a bug report
# quotes; check they took.
check_stamps() {
  local check command want got
  for check in "$@"; do
    command=${check%%:*} want=${check##*:}
    # shellcheck disable=SC2086
    got=$("$bin/"$command 2>&1)
    got=${got%%$'\n'*}
    [[ $got == *"$want"* ]] || { log "$command says '$got', expected $want"; exit 1; }
  done
}
