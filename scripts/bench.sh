#!/usr/bin/env bash
# `make bench`: BENCH_EXTERNAL_SECRETS ExternalSecrets (default 300) reading
# BENCH_PATHS shared Vault secrets (default 10), synced from scratch by the
# operator twice in one run: once with read coalescing off (the baseline:
# every ExternalSecret reads for itself), once as shipped. Prints time to
# converge, Vault requests, logins and the operator's peak memory, with the
# ratios. Figures, not assertions: this machine is shared and noisy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.state/bench
count=${BENCH_EXTERNAL_SECRETS:-300}
paths=${BENCH_PATHS:-10}

bash "$root/e2e/env.sh" down "$state" >/dev/null 2>&1 || true
rm -rf "$state"
mkdir -p "$state"
trap 'bash "$root/e2e/env.sh" down "$state" >/dev/null 2>&1 || true' EXIT
(cd "$root" && cargo build -q -p vaultsync)
bash "$root/e2e/env.sh" up "$state" >/dev/null 2>&1
# shellcheck disable=SC1091
source "$state/env"
bash "$root/scripts/install-operator.sh" "$state" 2>/dev/null
for i in $(seq 1 "$paths"); do
  bao kv put -mount=secret "bench/p$i" user="u$i" pass="p$i" >/dev/null
done

# manifests NAMESPACE: a token store and $count ExternalSecrets, three keys each.
manifests() {
  python3 - "$1" "$count" "$paths" "$BAO_ADDR" <<'PY'
import json, sys
ns, count, paths, addr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
docs = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vault-token", "namespace": ns}, "stringData": {"token": "root"}},
        {"apiVersion": "vaultsync.dev/v1alpha1", "kind": "SecretStore", "metadata": {"name": "vault", "namespace": ns},
         "spec": {"provider": {"vault": {"server": addr, "path": "secret", "auth": {"tokenSecretRef": {"name": "vault-token"}}}}}}]
for i in range(count):
    key = f"bench/p{i % paths + 1}"
    docs.append({"apiVersion": "vaultsync.dev/v1alpha1", "kind": "ExternalSecret", "metadata": {"name": f"es-{i}", "namespace": ns},
                 "spec": {"secretStoreRef": {"name": "vault"}, "refreshInterval": "1h", "data": [
                     {"secretKey": "user", "remoteRef": {"key": key, "property": "user"}},
                     {"secretKey": "pass", "remoteRef": {"key": key, "property": "pass"}},
                     {"secretKey": "all", "remoteRef": {"key": key}}]}})
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
PY
}

audited() {
  python3 - "$state/logs/openbao-audit.log" "$1" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("type") == "response" and e.get("request", {}).get("path", "").startswith(sys.argv[2]):
        n += 1
print(n)
PY
}

# GET requests the API server answered for Secrets and vaultsync's stores
# (the operator's reads: the bench itself only lists and applies).
api_gets() {
  kubectl get --raw /metrics >"$state/apiserver-metrics.txt"
  python3 - "$state/apiserver-metrics.txt" <<'PY'
import re, sys
total = 0
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("apiserver_request_total{") and 'verb="GET"' in line and re.search(
            r'resource="(secrets|secretstores|clustersecretstores)"', line):
        total += float(line.rsplit(" ", 1)[1])
print(int(total))
PY
}

# run LABEL READ_WINDOW: prints "seconds reads logins peak_rss_kib api_gets".
run() {
  local label=$1 window=$2 ns="bench-$1"
  kubectl create namespace "$ns" >/dev/null
  bash "$root/scripts/start-operator.sh" "$state" VAULTSYNC_READ_WINDOW="$window" VAULTSYNC_LOG_LEVEL=warn 2>/dev/null
  local pid addr reads0 logins0 gets0 t0 t1 n
  pid=$(cat "$state/pids/operator.pid")
  addr=$(cat "$state/operator-health-addr")
  until curl -fs "http://$addr/ready" >/dev/null; do sleep 0.2; done
  reads0=$(audited secret/data/bench/)
  gets0=$(api_gets)
  logins0=$(audited auth/token/lookup-self)
  manifests "$ns" >"$state/$label.json"
  t0=$(date +%s.%N)
  kubectl apply --server-side -f "$state/$label.json" >/dev/null
  while :; do
    n=$(kubectl get secrets -n "$ns" -l app.kubernetes.io/managed-by=vaultsync --no-headers 2>/dev/null | wc -l)
    [ "$n" -ge "$count" ] && break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  sleep 2 # let status writes and the reconciles they trigger settle
  local rss gets
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  gets=$(($(api_gets) - gets0))
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -f "$state/pids/operator.pid"
  echo "$(python3 -c "print(round($t1 - $t0, 2))") $(($(audited secret/data/bench/) - reads0)) $(($(audited auth/token/lookup-self) - logins0)) $rss $gets"
}

echo "bench: $count ExternalSecrets x 3 keys over $paths Vault secrets, synced from scratch" >&2
read -r b_secs b_reads b_logins b_rss b_gets <<<"$(run baseline 0s)"
read -r v_secs v_reads v_logins v_rss v_gets <<<"$(run vaultsync 1s)"
python3 - "$b_secs" "$b_reads" "$b_logins" "$b_rss" "$b_gets" "$v_secs" "$v_reads" "$v_logins" "$v_rss" "$v_gets" <<'PY'
import sys
b = [float(x) for x in sys.argv[1:6]]
v = [float(x) for x in sys.argv[6:11]]
rows = ["seconds to converge", "Vault reads", "Vault logins", "peak RSS (KiB)", "API GETs"]
print(f"{'':22}{'baseline':>12}{'vaultsync':>12}{'ratio':>9}")
for name, x, y in zip(rows, b, v):
    ratio = f"{y / x:.2f}" if x else "-"
    print(f"{name:22}{x:>12g}{y:>12g}{ratio:>9}")
print("baseline = the same operator with read coalescing off (--read-window 0s)")
PY
