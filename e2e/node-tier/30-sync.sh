# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there).

# A sync from OpenBao, through the node IP.
k create namespace "$ns" >/dev/null
k create serviceaccount app -n "$ns" >/dev/null
# No caBundle: the image's root filesystem has no CA certificates, and
# the store must still work (this tier found every such store failing;
# the client now falls back to the roots compiled into the binary).
{
  store_manifest openbao "$NODE_BAO_ADDR"
  cat <<EOF
---
apiVersion: vaultsync.dev/v1alpha1
kind: ExternalSecret
metadata: {name: db}
spec:
  # Long: the second value can only come from the force-sync.
  refreshInterval: 1h
  secretStoreRef: {name: openbao, kind: SecretStore}
  target: {name: db, creationPolicy: Owner}
  data:
  - secretKey: password
    remoteRef: {key: node-tier/db, property: password}
EOF
} | k apply -n "$ns" -f - >/dev/null
if wait_value db password "$first" "$timeout"; then
  t_sync=$(t)
  pass "Secret $ns/db has the first value from OpenBao ${t_sync}s after helm install"
else
  fatal "Secret $ns/db: '$(secret_value db password)', not '$first' within ${timeout}s"
fi
got=$(k get externalsecret -n "$ns" db -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}')
[ "$got" = "True SecretSynced" ] && pass "ExternalSecret $ns/db Ready: $got" || fail "ExternalSecret $ns/db condition: $got"

bao kv put -mount=secret node-tier/db password="$second" >/dev/null
# Without the force-sync nothing reads again for an hour: the old value
# stays (so the change below is the force-sync's doing).
sleep 2
got=$(secret_value db password)
[ "$got" = "$first" ] && pass "Secret $ns/db unchanged 2s after the OpenBao write (refreshInterval 1h)" ||
  fail "Secret $ns/db changed without a force-sync: '$got'"
t_force=$SECONDS
k annotate externalsecret -n "$ns" db "vaultsync.dev/force-sync=$(date +%s%N)" --overwrite >/dev/null
if wait_value db password "$second" 60; then
  pass "Secret $ns/db has the changed value $((SECONDS - t_force))s after the force-sync annotation"
else
  fail "Secret $ns/db after force-sync: '$(secret_value db password)', not '$second' within 60s"
fi

# Still the same container: nothing above restarted it.
got=$(jp '{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready}')
[ "$got" = "0 true" ] && pass "operator still Ready, 0 restarts" || fail "operator after the syncs (restarts ready): $got"
