# shellcheck shell=bash
# Shared by the node tier's scenarios (e2e/node-tier/*.sh), which
# e2e/node-tier.sh sources in order into one shell: they share the counters,
# the names below and what earlier scenarios set up.

repository=localhost/vaultsync/vaultsync
tag=dev
image=$repository:$tag
release=vaultsync
op_ns=vaultsync-system
ns=node-tier
timeout=${VAULTSYNC_NODE_TIER_TIMEOUT:-180}
test_app=${TEST_APP_IMAGE:-localhost/vaultsync/test-app:local}
ctr_k8s=(ctr --address "$CONTAINERD_ADDRESS" -n k8s.io)
operator_selector="app.kubernetes.io/name=vaultsync,app.kubernetes.io/instance=$release"

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
# check DESCRIPTION WANT GOT: pass when GOT is WANT.
check() {
  if [ "$3" = "$2" ]; then pass "$1: $3"; else fail "$1: got '$3', want '$2'"; fi
}

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
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  while [ "$SECONDS" -lt "$deadline" ]; do
    "$@" && return 0
    sleep 0.5
  done
  return 1
}
# lease_holder: who holds the operator's Lease now.
lease_holder() {
  k get lease -n "$op_ns" "$release-leader" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true
}
# pods NAMESPACE SELECTOR [ready]: names of the Pods that are not being
# deleted (and, with `ready`, whose Ready condition is True), one a line.
pods() {
  k get pods -n "$1" -l "$2" -o json 2>/dev/null | python3 -c '
import json, sys
want_ready = sys.argv[1:] == ["ready"]
for pod in json.load(sys.stdin)["items"]:
    if pod["metadata"].get("deletionTimestamp"):
        continue
    ready = [c["status"] for c in pod.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    if not want_ready or ready == ["True"]:
        print(pod["metadata"]["name"])' "${@:3}"
}
operator_pods() { pods "$op_ns" "$operator_selector" "$@"; }
# pod_log NAMESPACE POD CONTAINER: the container's log as the kubelet has it.
pod_log() { k logs -n "$1" "$2" -c "$3" 2>/dev/null || true; }
# log_has POD CONTAINER LINE: the container's log (in $ns) has LINE.
# (The log is read whole first: grep -q exiting early under pipefail
# would fail the pipeline by SIGPIPE.)
log_has() {
  local log
  log=$(pod_log "$ns" "$1" "$2") || return 1
  grep -qxF "$3" <<<"$log"
}
# store_manifest NAME SERVER: a SecretStore with Kubernetes auth as
# ServiceAccount app (role node-tier) against OpenBao at SERVER.
store_manifest() {
  cat <<EOF
apiVersion: vaultsync.dev/v1alpha1
kind: SecretStore
metadata: {name: $1}
spec:
  provider:
    openBao:
      server: $2
      # Plain http to the dev server on this machine, acknowledged.
      allowInsecureHttp: true
      path: secret
      version: v2
      auth:
        kubernetes:
          role: node-tier
          serviceAccountRef: {name: app}
EOF
}
