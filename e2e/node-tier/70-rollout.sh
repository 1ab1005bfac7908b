# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there). rolloutRestartTargets as the
# kubelet runs it: a Deployment reads its Secret as environment variables
# (which a running container never sees change); after a change in OpenBao
# the operator restarts it, kube-controller-manager rolls a new ReplicaSet,
# and the kubelet starts a Pod that becomes Ready (its readiness probe
# checks the variable is set) and prints the new value.

web_one=web-$RANDOM$RANDOM web_two=web-$RANDOM$RANDOM
# Restarts need rights the chart grants only when asked (off by default:
# patching every Deployment of the cluster is a right to be chosen).
helm upgrade "$release" "$root/charts/vaultsync" --namespace "$op_ns" --reuse-values \
  --set rolloutRestart.enabled=true --wait --timeout "${timeout}s" >"$state/node-tier-helm-rollout.log" 2>&1 ||
  fatal "helm upgrade --set rolloutRestart.enabled=true: $(tail -3 "$state/node-tier-helm-rollout.log")"
bao kv put -mount=secret node-tier/web password="$web_one" >/dev/null
k apply -n "$ns" -f - >/dev/null <<EOF2
apiVersion: vaultsync.dev/v1alpha1
kind: ExternalSecret
metadata: {name: web-creds}
spec:
  refreshInterval: 2s
  secretStoreRef: {name: openbao, kind: SecretStore}
  target: {name: web-creds}
  data:
  - secretKey: PASSWORD
    remoteRef: {key: node-tier/web, property: password}
  rolloutRestartTargets:
  - {kind: Deployment, name: web}
EOF2
wait_value web-creds PASSWORD "$web_one" 60 || fatal "Secret $ns/web-creds: no first value within 60s"
k apply -n "$ns" -f - >/dev/null <<EOF2
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    # The workload's own consent to restarts from this ExternalSecret.
    vaultsync.dev/rollout-restart-from: web-creds
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      # The app ignores SIGTERM (a shell loop): do not wait 30s for it.
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: $test_app
        imagePullPolicy: Never
        envFrom: [{secretRef: {name: web-creds}}]
        command: [sh, -c, 'echo "password=\$PASSWORD"; while :; do sleep 1 & wait \$!; done']
        readinessProbe:
          exec: {command: [sh, -c, 'test -n "\$PASSWORD"']}
          periodSeconds: 1
EOF2
if k rollout status -n "$ns" deployment/web --timeout="${timeout}s" >/dev/null 2>&1; then
  pass "Deployment $ns/web rolled out"
else
  fatal "Deployment $ns/web not rolled out within ${timeout}s"
fi
web_pods() { pods "$ns" app=web "$@"; }
old=$(web_pods | tr '\n' ' ')
old=${old% }
t_change=$SECONDS
bao kv put -mount=secret node-tier/web password="$web_two" >/dev/null
# Replaced: the old Pod is gone, a new one is Ready and printed the value.
replaced() {
  local now
  now=$(k get pods -n "$ns" -l app=web -o name 2>/dev/null | sed 's|^pod/||')
  [ -n "$now" ] && ! grep -qxF "$old" <<<"$now" && [ "$(web_pods ready | wc -l)" = 1 ]
}
if wait_for 120 replaced; then
  new=$(web_pods ready | head -1)
  pass "Pod $old replaced by $new, Ready, $((SECONDS - t_change))s after the change in OpenBao"
  wait_for 20 log_has "$new" app "password=$web_two" &&
    pass "the new Pod started with the new value in its environment" ||
    fail "new Pod's log: $(pod_log "$ns" "$new" app | tail -2)"
else
  fail "Deployment $ns/web's Pods 120s after the change: $(k get pods -n "$ns" -l app=web --no-headers 2>&1 | tr '\n' '|')"
fi
got=$(k get deployment -n "$ns" web -o jsonpath='{.spec.template.metadata.annotations}')
[[ $got == *restartedAt* ]] && pass "the Deployment's Pod template carries the restart annotation: $got" ||
  fail "the Deployment's Pod template annotations: $got"
