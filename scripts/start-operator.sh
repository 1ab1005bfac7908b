#!/usr/bin/env bash
# Starts the operator built by cargo as a local process, run exactly as the
# chart's Deployment runs it in a pod (its args and env, read from the
# Deployment scripts/install-operator.sh installed; see
# e2e/run_as_deployment.py), with the chart's ServiceAccount token. Logs to
# STATE_DIR/logs/operator.log.
#
#   scripts/start-operator.sh STATE_DIR [NAME=VALUE...]
#
# NAME=VALUE overrides one of the Deployment's variables (the benchmark
# turns read coalescing off that way).
set -euo pipefail
state=${1:?usage: start-operator.sh STATE_DIR [NAME=VALUE...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$state/logs" "$state/pids"
(cd "$root" && cargo build -q -p vaultsync)
overrides=()
for assignment in "$@"; do overrides+=(--set "$assignment"); done
setsid python3 "$root/e2e/run_as_deployment.py" --namespace vaultsync-system --deployment vaultsync \
  --kubeconfig "$state/operator.kubeconfig" --pod-name operator-e2e "${overrides[@]}" \
  "$root/target/debug/vaultsync" </dev/null >"$state/logs/operator.log" 2>&1 &
echo $! >"$state/pids/operator.pid"
health=$(cat "$state/operator-health-addr")
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://$health/live" 2>/dev/null && break
  if ! kill -0 "$(cat "$state/pids/operator.pid")" 2>/dev/null; then
    echo "operator exited at once:" >&2
    tail -20 "$state/logs/operator.log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "operator running (pid $(cat "$state/pids/operator.pid")), log: $state/logs/operator.log, health: http://$health/ready" >&2
