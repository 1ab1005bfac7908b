# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh, lib.sh and 60-injection
# Sourced by e2e/node-tier.sh (see there), after 60-injection (the chart's
# injector is on). The Vault agent injector's
# `vault.hashicorp.com/agent-inject-command-<name>` as a Pod written for it
# uses it: the agent runs `/bin/sh -c <command>` after the file is written,
# in the init container once and in the sidecar after each change of the
# file. vaultsync's image has no shell, so the Pod names an agent image
# built on it with one (vaultsync.dev/agent-image); built here from
# `make image`'s archive plus busybox-static, keeping its entrypoint, and
# imported as `kind load image-archive` would. Without that annotation the
# API server refuses the Pod with the webhook's message.
#
# The command appends "ran <sha256 of the file>" to a file beside it; the
# app prints how many lines that file has, how many distinct hashes, and
# whether the last one is the hash of the file as it is now: no value and
# no hash in any log.

[ -n "${webhook_pod:-}" ] || fatal "65-inject-command needs 60-injection (the chart's injector)"

# The agent image with a shell: vaultsync's archive + /bin/busybox and its
# applet links, in buildah's vfs storage under the state dir (chroot
# isolation, nothing run), removed afterwards (node.sh down removes
# node/images too, should this stop half way).
shell_image=localhost/vaultsync/agent-shell:local
shell_build=$state/node/images/agent-shell
shell_bh=(buildah --storage-driver vfs --root "$shell_build/root" --runroot "$shell_build/run")
build_agent_shell() {
  local c a tar=$shell_build/agent-shell.tar
  [[ $(file -L /bin/busybox 2>&1) == *'statically linked'* ]] || { echo "/bin/busybox is not busybox-static"; return 1; }
  mkdir -p "$shell_build/rootfs/bin"
  cp /bin/busybox "$shell_build/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -sf busybox "$shell_build/rootfs/bin/$a"
  done
  c=$("${shell_bh[@]}" from --quiet --isolation chroot "oci-archive:$archive") &&
    "${shell_bh[@]}" copy --quiet "$c" "$shell_build/rootfs/" / >/dev/null &&
    "${shell_bh[@]}" config --env PATH=/bin "$c" &&
    "${shell_bh[@]}" commit --quiet --rm "$c" "$shell_image" >/dev/null &&
    "${shell_bh[@]}" push --quiet "$shell_image" "docker-archive:$tar:$shell_image" >/dev/null || return 1
  # What the Pods run: the vaultsync image's entrypoint and user, kept.
  shell_config=$("${shell_bh[@]}" inspect --type image \
    --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}} {{.OCIv1.Config.User}} {{.OCIv1.Config.Env}}' "$shell_image") &&
    shell_size=$(du -h "$tar" | cut -f1) || return 1
  "${ctr_k8s[@]}" images import --local "$tar" >/dev/null 2>&1 ||
    "${ctr_k8s[@]}" images import "$tar" >/dev/null
}
t_shell=$SECONDS
rm -rf "$shell_build"
if build_agent_shell >"$state/node-tier-agent-shell.log" 2>&1; then
  pass "agent image $shell_image built from $(basename "$archive") + busybox-static and imported into containerd in $((SECONDS - t_shell))s ($shell_size)"
else
  rm -rf "$shell_build"
  fatal "building the agent image with a shell: $(tail -3 "$state/node-tier-agent-shell.log")"
fi
rm -rf "$shell_build"
check "agent image's entrypoint, command, user, environment (the vaultsync image's, plus PATH)" \
  "[/vaultsync] [run] 65532:65532 [PATH=/bin]" "$shell_config"

json() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
cmd_one=cmd-$RANDOM$RANDOM cmd_two=cmd-$RANDOM$RANDOM
bao kv put -mount=secret node-tier/cmd token="$cmd_one" >/dev/null
# The command, a shell line as the Vault agent runs it (expanded by the
# agent's shell, not here; so is the app's).
# shellcheck disable=SC2016
inject_command='echo "ran $(sha256sum /vault/secrets/config | cut -d " " -f 1)" >>/vault/secrets/command-ran'
# The app: whenever the command's file grows, one line about it.
# shellcheck disable=SC2016
cmd_app='seen=0
while :; do
  ran=$(($(wc -l </vault/secrets/command-ran)))
  if [ "$ran" != "$seen" ]; then
    distinct=$(($(sort -u /vault/secrets/command-ran | wc -l)))
    now="ran $(sha256sum /vault/secrets/config | cut -d " " -f 1)"
    [ "$(tail -n 1 /vault/secrets/command-ran)" = "$now" ] && same=yes || same=no
    echo "command ran $ran time(s) on $distinct distinct file(s), the last on the file as it is now: $same"
    seen=$ran
  fi
  sleep 1
done'
# As a Vault injector user writes it, plus the agent image; the same
# without the agent image is refused.
cmd_pod() {
  cat <<EOF2
apiVersion: v1
kind: Pod
metadata:
  name: $1
  annotations:
    vault.hashicorp.com/agent-inject: "true"
    vault.hashicorp.com/role: node-tier
    vault.hashicorp.com/agent-inject-secret-config: secret/data/node-tier/cmd
    vault.hashicorp.com/agent-inject-template-config: |
      {{- with secret "secret/data/node-tier/cmd" -}}token={{ .Data.data.token }}{{- end -}}
    vault.hashicorp.com/agent-inject-command-config: $(json "$inject_command")
    vaultsync.dev/poll-interval: 2s
$2
spec:
  serviceAccountName: app
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 65532, runAsGroup: 65532, runAsNonRoot: true}
  containers:
  - name: app
    image: $test_app
    imagePullPolicy: Never
    command: [sh, -c, $(json "$cmd_app")]
EOF2
}

refused=$(cmd_pod no-shell "" | k create --dry-run=server -n "$ns" -f - 2>&1) && refused="admitted: $refused"
if [[ $refused == *denied* && $refused == *"vault.hashicorp.com/agent-inject-command-config"* && $refused == *"vaultsync.dev/agent-image"* ]]; then
  pass "without vaultsync.dev/agent-image the API server refuses the Pod (server-side dry run) naming agent-inject-command-config and agent-image"
else
  fail "the Pod with agent-inject-command and no agent-image: $(tail -2 <<<"$refused")"
fi

cmd_pod inject-command "    vaultsync.dev/agent-image: $shell_image" >"$state/node-tier-inject-command.yaml"
if k create -n "$ns" -f "$state/node-tier-inject-command.yaml" >/dev/null 2>"$state/node-tier-inject-command.err"; then
  pass "the Pod with agent-inject-command and vaultsync.dev/agent-image $shell_image is admitted"
else
  fail "the Pod with agent-inject-command was refused: $(tail -2 "$state/node-tier-inject-command.err")"
fi
cmd_ready() { [ "$(k get pod -n "$ns" inject-command -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
if wait_for "$timeout" cmd_ready; then
  pass "Pod $ns/inject-command Ready"
else
  fail "Pod $ns/inject-command not Ready within ${timeout}s: $(k get pod -n "$ns" inject-command --no-headers 2>&1)"
fi
got=$(k get pod -n "$ns" inject-command -o jsonpath='{range .spec.initContainers[*]}{.name}={.image} {end}' 2>/dev/null)
check "the agent containers run the agent image with a shell" \
  "vaultsync-agent-init=$shell_image vaultsync-agent=$shell_image " "$got"
got=$(k get pod -n "$ns" inject-command -o jsonpath='{.status.initContainerStatuses[0].state.terminated.reason}:{.status.initContainerStatuses[0].state.terminated.exitCode}' 2>/dev/null)
check "the init agent (which ran the command) ended" "Completed:0" "$got"

once="command ran 1 time(s) on 1 distinct file(s), the last on the file as it is now: yes"
twice="command ran 2 time(s) on 2 distinct file(s), the last on the file as it is now: yes"
# "running the file's command" lines in an agent container's log.
cmd_runs() { pod_log "$ns" inject-command "$1" | grep -cF "running the file's command" || true; }
if wait_for 30 log_has inject-command app "$once"; then
  pass "the init container ran the command once, after writing the file: the app's log says '$once'"
else
  fail "app log: $(pod_log "$ns" inject-command app | tail -3 | tr '\n' '|')"
fi
# Unchanged rounds of the sidecar (poll 2s) run nothing: still once.
sleep 6
got="$(cmd_runs vaultsync-agent-init) $(cmd_runs vaultsync-agent) $(pod_log "$ns" inject-command app | tail -1)"
check "6s later, before any change: command runs logged by init and sidecar, app's last line" "1 0 $once" "$got"

t_change=$SECONDS
bao kv put -mount=secret node-tier/cmd token="$cmd_two" >/dev/null
if wait_for 60 log_has inject-command app "$twice"; then
  pass "the sidecar re-rendered the file and ran the command again $((SECONDS - t_change))s after the change in OpenBao: '$twice'"
else
  fail "after the change the app log is: $(pod_log "$ns" inject-command app | tail -3 | tr '\n' '|') sidecar: $(pod_log "$ns" inject-command vaultsync-agent | tail -3 | tr '\n' '|')"
fi
sleep 6
got="$(cmd_runs vaultsync-agent-init) $(cmd_runs vaultsync-agent) $(pod_log "$ns" inject-command app | tail -1)"
check "6s after the change: command runs logged by init and sidecar, app's last line" "1 1 $twice" "$got"
cmd_logs=$(pod_log "$ns" inject-command vaultsync-agent-init; pod_log "$ns" inject-command vaultsync-agent; pod_log "$ns" inject-command app)
if [ -n "$cmd_logs" ] && ! grep -qF -e "$cmd_one" -e "$cmd_two" <<<"$cmd_logs"; then
  pass "the agents' and the app's logs ($(wc -l <<<"$cmd_logs") lines) hold neither value"
else
  fail "the logs of Pod inject-command are empty or hold a value"
fi

# Clean up: the Pod, its image, the value.
k delete pod -n "$ns" inject-command --wait=true --timeout=60s >/dev/null 2>&1 ||
  fail "Pod $ns/inject-command not deleted within 60s"
"${ctr_k8s[@]}" images rm "$shell_image" >/dev/null 2>&1 || true
bao kv metadata delete -mount=secret node-tier/cmd >/dev/null || fail "bao kv metadata delete node-tier/cmd"
