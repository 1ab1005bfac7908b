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
# NetworkPolicies: the operator's alone, and with the webhook's, which
# cannot be rendered without the API server's addresses (it would admit no
# one, and every Pod that asks for injection would be refused).
render --set networkPolicy.enabled=true ||
  { cat "$err" >&2; echo "chart values: networkPolicy.enabled=true does not render" >&2; exit 1; }
policies=$("$helm" template check "$chart" --set networkPolicy.enabled=true --set injector.enabled=true \
  --set injector.vaultAddress=https://vault:8200 --set 'networkPolicy.apiServerCIDRs={10.0.0.0/28}')
[ "$(grep -c '^kind: NetworkPolicy' <<<"$policies")" = 2 ] && grep -q 'cidr: "10.0.0.0/28"' <<<"$policies" ||
  { echo "chart values: the operator's and the webhook's NetworkPolicies are not both rendered" >&2; exit 1; }
if render --set networkPolicy.enabled=true --set injector.enabled=true --set injector.vaultAddress=https://vault:8200; then
  echo "chart values: a webhook NetworkPolicy without networkPolicy.apiServerCIDRs must fail" >&2
  exit 1
fi
for bad in replicaCount=two nosuchKey=1 image.tagg=x jitter=2 minRefreshInterval=soon logJson=maybe image.pullPolicy=Sometimes \
  metrics.serviceMonitor.interval=soon metrics.prometheusRule.enable=true networkPolicy.apiServerCIDRs={10.0.0.1}; do
  if render --set "$bad"; then
    echo "chart values: --set $bad was accepted; values.schema.json must reject it" >&2
    exit 1
  fi
  grep -q "values don't meet the specifications of the schema" "$err" ||
    { cat "$err" >&2; echo "chart values: --set $bad failed, but not by the schema" >&2; exit 1; }
done

# Names: two releases in one namespace share no object name (the second
# leaves the CRDs to the first), and the name overrides and an existing
# ServiceAccount are honoured.
names() { # KIND/NAME of every object rendered for release $1 with the rest as flags
  local release=$1
  shift
  "$helm" template "$release" "$chart" --namespace vaultsync-system "$@" |
    awk '/^kind: /{kind=$2} /^metadata:/{meta=1; next} meta && /^  name: /{print kind "/" $2; meta=0} /^[a-z]/{meta=0}'
}
first=$(names vaultsync)
second=$(names team-b --set crds.install=false)
shared=$(comm -12 <(sort <<<"$first") <(sort <<<"$second"))
[ -z "$shared" ] || { echo "chart values: two releases share object names: $shared" >&2; exit 1; }
grep -qx 'Deployment/vaultsync' <<<"$first" && grep -qx 'Deployment/team-b-vaultsync' <<<"$second" ||
  { echo "chart values: unexpected release-derived names: $first $second" >&2; exit 1; }
grep -qx 'Deployment/platform' <(names x --set fullnameOverride=platform) ||
  { echo "chart values: fullnameOverride is not honoured" >&2; exit 1; }
grep -qx 'Deployment/x-secrets' <(names x --set nameOverride=secrets) ||
  { echo "chart values: nameOverride is not honoured" >&2; exit 1; }
existing=$("$helm" template x "$chart" --set serviceAccount.create=false --set serviceAccount.name=existing)
if grep -q '^kind: ServiceAccount' <<<"$existing" || ! grep -q 'serviceAccountName: existing' <<<"$existing"; then
  echo "chart values: serviceAccount.create=false must render no ServiceAccount and use the named one" >&2
  exit 1
fi
if render --set serviceAccount.create=false; then
  echo "chart values: serviceAccount.create=false without a name must fail" >&2
  exit 1
fi
echo "chart values: defaults and options render; 9 wrong values rejected by values.schema.json; names derived from the release"
