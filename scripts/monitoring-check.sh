#!/usr/bin/env bash
# The chart's monitoring: the alert rules pass `promtool check rules` and
# their unit tests (e2e/monitoring/alerts_test.yaml: each alert fires when
# it should and stays silent when it should not), the PrometheusRule the
# chart renders carries exactly the groups of the rules file, and the
# Grafana dashboard is valid JSON using only metrics the operator exports
# or the rules use (the e2e suite checks those against a real scrape).
#
# Installs Debian's `prometheus` package (for promtool) when promtool is
# missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/charts/vaultsync"
rules="$chart/files/prometheus-rules.yaml"
dashboard="$chart/files/dashboard.json"

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "monitoring: promtool is missing; install it (Debian: apt-get install prometheus) or run as root" >&2
    exit 1
  fi
  echo "monitoring: installing promtool (Debian package prometheus)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

promtool check rules "$rules"
promtool test rules "$root/e2e/monitoring/alerts_test.yaml"

# Metric names: the dashboard's and the rules' must be ones metrics.rs
# registers (the scrape check of e2e/dashboard_check.py needs a running
# operator; this one needs none).
python3 "$root/e2e/dashboard_check.py" --self-test
python3 "$root/e2e/dashboard_check.py" "$dashboard" "$root/e2e/monitoring/metrics-sample.txt" "$rules"

helm="$(bash "$root/scripts/tools.sh" --print)/helm"
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
"$helm" template monitoring "$chart" --namespace vaultsync-system \
  --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true \
  --set metrics.dashboard.enabled=true >"$rendered"
# PyYAML reads the rendered chart; a venv of its own when python3 lacks it.
python=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/vaultsync/pyyaml-6.0.3"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "pyyaml==6.0.3"
  fi
  python="$venv/bin/python"
fi
"$python" - "$rendered" "$rules" "$dashboard" <<'PY'
import json
import sys

import yaml

rendered, rules, dashboard = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
kinds = {d["kind"]: d for d in docs}
for kind in ("PrometheusRule", "ServiceMonitor"):
    assert kind in kinds, f"the chart rendered no {kind}"

want = yaml.safe_load(open(rules))["groups"]
got = kinds["PrometheusRule"]["spec"]["groups"]
assert got == want, "the PrometheusRule's spec.groups differ from files/prometheus-rules.yaml"

endpoint = kinds["ServiceMonitor"]["spec"]["endpoints"][0]
assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics"), endpoint
services = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "monitoring-vaultsync-metrics"]
assert services, "no metrics Service for the ServiceMonitor"
selector = kinds["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
labels = services[0]["metadata"]["labels"]
assert all(labels.get(k) == v for k, v in selector.items()), f"ServiceMonitor selector {selector} misses {labels}"
assert any(p["name"] == "http" for p in services[0]["spec"]["ports"]), "metrics Service has no port `http`"

maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "monitoring-vaultsync-dashboard"]
assert maps, "the chart rendered no dashboard ConfigMap"
assert maps[0]["metadata"]["labels"].get("grafana_dashboard") == "1", maps[0]["metadata"]["labels"]
shipped = json.loads(maps[0]["data"]["vaultsync.json"])
assert shipped == json.load(open(dashboard)), "the ConfigMap's dashboard differs from files/dashboard.json"
print(f"monitoring: PrometheusRule = rules file ({sum(len(g['rules']) for g in want)} rules), "
      "ServiceMonitor selects the metrics Service, dashboard ConfigMap parses")
PY
