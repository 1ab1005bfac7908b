#!/usr/bin/env bash
# The node tier, first slice (issue 21): the operator image of `make image`
# really runs in a Pod of the node of e2e/node.sh, installed by the real
# `helm install` of charts/vaultsync, and syncs from OpenBao.
#
#   e2e/node-tier.sh STATE_DIR     (after env.sh up and node.sh up; root)
#
# 1. imports target/image/vaultsync.oci.tar (VAULTSYNC_IMAGE_ARCHIVE) into
#    containerd's k8s.io namespace as localhost/vaultsync/vaultsync:dev;
# 2. `helm install` with that image and pullPolicy Never, chart defaults
#    otherwise (the Pod finds the API server through Service kubernetes,
#    which node.sh points at the node IP);
# 3. checks the Pod: Ready through its readiness probe, no restarts, the
#    Lease held by it; its security context as the API has it AND as the
#    kernel runs the process (read on the host from /proc: UID/GID 65532,
#    no_new_privs, no capabilities, seccomp, a read-only root mount that
#    really refuses a write);
# 4. a SecretStore with Kubernetes auth against OpenBao at $NODE_BAO_ADDR
#    (node.sh's socat on the node IP) and an ExternalSecret: the first value
#    arrives, then a changed one after a force-sync (the refreshInterval is
#    1h, so only the force-sync can bring it).
# Prints "pass ..." / "FAIL ..." per check, the times from `helm install`
# to Ready and to the first sync, and exits non-zero when anything failed,
# after dumping diagnostics (pod description, events, the operator's logs,
# kubelet and containerd logs).
set -euo pipefail

state=${1:?usage: $0 STATE_DIR}
state=$(cd "$state" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$state/env"
# shellcheck disable=SC1091
source "$state/node/env"

archive=${VAULTSYNC_IMAGE_ARCHIVE:-$root/target/image/vaultsync.oci.tar}
repository=localhost/vaultsync/vaultsync
tag=dev
image=$repository:$tag
release=vaultsync
op_ns=vaultsync-system
ns=node-tier
timeout=${VAULTSYNC_NODE_TIER_TIMEOUT:-180}
ctr_k8s=(ctr --address "$CONTAINERD_ADDRESS" -n k8s.io)

passed=0 failed=0
pass() { echo "pass $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
# A failed step that later ones depend on: stop here (the EXIT trap
# dumps diagnostics).
fatal() {
  fail "$*"
  exit 1
}
k() { kubectl --request-timeout=20s "$@"; }
t() { printf '%s' "$((SECONDS - t_install))"; }

diagnostics() {
  echo "---- diagnostics ----"
  k get pods -A -o wide 2>&1 || true
  k describe pods -n "$op_ns" 2>&1 | tail -60 || true
  echo "-- events in $op_ns and $ns"
  k get events -n "$op_ns" --sort-by=.lastTimestamp 2>&1 | tail -20 || true
  k get events -n "$ns" --sort-by=.lastTimestamp 2>&1 | tail -20 || true
  echo "-- operator logs"
  k logs -n "$op_ns" -l "app.kubernetes.io/instance=$release" --tail=60 --all-containers 2>&1 || true
  k logs -n "$op_ns" -l "app.kubernetes.io/instance=$release" --tail=30 --previous 2>/dev/null || true
  echo "-- externalsecret / secretstore"
  k describe externalsecret,secretstore -n "$ns" 2>&1 | tail -40 || true
  echo "-- images in containerd (k8s.io)"
  "${ctr_k8s[@]}" images ls -q 2>/dev/null | tr '\n' ' ' || true
  echo
  echo "-- kubelet log (tail, lines cut at 400 characters)"
  tail -20 "$state/logs/kubelet.log" 2>&1 | cut -c1-400 || true
  echo "-- containerd log (tail, without the cgroup v1 notices)"
  grep -v 'support for cgroup v1 is deprecated' "$state/logs/containerd.log" 2>&1 | tail -20 | cut -c1-400 || true
  echo "---- end of diagnostics ----"
}
finish() {
  local rc=$?
  trap - EXIT
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] || { diagnostics || true; }
  echo "node-tier: $passed passed, $failed failed"
  [ "$rc" -ne 0 ] && exit "$rc"
  [ "$failed" -eq 0 ]
}
trap finish EXIT

# secret_value NAME KEY: the decoded value of a key of a Secret in $ns.
secret_value() {
  k get secret -n "$ns" "$1" -o "jsonpath={.data.$2}" 2>/dev/null | base64 -d 2>/dev/null || true
}
# wait_value NAME KEY WANT SECONDS: until the Secret holds WANT.
wait_value() {
  local deadline=$((SECONDS + $4))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(secret_value "$1" "$2")" = "$3" ] && return 0
    sleep 0.5
  done
  return 1
}

# A rerun on the same STATE_DIR starts over.
helm uninstall "$release" -n "$op_ns" --wait >/dev/null 2>&1 || true
k delete namespace "$ns" --ignore-not-found --wait=true >/dev/null 2>&1 || true

# 1. The image, imported as `kind load image-archive` would. ctr reads OCI
# archives itself (transfer API, unpacked for this platform), but buildah
# named the image `vaultsync:dev` in the archive's index.json
# (org.opencontainers.image.ref.name): ctr imports that as the bare name
# `vaultsync:dev`, which containerd's CRI then looks up as
# docker.io/library/vaultsync:dev and does not find (seen: "failed to get
# image from containerd ... not found" at CreateContainer), and ctr's
# --base-name skips it (not a bare tag). So the tier imports a copy whose
# ref.name is the bare tag, with --base-name our repository. Only index.json
# differs in the copy; the blobs, and so the image's digests, are the same.
[ -f "$archive" ] || fatal "image archive $archive missing (make image)"
retagged=$state/node/images/vaultsync-$tag.oci.tar
mkdir -p "$(dirname "$retagged")"
python3 - "$archive" "$retagged" "$tag" <<'PY'
import io, json, sys, tarfile
src, dst, tag = sys.argv[1:]
with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
    for member in tin:
        data = tin.extractfile(member) if member.isfile() else None
        if member.name.lstrip("./") == "index.json":
            index = json.load(data)
            assert len(index["manifests"]) == 1, "one image expected in the archive"
            index["manifests"][0].setdefault("annotations", {})["org.opencontainers.image.ref.name"] = tag
            raw = json.dumps(index).encode()
            member.size = len(raw)
            data = io.BytesIO(raw)
        tout.addfile(member, data)
PY
"${ctr_k8s[@]}" images rm "$image" >/dev/null 2>&1 || true
if ! out=$("${ctr_k8s[@]}" images import --base-name "$repository" "$retagged" 2>&1); then
  fatal "ctr images import $retagged: $out"
fi
if "${ctr_k8s[@]}" images ls -q 2>/dev/null | grep -qxF "$image"; then
  pass "image $image imported from $(basename "$archive") ($(du -h "$archive" | cut -f1)) into containerd's k8s.io namespace"
else
  fatal "image $image not in containerd after import: $out / $("${ctr_k8s[@]}" images ls -q 2>/dev/null | tr '\n' ' ')"
fi

# 2. OpenBao as Pods reach it (node.sh's forward on the node IP).
[ -n "${NODE_BAO_ADDR:-}" ] || fatal "NODE_BAO_ADDR missing from $state/node/env (node.sh too old?)"
if curl -fsS --max-time 5 "$NODE_BAO_ADDR/v1/sys/health" >/dev/null; then
  pass "OpenBao answers on the node IP: $NODE_BAO_ADDR"
else
  fatal "OpenBao not reachable at $NODE_BAO_ADDR"
fi

# OpenBao side of the sync: a policy, a Kubernetes auth role for
# ServiceAccount $ns/app (audience vault, as the operator requests) and the
# first value. Written before helm install so the sync is not waiting on it.
first=first-$RANDOM$RANDOM second=second-$RANDOM$RANDOM
printf 'path "secret/data/node-tier/*" { capabilities = ["read"] }\n' |
  bao policy write node-tier - >/dev/null
bao write auth/kubernetes/role/node-tier bound_service_account_names=app \
  bound_service_account_namespaces="$ns" audience=vault token_policies=node-tier token_ttl=10m >/dev/null
bao kv put -mount=secret node-tier/db password="$first" >/dev/null

# 3. helm install, chart defaults but the image.
t_install=$SECONDS
helm install "$release" "$root/charts/vaultsync" --namespace "$op_ns" --create-namespace \
  --set image.repository="$repository" --set image.tag="$tag" --set image.pullPolicy=Never \
  >"$state/node-tier-helm.log" 2>&1 || fatal "helm install: $(cat "$state/node-tier-helm.log")"
pass "helm install $release (image $image, pullPolicy Never) in $op_ns"

pod=
deadline=$((SECONDS + 60))
while [ -z "$pod" ] && [ "$SECONDS" -lt "$deadline" ]; do
  pod=$(k get pods -n "$op_ns" -l "app.kubernetes.io/instance=$release" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  [ -n "$pod" ] || sleep 0.5
done
[ -n "$pod" ] || fatal "no operator Pod $(t)s after helm install"
if k wait -n "$op_ns" --for=condition=Ready "pod/$pod" --timeout="${timeout}s" >/dev/null; then
  t_ready=$(t)
  pass "pod $pod Ready ${t_ready}s after helm install (kubelet's readiness probe GET /ready)"
else
  fatal "pod $pod not Ready within ${timeout}s: $(k get pod -n "$op_ns" "$pod" -o wide 2>&1 | tail -1)"
fi
jp() { k get pod -n "$op_ns" "$pod" -o "jsonpath=$1"; }
# What the kubelet reports: the probe made it ready, nothing restarted,
# and it runs our image.
got=$(jp '{.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].image} {.spec.containers[0].readinessProbe.httpGet.path}')
[ "$got" = "true 0 $image /ready" ] && pass "container ready, 0 restarts, image $image, readiness probe /ready" ||
  fail "container status (ready restarts image probe): $got"
node=$(jp '{.spec.nodeName}') ip=$(jp '{.status.podIP}')
[ "$node" = "$NODE_NAME" ] && [[ $ip == "${POD_CIDR%.*/*}".* ]] && pass "runs on node $node with Pod IP $ip" ||
  fail "pod on node '$node' with IP '$ip' (want $NODE_NAME, $POD_CIDR)"

# The security context as the API server has it.
got=$(jp '{.spec.securityContext.runAsUser}:{.spec.securityContext.runAsGroup} {.spec.securityContext.runAsNonRoot} {.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.containers[0].securityContext.allowPrivilegeEscalation} {.spec.containers[0].securityContext.capabilities.drop}')
[ "$got" = '65532:65532 true true false ["ALL"]' ] &&
  pass "pod spec: runAsUser:Group 65532:65532, runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, drop ALL" ||
  fail "pod spec security context: $got"

# ... and as the kernel runs it: containerd's task for the container, a
# child of our runc shim, read from the host's /proc.
cid=$(jp '{.status.containerStatuses[0].containerID}')
cid=${cid#containerd://}
pid=$("${ctr_k8s[@]}" tasks ls 2>/dev/null | awk -v id="$cid" '$1 == id {print $2}')
if [ -z "$pid" ] || [ ! -r "/proc/$pid/status" ]; then
  fail "no running containerd task for container $cid"
else
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  ppid=$(awk '$1 == "PPid:" {print $2}' "/proc/$pid/status")
  shim=$(tr '\0' ' ' <"/proc/$ppid/cmdline" 2>/dev/null || true)
  if [[ $cmd == "/vaultsync run "* && $shim == *containerd-shim-runc-v2*"-address $CONTAINERD_ADDRESS "* ]]; then
    pass "process $pid '$cmd' is a child of our containerd shim (pid $ppid)"
  else
    fail "process $pid: '$cmd', parent $ppid: '$shim'"
  fi
  ids=$(awk '$1 == "Uid:" || $1 == "Gid:" {printf "%s %s %s %s %s;", $1, $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$ids" = "Uid: 65532 65532 65532 65532;Gid: 65532 65532 65532 65532;" ] &&
    pass "process runs as UID/GID 65532 (real, effective, saved, fs): /proc/$pid/status" ||
    fail "process ids: $ids"
  sec=$(awk '$1 == "NoNewPrivs:" || $1 == "CapEff:" || $1 == "CapBnd:" || $1 == "Seccomp:" {printf "%s %s ", $1, $2}' "/proc/$pid/status")
  [ "$sec" = "CapEff: 0000000000000000 CapBnd: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 " ] &&
    pass "process has no capabilities, no_new_privs, a seccomp filter: $sec" ||
    fail "process privileges: $sec"
  rootmnt=$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo")
  [[ ,$rootmnt, == *,ro,* ]] && pass "root mount of the container is read-only ($rootmnt)" ||
    fail "root mount options: '$rootmnt'"
  # A write through the container's own root (/proc/PID/root), as root on
  # the host: only a read-only mount refuses it.
  if err=$(: 2>&1 >"/proc/$pid/root/node-tier-write-probe"); then
    rm -f "/proc/$pid/root/node-tier-write-probe"
    fail "a write to the container's root filesystem succeeded"
  elif [[ $err == *"Read-only file system"* ]]; then
    pass "a write to the container's root filesystem fails: Read-only file system"
  else
    fail "a write to the container's root filesystem failed otherwise: $err"
  fi
fi

# The operator in the Pod leads (a Lease through the in-cluster API server).
holder=$(k get lease -n "$op_ns" "$release-leader" -o jsonpath='{.spec.holderIdentity}' 2>&1 || true)
[ "$holder" = "$pod" ] && pass "Lease $release-leader held by $pod" || fail "Lease $release-leader holder: '$holder' (want $pod)"

# 4. A sync from OpenBao, through the node IP.
k create namespace "$ns" >/dev/null
k create serviceaccount app -n "$ns" >/dev/null
# No caBundle: the image's root filesystem has no CA certificates, and
# the store must still work (this tier found every such store failing;
# the client now falls back to the roots compiled into the binary).
k apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: vaultsync.dev/v1alpha1
kind: SecretStore
metadata: {name: openbao}
spec:
  provider:
    openBao:
      server: $NODE_BAO_ADDR
      # Plain http to the dev server on this machine, acknowledged.
      allowInsecureHttp: true
      path: secret
      version: v2
      auth:
        kubernetes:
          role: node-tier
          serviceAccountRef: {name: app}
---
apiVersion: vaultsync.dev/v1alpha1
kind: ExternalSecret
metadata: {name: db}
spec:
  # Long: the second value can only come from the force-sync.
  refreshInterval: 1h
  secretStoreRef: {name: openbao, kind: SecretStore}
  target: {name: db, creationPolicy: Owner}
  data:
  - secretKey: password
    remoteRef: {key: node-tier/db, property: password}
EOF
if wait_value db password "$first" "$timeout"; then
  t_sync=$(t)
  pass "Secret $ns/db has the first value from OpenBao ${t_sync}s after helm install"
else
  fatal "Secret $ns/db: '$(secret_value db password)', not '$first' within ${timeout}s"
fi
got=$(k get externalsecret -n "$ns" db -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}')
[ "$got" = "True SecretSynced" ] && pass "ExternalSecret $ns/db Ready: $got" || fail "ExternalSecret $ns/db condition: $got"

bao kv put -mount=secret node-tier/db password="$second" >/dev/null
# Without the force-sync nothing reads again for an hour: the old value
# stays (so the change below is the force-sync's doing).
sleep 2
got=$(secret_value db password)
[ "$got" = "$first" ] && pass "Secret $ns/db unchanged 2s after the OpenBao write (refreshInterval 1h)" ||
  fail "Secret $ns/db changed without a force-sync: '$got'"
t_force=$SECONDS
k annotate externalsecret -n "$ns" db "vaultsync.dev/force-sync=$(date +%s%N)" --overwrite >/dev/null
if wait_value db password "$second" 60; then
  pass "Secret $ns/db has the changed value $((SECONDS - t_force))s after the force-sync annotation"
else
  fail "Secret $ns/db after force-sync: '$(secret_value db password)', not '$second' within 60s"
fi

# Still the same container: nothing above restarted it.
got=$(jp '{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}')
[ "$got" = "0 true" ] && pass "operator still Ready, 0 restarts" || fail "operator after the syncs (restarts ready): $got"

echo "node-tier: helm install -> Ready ${t_ready}s, -> first sync ${t_sync}s"
