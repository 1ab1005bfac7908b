#!/usr/bin/env bash
# `make node-test`: the node tier from scratch on a fresh state dir. Needs
# root (node.sh) and target/image/vaultsync.oci.tar (the Makefile builds it
# first when missing or older than the sources).
#
#   scripts/node-test.sh [STATE_DIR]    default /tmp/vaultsync-nt
#
# env.sh up, node.sh up, e2e/node-tier.sh; node.sh down and env.sh down
# always run at the end (logs stay in STATE_DIR/logs). The state dir is
# short on purpose: containerd's socket lives in it and a unix socket path
# must stay under 100 characters.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${1:-${VAULTSYNC_NODE_TEST_STATE:-/tmp/vaultsync-nt}}

# A fresh state: whatever an earlier run left is stopped and removed.
if [ -d "$state" ]; then
  bash "$root/e2e/env.sh" down "$state" >/dev/null 2>&1 || true
  rm -rf "$state"
fi
mkdir -p "$state"

t0=$SECONDS
phase() { printf 'node-test [%4ss] %s\n' "$((SECONDS - t0))" "$*" >&2; }
down() {
  local rc=$?
  trap - EXIT INT TERM
  phase "down"
  # The release first: node.sh down deletes the node's Pods, and the
  # Deployment's ReplicaSet would start a new operator Pod while the
  # kubelet still runs (seen: down then waits for it).
  if [ -f "$state/env" ]; then
    (
      # shellcheck disable=SC1091
      source "$state/env"
      helm uninstall vaultsync --namespace vaultsync-system --wait --timeout 60s
    ) >"$state/helm-uninstall.log" 2>&1 || true
  fi
  bash "$root/e2e/node.sh" down "$state" >"$state/node-down.log" 2>&1 || echo "node-test: node.sh down failed, see $state/node-down.log" >&2
  bash "$root/e2e/env.sh" down "$state" >"$state/env-down.log" 2>&1 || echo "node-test: env.sh down failed, see $state/env-down.log" >&2
  phase "done (exit $rc; logs in $state/logs)"
  exit "$rc"
}
trap down EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "env.sh up $state"
bash "$root/e2e/env.sh" up "$state" >"$state/env-up.log" 2>&1 || { tail -20 "$state/env-up.log" >&2; exit 1; }
t_env=$SECONDS
phase "node.sh up $state"
bash "$root/e2e/node.sh" up "$state" >"$state/node-up.log" 2>&1 || { tail -20 "$state/node-up.log" >&2; exit 1; }
t_node=$SECONDS
phase "e2e/node-tier.sh $state"
bash "$root/e2e/node-tier.sh" "$state" 2>&1 | tee "$state/logs/node-tier.log"
phase "node tier passed: env up $((t_env - t0))s, node up $((t_node - t_env))s, tier $((SECONDS - t_node))s"
