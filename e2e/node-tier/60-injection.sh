# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there). The injector as Pods really run
# it: the chart's webhook in its own Pod (TLS certificate it makes itself,
# caBundle it writes), reached by the API server through its Service; an
# annotated Pod of the test-app image gets the agent's init container
# (renders the file before the app starts: the app's log shows it), the
# native sidecar (re-renders when OpenBao changes and signals the app,
# whose log shows the new text); an unannotated Pod is left as written.

# The agent in the Pod reaches OpenBao by the address 40-dns proved
# resolvable (a Service name), else by the node IP.
agent_bao_addr=${pod_bao_addr:-$NODE_BAO_ADDR}
token_one=token-$RANDOM$RANDOM token_two=token-$RANDOM$RANDOM
bao kv put -mount=secret node-tier/app token="$token_one" >/dev/null

t_injector=$SECONDS
if helm upgrade "$release" "$root/charts/vaultsync" --namespace "$op_ns" --reuse-values \
  --set injector.enabled=true --set injector.replicaCount=1 --set injector.vaultAddress="$agent_bao_addr" \
  --wait --timeout "${timeout}s" >"$state/node-tier-helm-injector.log" 2>&1; then
  pass "helm upgrade --set injector.enabled=true: done in $((SECONDS - t_injector))s"
else
  fatal "helm upgrade with the injector: $(tail -3 "$state/node-tier-helm-injector.log")"
fi
injector_selector="app.kubernetes.io/name=$release-injector,app.kubernetes.io/instance=$release"
webhook_pod=$(pods "$op_ns" "$injector_selector" ready | head -1)
[ -n "$webhook_pod" ] && pass "injector Pod $webhook_pod Ready through its probe" ||
  fatal "no Ready injector Pod: $(k get pods -n "$op_ns" -l "$injector_selector" -o wide 2>&1 | tail -2)"
# The webhook writes the caBundle of its configuration itself.
ca_bundle_set() {
  [ -n "$(k get mutatingwebhookconfiguration -l "app.kubernetes.io/instance=$release" \
    -o jsonpath='{.items[0].webhooks[0].clientConfig.caBundle}' 2>/dev/null)" ]
}
wait_for 60 ca_bundle_set && pass "the MutatingWebhookConfiguration has the caBundle the webhook wrote" ||
  fail "the MutatingWebhookConfiguration has no caBundle 60s after the injector started"

# The app: prints the file at start and on SIGHUP; `sh` is what the agent
# signals (notify-process matches /proc/PID/comm in the shared PID
# namespace). The whole Pod runs as the agent's UID: a signal from the
# agent (65532) to a root app would be refused by the kernel (EPERM).
app_script='trap "echo reloaded: \$(cat /vault/secrets/config)" HUP
echo "started: $(cat /vault/secrets/config)"
while :; do sleep 1 & wait $!; done'
manifest=$state/node-tier-injected.yaml
cat >"$manifest" <<EOF2
apiVersion: v1
kind: Pod
metadata:
  name: injected
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: node-tier
    vault.hashicorp.com/agent-inject-secret-config: secret/data/node-tier/app
    vault.hashicorp.com/agent-inject-template-config: |
      {{- with secret "secret/data/node-tier/app" -}}token={{ .Data.data.token }}{{- end -}}
    vaultsync.dev/poll-interval: 2s
    vaultsync.dev/notify-signal: HUP
    vaultsync.dev/notify-process: sh
spec:
  serviceAccountName: app
  shareProcessNamespace: true
  securityContext: {runAsUser: 65532, runAsGroup: 65532, runAsNonRoot: true}
  containers:
  - name: app
    image: $test_app
    imagePullPolicy: Never
    command: [sh, -c, $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$app_script")]
---
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  serviceAccountName: app
  containers:
  - name: app
    image: $test_app
    imagePullPolicy: Never
    command: [sh, -c, 'echo plain; while :; do sleep 1 & wait \$!; done']
EOF2
# Ready is not yet routed: the API server reaches the webhook through its
# Service once kube-proxy has the new endpoint (seen: "connection refused"
# a second after the Pod was Ready). A server-side dry run calls the
# webhook as a create would; failurePolicy Fail refuses the Pod until then.
webhook_answers() { k create --dry-run=server -n "$ns" -f "$manifest" >/dev/null 2>&1; }
if wait_for 30 webhook_answers; then
  pass "the API server calls the webhook through its Service (a server-side dry run of the Pods passes)"
else
  fail "the webhook does not answer through its Service: $(k create --dry-run=server -n "$ns" -f "$manifest" 2>&1 | tail -1)"
fi
k create -n "$ns" -f "$manifest" >/dev/null
pod_ready() { [ "$(k get pod -n "$ns" "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
wait_for "$timeout" pod_ready injected || fail "Pod $ns/injected not Ready within ${timeout}s"
wait_for 60 pod_ready plain || fail "Pod $ns/plain not Ready within 60s"
ipj() { k get pod -n "$ns" injected -o "jsonpath=$1" 2>/dev/null; }
# What the webhook made of the Pod, and what the kubelet ran of it.
got=$(ipj '{range .spec.initContainers[*]}{.name}:{.restartPolicy} {end}')
check "injected Pod's init containers (name:restartPolicy)" "vaultsync-agent-init: vaultsync-agent:Always " "$got"
got=$(ipj '{.status.initContainerStatuses[0].state.terminated.reason}:{.status.initContainerStatuses[0].state.terminated.exitCode} {.status.initContainerStatuses[1].started}:{.status.initContainerStatuses[1].ready} {.status.containerStatuses[0].ready}:{.status.containerStatuses[0].restartCount}')
check "init agent Completed:exit, sidecar started:ready, app ready:restarts" "Completed:0 true:true true:0" "$got"
if wait_for 30 log_has injected app "started: token=$token_one"; then
  pass "the app read the file the init container rendered: its log has 'started: token=<value>'"
else
  fail "app log: $(pod_log "$ns" injected app | tail -3)"
fi
t_change=$SECONDS
bao kv put -mount=secret node-tier/app token="$token_two" >/dev/null
if wait_for 60 log_has injected app "reloaded: token=$token_two"; then
  pass "the sidecar re-rendered the file and signalled the app (SIGHUP) $((SECONDS - t_change))s after the change in OpenBao"
else
  fail "after the change the app log is: $(pod_log "$ns" injected app | tail -3 | tr '\n' '|') sidecar: $(pod_log "$ns" injected vaultsync-agent | tail -3 | tr '\n' '|')"
fi
# No value in the agent's own log (init and sidecar).
agent_logs=$(pod_log "$ns" injected vaultsync-agent-init; pod_log "$ns" injected vaultsync-agent)
if [ -n "$agent_logs" ] && ! grep -qF -e "$token_one" -e "$token_two" <<<"$agent_logs"; then
  pass "the agent's logs ($(wc -l <<<"$agent_logs") lines) hold neither value"
else
  fail "the agent's logs are empty or hold a value"
fi

# Exec mode in a real Pod: an init container of the agent's image copies
# the binary into a volume, and the app's command runs under it, with the
# value in its environment only (its log shows it was resolved).
k create -n "$ns" -f - >/dev/null <<EOF2
apiVersion: v1
kind: Pod
metadata:
  name: exec-mode
  annotations:
    vaultsync.dev/inject: "true"
    vaultsync.dev/mode: exec
    vaultsync.dev/role: node-tier
spec:
  serviceAccountName: app
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: $test_app
    imagePullPolicy: Never
    env: [{name: TOKEN, value: "vault:secret/data/node-tier/app#token"}]
    command: [sh, -c, 'echo "exec: \${#TOKEN} characters, token=\$TOKEN" | sed "s/token=token-.*/token=resolved/"; while :; do sleep 1 & wait \$!; done']
EOF2
if wait_for 60 pod_ready exec-mode && wait_for 20 log_has exec-mode app "exec: ${#token_two} characters, token=resolved"; then
  pass "exec mode: the app's command ran under the agent and got the value in its environment (${#token_two} characters)"
else
  fail "exec mode Pod: $(k get pod -n "$ns" exec-mode --no-headers 2>&1) log: $(pod_log "$ns" exec-mode app | tail -2)"
fi

# The unannotated Pod: the API server never sent it to the webhook (a
# matchCondition), so it is exactly as written.
got=$(k get pod -n "$ns" plain -o jsonpath='{.spec.initContainers} {.spec.shareProcessNamespace} {.metadata.annotations}|{range .spec.volumes[*]}{.name} {end}')
[[ $got == "  |kube-api-access-"* ]] && [[ $got != *vaultsync* ]] &&
  pass "the unannotated Pod has no init container, annotation or volume of the injector" ||
  fail "the unannotated Pod was changed: $got"
log_has plain app plain && pass "the unannotated Pod runs: its log says 'plain'" || fail "plain Pod's log: $(pod_log "$ns" plain app | tail -2)"
