#!/usr/bin/env bash
# The node tier (issue 21): the operator image of `make image` really runs
# in Pods of the node of e2e/node.sh, installed by the real `helm install`
# of charts/vaultsync, and everything is checked against what the kubelet
# ran (Pod phases, exit codes, container logs, probes, Lease holders).
#
#   e2e/node-tier.sh STATE_DIR     (after env.sh up and node.sh up; root)
#
# The scenarios, e2e/node-tier/NN-*.sh, are sourced in order into this
# shell (later ones build on earlier ones):
#   10-readme-install  README's "Try it on kind" block word for word:
#                 `kind load image-archive` (the ctr import kind runs) of
#                 target/image/vaultsync.oci.tar, `helm install` with
#                 pullPolicy Never, rollout status;
#   20-operator-pod  Ready through the kubelet's probe, the Lease, the
#                 security context as the API has it and as the kernel runs
#                 the process (/proc);
#   30-sync       a SecretStore (Kubernetes auth) against OpenBao on the node
#                 IP, an ExternalSecret, a force-sync;
#   40-dns        the static binary resolves a Service name (cluster DNS);
#   50-replicas   `helm upgrade` to 2 replicas: no Ready gap, one Lease
#                 holder; the leader Pod deleted, the other takes over and a
#                 Vault change still arrives;
#   60-injection  the injector: an annotated Pod's init container renders,
#                 the app reads it, the native sidecar keeps it current and
#                 signals the app; an unannotated Pod is untouched;
#   65-inject-command  agent-inject-command-<name> with an agent image that
#                 has a shell (built here from the archive + busybox-static):
#                 run once by the init container, again by the sidecar
#                 after a change; refused without vaultsync.dev/agent-image;
#   70-rollout    a rolloutRestartTargets Deployment's Pods are replaced
#                 after a Vault change and become Ready.
# VAULTSYNC_NODE_TIER_ONLY="10 20 30" runs only those (for debugging).
# Prints "pass ..." / "FAIL ..." per check and the time each scenario took;
# exits non-zero when anything failed, after dumping diagnostics (Pods,
# events, the operator's logs, kubelet and containerd logs).
set -euo pipefail

state=${1:?usage: $0 STATE_DIR}
state=$(cd "$state" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC1091
source "$state/env"
# shellcheck disable=SC1091
source "$state/node/env"

# The README block names this path.
archive=$root/target/image/vaultsync.oci.tar
# shellcheck source=e2e/node-tier/lib.sh
source "$root/e2e/node-tier/lib.sh"

t() { printf '%s' "$((SECONDS - t_install))"; }

diagnostics() {
  echo "---- diagnostics ----"
  k get pods -A -o wide 2>&1 || true
  echo "-- Pods that are not Running: phase, reason, message"
  k get pods -A -o jsonpath='{range .items[?(@.status.phase!="Running")]}{.metadata.namespace}/{.metadata.name} {.status.phase} {.status.reason} {.status.message}{"\n"}{end}' 2>&1 || true
  echo "-- node conditions that are True, taints"
  k get nodes -o jsonpath='{range .items[*]}{.metadata.name}:{range .status.conditions[?(@.status=="True")]} {.type}{end}; taints: {.spec.taints}{"\n"}{end}' 2>&1 || true
  echo "-- kubelet eviction manager"
  grep -i 'eviction manager: \(must evict\|pod is evicted\)' "$state/logs/kubelet.log" 2>/dev/null | tail -5 | cut -c1-300 || true
  df -h "$state" 2>&1 | tail -1 || true
  k describe pods -n "$op_ns" 2>&1 | tail -60 || true
  k describe pods -n "$ns" 2>&1 | grep -A30 '^Events:' | tail -40 || true
  echo "-- events in $op_ns and $ns"
  k get events -n "$op_ns" --sort-by=.lastTimestamp 2>&1 | tail -20 || true
  k get events -n "$ns" --sort-by=.lastTimestamp 2>&1 | tail -20 || true
  echo "-- operator logs"
  k logs -n "$op_ns" -l "app.kubernetes.io/instance=$release" --tail=40 --all-containers --prefix 2>&1 || true
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

# A rerun on the same STATE_DIR starts over.
helm uninstall "$release" -n "$op_ns" --wait >/dev/null 2>&1 || true
k delete mutatingwebhookconfiguration -l "app.kubernetes.io/instance=$release" --ignore-not-found >/dev/null 2>&1 || true
k delete namespace "$ns" --ignore-not-found --wait=true >/dev/null 2>&1 || true


only=${VAULTSYNC_NODE_TIER_ONLY:-}
for scenario in "$root"/e2e/node-tier/[0-9][0-9]-*.sh; do
  number=$(basename "$scenario" | cut -c1-2)
  [ -z "$only" ] || [[ " $only " == *" $number "* ]] || continue
  echo "-- $(basename "$scenario" .sh)"
  t_scenario=$SECONDS
  # shellcheck disable=SC1090
  source "$scenario"
  echo "-- $(basename "$scenario" .sh): $((SECONDS - t_scenario))s"
done
echo "node-tier: helm install -> Ready ${t_ready:-?}s, -> first sync ${t_sync:-?}s"
