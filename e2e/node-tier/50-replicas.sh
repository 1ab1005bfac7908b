# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there). Two replicas as the kubelet runs
# them: `helm upgrade` to replicaCount 2 with a changed Pod template (so the
# Deployment really rolls: new Pods replace the old one) must leave at least
# one operator Pod Ready at every moment and one Lease holder, always one of
# the Pods; then the leader Pod is deleted: the other replica takes over
# the Lease and a change in OpenBao still reaches its Secret.

# A second ExternalSecret that refreshes by itself, so that "a change
# still arrives" needs no annotation, only a leader.
third=third-$RANDOM$RANDOM fourth=fourth-$RANDOM$RANDOM
bao kv put -mount=secret node-tier/rotating password="$third" >/dev/null
k apply -n "$ns" -f - >/dev/null <<EOF2
apiVersion: vaultsync.dev/v1alpha1
kind: ExternalSecret
metadata: {name: rotating}
spec:
  refreshInterval: 2s
  secretStoreRef: {name: openbao, kind: SecretStore}
  target: {name: rotating}
  data:
  - secretKey: password
    remoteRef: {key: node-tier/rotating, property: password}
EOF2
wait_value rotating password "$third" 60 || fatal "Secret $ns/rotating: no first value within 60s"

# The sampler: every ~0.3 s, the number of Ready operator Pods (not being
# deleted), the Lease holder ("-" for none) and every operator Pod,
# terminating ones too: "SECONDS READY HOLDER POD...".
samples=$state/node-tier-rollout-samples.txt
: >"$samples"
(
  while :; do
    ready=$(operator_pods ready | wc -l)
    holder=$(lease_holder)
    all=$(k get pods -n "$op_ns" -l "$operator_selector" -o name 2>/dev/null | sed 's|^pod/||' | tr '\n' ' ')
    printf '%s %s %s %s\n' "$SECONDS" "$ready" "${holder:--}" "$all" >>"$samples"
    sleep 0.3
  done
) &
sampler=$!
before=$(operator_pods | tr '\n' ' ')
t_upgrade=$SECONDS
if helm upgrade "$release" "$root/charts/vaultsync" --namespace "$op_ns" --reuse-values \
  --set replicaCount=2 --set-string podAnnotations.node-tier/revision=2 \
  --wait --timeout "${timeout}s" >"$state/node-tier-helm-upgrade.log" 2>&1; then
  pass "helm upgrade to replicaCount 2 with a new Pod template: done in $((SECONDS - t_upgrade))s"
else
  fail "helm upgrade: $(tail -3 "$state/node-tier-helm-upgrade.log")"
fi
# The Deployment is only done when the old Pod is gone: watch it go too.
all_pods_are() { [ "$(k get pods -n "$op_ns" -l "$operator_selector" --no-headers 2>/dev/null | wc -l)" = "$1" ]; }
ready_pods_are() { [ "$(operator_pods ready | wc -l)" = "$1" ]; }
holder_is() { [ "$(lease_holder)" = "$1" ]; }
wait_for 60 all_pods_are 2 || true
sleep 2
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
after=$(operator_pods | tr '\n' ' ')
# The roll replaced the Pod: none of the Pods before is among the two after.
replaced=yes
for p in $before; do [[ " $after " == *" $p "* ]] && replaced=no; done
[ "$(wc -w <<<"$after")" = 2 ] && [ "$replaced" = yes ] &&
  pass "the roll replaced Pod $before with two new ones: $after" ||
  fail "Pods before the upgrade: $before; after: $after"
lines=$(wc -l <"$samples")
min_ready=$(awk 'NR == 1 || $2 < m {m = $2} END {print m}' "$samples")
[ "$lines" -ge 5 ] && [ "$min_ready" -ge 1 ] &&
  pass "no Ready gap during the roll: at least $min_ready Ready operator Pod in each of $lines samples" ||
  fail "Ready gap during the roll: minimum $min_ready Ready Pods in $lines samples ($samples)"
# One holder at a time is what a Lease is; what would mean two leaders
# is a holder that is not one of the running Pods (a stale term someone
# still acts on). An empty holder (a leader that released the Lease on
# SIGTERM, before the next takes it) is counted apart.
stale=$(awk '$3 != "-" {ok = 0; for (i = 4; i <= NF; i++) if ($i == $3) ok = 1; if (!ok) n++} END {print n + 0}' "$samples")
vacant=$(awk '$3 == "-" {n++} END {print n + 0}' "$samples")
holders=$(awk '{print $3}' "$samples" | uniq | tr '\n' ' ')
[ "$stale" = 0 ] &&
  pass "the Lease holder was always one of the operator Pods ($lines samples, $vacant without a holder; holders in order: $holders)" ||
  fail "the Lease named a holder that was no operator Pod in $stale of $lines samples (holders in order: $holders; $samples)"

# The leader Pod deleted: the other replica takes over and syncs. The
# node is cordoned first, so that the Pod the ReplicaSet makes in its place
# stays Pending: the running standby, not a newcomer that starts while the
# old leader lets go of the Lease, is what must take over (seen: without
# the cordon the replacement Pod won the race as often as not).
leader=$(lease_holder)
[[ " $after " == *" $leader "* ]] || fatal "Lease holder '$leader' is not one of the Pods $after"
other=$(tr ' ' '\n' <<<"$after" | grep -vxF "$leader" | grep . | head -1)
k cordon "$NODE_NAME" >/dev/null
t_kill=$SECONDS
k delete pod -n "$op_ns" "$leader" --wait=false >/dev/null
bao kv put -mount=secret node-tier/rotating password="$fourth" >/dev/null
if wait_for 90 holder_is "$other"; then
  pass "leader $leader deleted: the standby $other holds the Lease $((SECONDS - t_kill))s later"
else
  fail "leader $leader deleted: the Lease holder is '$(lease_holder)' after 90s, not the standby $other"
fi
if wait_value rotating password "$fourth" 90; then
  pass "the OpenBao change written as the leader was deleted reached Secret $ns/rotating $((SECONDS - t_kill))s after the delete"
else
  fail "Secret $ns/rotating: '$(secret_value rotating password)' 90s after the leader was deleted, not the new value"
fi
k uncordon "$NODE_NAME" >/dev/null
# The Deployment replaces the deleted Pod; the new one becomes Ready as a
# standby (a standby is Ready: it can take over).
if wait_for 90 ready_pods_are 2; then
  pass "two Ready operator Pods again: $(operator_pods ready | tr '\n' ' ')"
else
  fail "operator Pods after the delete: $(operator_pods | tr '\n' ' ') (Ready: $(operator_pods ready | tr '\n' ' '))"
fi
