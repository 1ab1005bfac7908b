#!/usr/bin/env bash
# The chart's values.schema.json must turn away wrong values at `helm
# template` time (a wrong type, an unknown key, an out-of-range number)
# while the defaults and the documented options render.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
helm="$(bash "$root/scripts/tools.sh" --print)/helm"
chart="$root/charts/vaultsync"
render() { "$helm" template check "$chart" --namespace vaultsync-system "$@" >/dev/null 2>"$err"; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT

render || { cat "$err" >&2; echo "chart values: the defaults do not render" >&2; exit 1; }
render -f "$chart/ci/all-options.yaml" ||
  { cat "$err" >&2; echo "chart values: ci/all-options.yaml does not render" >&2; exit 1; }
render --set scope.namespace=team-a --set userRoles.aggregate=false --set replicaCount=2 --set-json jitter=0.5 ||
  { cat "$err" >&2; echo "chart values: documented options do not render" >&2; exit 1; }
for bad in replicaCount=two nosuchKey=1 image.tagg=x jitter=2 logJson=maybe image.pullPolicy=Sometimes \
  metrics.serviceMonitor.interval=soon metrics.prometheusRule.enable=true; do
  if render --set "$bad"; then
    echo "chart values: --set $bad was accepted; values.schema.json must reject it" >&2
    exit 1
  fi
  grep -q "values don't meet the specifications of the schema" "$err" ||
    { cat "$err" >&2; echo "chart values: --set $bad failed, but not by the schema" >&2; exit 1; }
done
echo "chart values: defaults and options render; 8 wrong values rejected by values.schema.json"
