#!/usr/bin/env bash
# The e2e suite: a real kube-apiserver, etcd, kube-controller-manager and
# OpenBao on loopback, the chart installed, the operator running with the
# chart's RBAC, then the Rust scenario tests. Everything is torn down at the
# end, also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${VAULTSYNC_E2E_STATE:-$root/.state/e2e}
rm -rf "$state"
mkdir -p "$state"

finish() {
  rc=$?
  [ -z "${HOLDER_PID:-}" ] || kill "$HOLDER_PID" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -f "$state/logs/operator.log" ]; then
    echo "--- last lines of the operator log ($state/logs/operator.log) ---" >&2
    tail -40 "$state/logs/operator.log" >&2
  fi
  bash "$root/e2e/env.sh" down "$state" || true
  exit "$rc"
}
trap finish EXIT

# Debian packages the scenarios run: lua5.4 (the Argo CD health checks).
if ! command -v lua5.4 >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "e2e: needs lua5.4 (apt-get install lua5.4), or run as root" >&2; exit 1; }
  echo "e2e: installing lua5.4 from Debian's packages" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >/dev/null
fi

# Build first, so the control plane is not idle while cargo compiles.
(cd "$root" && cargo build -q -p vaultsync && cargo test -q -p vaultsync-e2e --no-run)

# env.sh starts again with new ports when one it chose is taken before its
# server binds it (busy machines); every run proves it by handing etcd a
# port held by another process on the first attempt.
coproc HOLDER { python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(600)' 2>/dev/null; }
read -r held_port <&"${HOLDER[0]}"
VAULTSYNC_ENV_FIRST_ETCD_PORT=$held_port bash "$root/e2e/env.sh" up "$state"
kill "$HOLDER_PID" 2>/dev/null || true
grep -qs "address already in use" "$state"/logs/attempt-1/etcd.log ||
  { echo "e2e: etcd was not refused the held port $held_port; the retry went unproven" >&2; exit 1; }
# shellcheck disable=SC1091
source "$state/env"
bash "$root/scripts/install-operator.sh" "$state"
bash "$root/scripts/start-operator.sh" "$state"

cd "$root"
VAULTSYNC_STATE="$state" cargo test -p vaultsync-e2e -- --test-threads="${E2E_THREADS:-4}" ${E2E_FILTER:-}

# Secret values must never reach the operator's output, nor anything it
# wrote to the API other than the Secrets themselves.
kubectl get externalsecrets.vaultsync.dev,secretstores.vaultsync.dev,clustersecretstores.vaultsync.dev -A -o yaml >"$state/custom-resources.yaml"
kubectl get events -A -o yaml >"$state/events.yaml"
curl -fsS "http://$(cat "$state/operator-health-addr")/metrics" >"$state/metrics.txt"
python3 "$root/e2e/leak_check.py" ${E2E_FILTER:+--partial} "$state/seeded-values" \
  "$state/logs/operator.log" "$state/custom-resources.yaml" "$state/events.yaml" "$state/metrics.txt"
# The chart logs JSON (logJson): one object per line, fields at the top.
python3 "$root/e2e/log_check.py" "$state/logs/operator.log"
# The dashboard and the alert rules use only metrics the operator exports
# (a filtered run may not have made every labelled family appear yet).
[ -n "${E2E_FILTER:-}" ] || python3 "$root/e2e/dashboard_check.py" "$root/charts/vaultsync/files/dashboard.json" \
  "$state/metrics.txt" "$root/charts/vaultsync/files/prometheus-rules.yaml"

# Least privilege: the chart grants the operator exactly the rights its code
# uses (e2e/rbac-used.txt), and the suite exercised each of them.
python3 "$root/e2e/rbac_check.py" ${E2E_FILTER:+--partial} "$root/e2e/rbac-used.txt" \
  "$state/logs/kube-audit.log" vaultsync-system vaultsync

# Restricted installs (chart values scope.namespace, tokenNamespaces), each
# a release of its own with its own operator, a chart upgrade that changes a
# CRD, leadership handover, an API server outage and a flooded health port
# with operators of their own. The shared operator syncs every namespace, so
# it is stopped first, or it would answer too.
if [[ -z ${E2E_FILTER:-} || ${E2E_FILTER:-} =~ ^(scoped|chart|handover|token_lifecycle|listeners|eso_claim):: ]]; then
  operator_pid=$(cat "$state/pids/operator.pid")
  kill "$operator_pid"
  for _ in $(seq 50); do kill -0 "$operator_pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$state/pids/operator.pid"
  VAULTSYNC_STATE="$state" cargo test -p vaultsync-e2e -- --ignored --test-threads=1 --nocapture ${E2E_FILTER:-scoped:: chart:: token_lifecycle:: handover:: listeners:: eso_claim::}
  # (a filtered run may have started no operator of its own)
  operator_logs=("$state"/logs/*-operator.log)
  if [ -e "${operator_logs[0]}" ]; then
    python3 "$root/e2e/leak_check.py" ${E2E_FILTER:+--partial} "$state/seeded-values" "${operator_logs[@]}"
  fi
fi

# The fenced-leadership partition: two replicas of its own per trial, so the
# shared operator (if the restricted installs did not already stop it) is
# stopped first and the trial replicas are the only writers.
if [[ -z ${E2E_FILTER:-} || ${E2E_FILTER:-} == *fencing* || ${E2E_FILTER:-} == *leader* ]]; then
  kill "$(cat "$state/pids/operator.pid" 2>/dev/null)" 2>/dev/null || true
  VAULTSYNC_STATE="$state" cargo test -p vaultsync-e2e -- --ignored --test-threads=1 --nocapture fencing::
fi

# Last, as it removes the operator's rights: `helm uninstall` leaves the
# CRDs (helm.sh/resource-policy: keep), and with them users' objects.
if [ -z "${E2E_FILTER:-}" ]; then
  kubectl create namespace uninstall-check >/dev/null
  kubectl apply -n uninstall-check -f - >/dev/null <<'MANIFEST'
apiVersion: vaultsync.dev/v1alpha1
kind: SecretStore
metadata:
  name: kept
spec:
  provider:
    vault:
      server: http://127.0.0.1:1
      auth:
        tokenSecretRef:
          name: absent
          key: token
MANIFEST
  helm uninstall vaultsync --namespace vaultsync-system --wait >/dev/null
  kubectl get crd externalsecrets.vaultsync.dev secretstores.vaultsync.dev clustersecretstores.vaultsync.dev \
    clusterexternalsecrets.vaultsync.dev >/dev/null
  kubectl get secretstore.vaultsync.dev kept -n uninstall-check >/dev/null
  if kubectl get deployment vaultsync -n vaultsync-system >/dev/null 2>&1; then
    echo "e2e: helm uninstall left the Deployment" >&2
    exit 1
  fi
  echo "e2e: helm uninstall removed the release and kept the CRDs and the objects"
fi

# What the scenarios measured (handover, outages, recovery times).
if [ -s "$state/figures.txt" ]; then
  echo "--- figures measured by the e2e scenarios ---"
  cat "$state/figures.txt"
fi
