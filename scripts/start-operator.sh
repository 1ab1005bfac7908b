#!/usr/bin/env bash
# Starts the operator built by cargo as a local process with the chart's
# ServiceAccount token, logging to STATE_DIR/logs/operator.log.
#
#   scripts/start-operator.sh STATE_DIR
set -euo pipefail
state=${1:?usage: start-operator.sh STATE_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$state/logs" "$state/pids"
(cd "$root" && cargo build -q -p vaultsync)
health_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "127.0.0.1:$health_port" >"$state/operator-health-addr"
KUBECONFIG="$state/operator.kubeconfig" VAULTSYNC_HEALTH_ADDR="127.0.0.1:$health_port" \
  VAULTSYNC_LEADER_ELECTION=true POD_NAME=operator-e2e \
  VAULTSYNC_TOKEN_NAMESPACE_SELECTOR="!vaultsync-e2e/no-tokens" \
  RUST_LOG=${RUST_LOG:-info,vaultsync=debug,vaultsync_controller=debug,vaultsync_vault=debug} \
  setsid "$root/target/debug/vaultsync" run </dev/null >"$state/logs/operator.log" 2>&1 &
echo $! >"$state/pids/operator.pid"
sleep 1
if ! kill -0 "$(cat "$state/pids/operator.pid")" 2>/dev/null; then
  echo "operator exited at once:" >&2
  tail -20 "$state/logs/operator.log" >&2
  exit 1
fi
echo "operator running (pid $(cat "$state/pids/operator.pid")), log: $state/logs/operator.log, health: http://127.0.0.1:$health_port/ready" >&2
