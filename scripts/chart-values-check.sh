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
bad_values=(replicaCount=two nosuchKey=1 image.tagg=x jitter=2 minRefreshInterval=soon logJson=maybe image.pullPolicy=Sometimes
  metrics.serviceMonitor.interval=soon metrics.prometheusRule.enable=true networkPolicy.apiServerCIDRs={10.0.0.1}
  clientQps=-1 clientBurst=0 clientBurst=1.5 logLevel= injector.logLevel= livenessProbe.periodSeconds=0
  readinessProbe.timeoutSeconds=soon readinessProbe.path=/x injector.livenessProbe.failureThreshold=0
  leaderElection.leaseDuration=soon leaderElection.retryPeriod=2 podDisruptionBudget.minAvailable=half
  injector.podDisruptionBudget.maxUnavailable=-1 injector.podDisruptionBudget.minAvailable=abc
  injector.nodeSelector=linux injector.tolerations=none injector.priorityClassName=1 injector.podLabels.team=1)
for bad in "${bad_values[@]}"; do
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

# What renders with given values ($@); doc KIND NAME prints one object of
# a rendering read on stdin (reading it all: with pipefail, a writer cut
# off early would fail the pipe).
rendered() { "$helm" template x "$chart" --namespace vaultsync-system "$@"; }
doc() { awk -v kind="$1" -v name="$2" '
  /^---/ { if (!found && k == kind && n == name) { printf "%s", buf; found=1 } buf=""; k=""; n=""; meta=0; next }
  { buf = buf $0 "\n" }
  /^kind: / { k=$2 } /^metadata:/ { meta=1; next } meta && /^  name: / { n=$2; meta=0 } /^[a-z]/ { meta=0 }
  END { if (!found && k == kind && n == name) printf "%s", buf }'; }
fail() { echo "chart values: $*" >&2; exit 1; }
# envvar NAME: the value of a container's variable in a manifest on stdin.
envvar() { awk -v name="$1" '$0 ~ "- name: " name "$" {getline; sub(/^ *value: /, ""); print; exit}'; }
injector=(--set injector.enabled=true --set injector.vaultAddress=https://vault:8200)

# PodDisruptionBudgets only where they allow an eviction: one that allows
# none blocks every node drain.
pdbs() { rendered "$@" | awk '/^kind: PodDisruptionBudget/{p=1} p && /^  name: /{print $2; p=0}'; }
[ "$(pdbs "${injector[@]}")" = x-vaultsync-injector ] || fail "the injector's PDB is missing with 2 replicas"
[ -z "$(pdbs "${injector[@]}" --set injector.replicaCount=1)" ] ||
  fail "injector.replicaCount=1 with minAvailable 1 must render no PDB (it would block every drain)"
[ -z "$(pdbs "${injector[@]}" --set injector.replicaCount=1 --set injector.podDisruptionBudget.minAvailable=50%)" ] ||
  fail "minAvailable 50% of 1 replica (rounded up: 1) must render no PDB"
[ -z "$(pdbs "${injector[@]}" --set injector.podDisruptionBudget.minAvailable= --set injector.podDisruptionBudget.maxUnavailable=0)" ] ||
  fail "maxUnavailable 0 must render no PDB"
[ -z "$(pdbs "${injector[@]}" --set injector.podDisruptionBudget.enabled=false)" ] ||
  fail "injector.podDisruptionBudget.enabled=false must render no PDB"
budget=$(rendered "${injector[@]}" --set injector.replicaCount=1 --set injector.podDisruptionBudget.minAvailable= \
  --set injector.podDisruptionBudget.maxUnavailable=10% | doc PodDisruptionBudget x-vaultsync-injector)
grep -q 'maxUnavailable: "10%"' <<<"$budget" || fail "maxUnavailable 10% with 1 replica must render a PDB"
[ -z "$(pdbs --set podDisruptionBudget.enabled=true --set podDisruptionBudget.minAvailable=1)" ] ||
  fail "the operator's PDB with minAvailable 1 and 1 replica must not render"
[ "$(pdbs --set podDisruptionBudget.enabled=true --set podDisruptionBudget.minAvailable=1 --set replicaCount=2)" = x-vaultsync ] ||
  fail "the operator's PDB with minAvailable 1 and 2 replicas must render"
budget=$(rendered --set podDisruptionBudget.enabled=true | doc PodDisruptionBudget x-vaultsync)
grep -q 'maxUnavailable: 1$' <<<"$budget" ||
  fail "the operator's PDB with maxUnavailable 1 (the default) and 1 replica must render"

notes=$("$helm" install --dry-run=client x "$chart" "${injector[@]}" --set injector.replicaCount=1)
grep -q 'No PodDisruptionBudget for the injector' <<<"$notes" || fail "NOTES do not say why the injector has no PDB"
if grep -q 'No PodDisruptionBudget' <<<"$("$helm" install --dry-run=client x "$chart" "${injector[@]}")"; then
  fail "NOTES warn of a missing PDB that is there"
fi

# The injector's pods are scheduled and labelled as the values say.
webhook=$(rendered -f "$chart/ci/all-options.yaml" | doc Deployment all-options-operator-injector)
for want in 'priorityClassName: "platform-critical"' 'topologySpreadConstraints:' 'kubernetes.io/os: linux' \
  'key: dedicated' 'nodeAffinity:' 'team: platform' 'example.com/scrape: "true"' 'cpu: 10m' \
  'periodSeconds: 3' 'failureThreshold: 6'; do
  grep -qF "$want" <<<"$webhook" || fail "the injector Deployment misses $want (ci/all-options.yaml)"
done

# Every object follows fullnameOverride (but the CRDs, whose names are
# their API's, and a ServiceAccount named explicitly), and the
# ServiceMonitor selects the metrics Service and nothing else.
all=(-f "$chart/ci/all-options.yaml" --set fullnameOverride=foo --set crds.install=true)
strays() { # objects rendered with the rest as flags whose names do not start with $1
  local prefix=$1
  shift
  rendered "$@" | awk '/^kind: /{kind=$2} /^metadata:/{meta=1; next} meta && /^  name: /{print kind "/" $2; meta=0} /^[a-z]/{meta=0}' |
    grep -v '^CustomResourceDefinition/' | grep -vx 'ServiceAccount/vaultsync-all' | grep -v "^[A-Za-z]*/$prefix\(-\|\$\)" || true
}
strays=$(strays foo "${all[@]}")
[ -z "$strays" ] || fail "objects ignore fullnameOverride: $strays"
strays=$(strays x-secrets -f "$chart/ci/all-options.yaml" --set fullnameOverride= --set nameOverride=secrets)
[ -z "$strays" ] || fail "objects ignore nameOverride: $strays"
everything=$(rendered "${all[@]}")
selector=$(doc ServiceMonitor foo <<<"$everything" | sed -n '/^  selector:/,/^  [a-z]/p' | sed -n 's/^      \([^ ]*\): \(.*\)$/\1: \2/p')
[ -n "$selector" ] || fail "the ServiceMonitor has no selector"
labels_of() { doc Service "$1" <<<"$everything" | sed -n '/^  labels:/,/^  [a-z]/p' | sed -n 's/^    \([^ ]*\): \(.*\)$/\1: \2/p'; }
selects() { # does the ServiceMonitor's selector match Service $1's labels?
  local labels
  labels=$(labels_of "$1")
  while IFS= read -r pair; do grep -qxF "$pair" <<<"$labels" || return 1; done <<<"$selector"
}
selects foo-metrics || fail "the ServiceMonitor's selector ($selector) does not match the metrics Service's labels"
! selects foo-injector || fail "the ServiceMonitor's selector ($selector) also matches the injector's Service"

# Probe and leader-election timings, the log level and the client's rate
# limit reach the operator's Deployment.
operator=$(rendered --set livenessProbe.timeoutSeconds=7 --set readinessProbe.initialDelaySeconds=4 \
  --set leaderElection.leaseDuration=30s --set leaderElection.renewDeadline=20s --set leaderElection.retryPeriod=4s \
  --set logLevel=debug --set-json clientQps=12.5 --set clientBurst=25 | doc Deployment x-vaultsync)
for want in 'timeoutSeconds: 7' 'initialDelaySeconds: 4'; do
  grep -qF "$want" <<<"$operator" || fail "the operator Deployment misses $want"
done
for want in 'VAULTSYNC_LOG_LEVEL "debug"' 'VAULTSYNC_CLIENT_QPS "12.5"' 'VAULTSYNC_CLIENT_BURST "25"' \
  'VAULTSYNC_LEASE_DURATION "30s"' 'VAULTSYNC_RENEW_DEADLINE "20s"' 'VAULTSYNC_RETRY_PERIOD "4s"'; do
  [ "$(envvar "${want% *}" <<<"$operator")" = "${want#* }" ] || fail "the operator Deployment does not set ${want% *} to ${want#* }"
done
[ "$(envvar VAULTSYNC_LOG_LEVEL <<<"$webhook")" = '"debug"' ] || fail "injector.logLevel does not reach the webhook"

# Lease timings `vaultsync run` would refuse fail at install time instead.
for bad in "leaderElection.renewDeadline=15s" "leaderElection.retryPeriod=0s" \
  "leaderElection.leaseDuration=1h --set leaderElection.renewDeadline=61m" "leaderElection.retryPeriod=10s"; do
  # shellcheck disable=SC2086 # the value is two --set flags at times
  if render --set $bad; then fail "--set $bad was accepted: the Lease timings are out of order"; fi
  grep -q "must be" "$err" || { cat "$err" >&2; fail "--set $bad failed, but not for the order of the Lease timings"; }
done
render --set leaderElection.leaseDuration=1m --set leaderElection.renewDeadline=59s500ms --set leaderElection.retryPeriod=1.5s ||
  { cat "$err" >&2; fail "ordered Lease timings in mixed units were refused"; }

readiness=$(rendered | doc Deployment x-vaultsync | sed -n '/readinessProbe:/,/securityContext:/p')
grep -q 'periodSeconds: 5' <<<"$readiness" ||
  fail "the operator's readiness probe does not default to every 5s"
echo "chart values: defaults and options render; ${#bad_values[@]} wrong values rejected by values.schema.json; names derived from the release and fullnameOverride; PDBs only when satisfiable; probes, timings, log level and rate limit reach the Deployments"
