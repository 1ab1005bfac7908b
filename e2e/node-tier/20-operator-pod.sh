# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there). The operator's Pod as the
# kubelet runs it: Ready through the readiness probe, the Lease, and the
# chart's security context as the API has it and as the kernel runs the
# process (read on the host from /proc).

pod=
deadline=$((SECONDS + 60))
while [ -z "$pod" ] && [ "$SECONDS" -lt "$deadline" ]; do
  pod=$(k get pods -n "$op_ns" -l "app.kubernetes.io/instance=$release" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  [ -n "$pod" ] || sleep 0.5
done
[ -n "$pod" ] || fatal "no operator Pod $(t)s after helm install"
if k wait -n "$op_ns" --for=condition=Ready "pod/$pod" --timeout="${timeout}s" >/dev/null; then
  t_ready=$(t)
  pass "pod $pod Ready ${t_ready}s after helm install (kubelet's readiness probe GET /ready)"
else
  fatal "pod $pod not Ready within ${timeout}s: $(k get pod -n "$op_ns" "$pod" -o wide 2>&1 | tail -1)"
fi
jp() { k get pod -n "$op_ns" "$pod" -o "jsonpath=$1"; }
# What the kubelet reports: the probe made it ready, nothing restarted,
# and it runs our image.
got=$(jp '{.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].image} {.spec.containers[0].readinessProbe.httpGet.path}')
[ "$got" = "true 0 $image /ready" ] && pass "container ready, 0 restarts, image $image, readiness probe /ready" ||
  fail "container status (ready restarts image probe): $got"
node=$(jp '{.spec.nodeName}') ip=$(jp '{.status.podIP}')
[ "$node" = "$NODE_NAME" ] && [[ $ip == "${POD_CIDR%.*/*}".* ]] && pass "runs on node $node with Pod IP $ip" ||
  fail "pod on node '$node' with IP '$ip' (want $NODE_NAME, $POD_CIDR)"

# The security context as the API server has it.
got=$(jp '{.spec.securityContext.runAsUser}:{.spec.securityContext.runAsGroup} {.spec.securityContext.runAsNonRoot} {.spec.containers[0].securityContext.readOnlyRootFilesystem} {.spec.containers[0].securityContext.allowPrivilegeEscalation} {.spec.containers[0].securityContext.capabilities.drop}')
[ "$got" = '65532:65532 true true false ["ALL"]' ] &&
  pass "pod spec: runAsUser:Group 65532:65532, runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, drop ALL" ||
  fail "pod spec security context: $got"

# ... and as the kernel runs it: containerd's task for the container, a
# child of our runc shim, read from the host's /proc.
cid=$(jp '{.status.containerStatuses[0].containerID}')
cid=${cid#containerd://}
pid=$("${ctr_k8s[@]}" tasks ls 2>/dev/null | awk -v id="$cid" '$1 == id {print $2}')
if [ -z "$pid" ] || [ ! -r "/proc/$pid/status" ]; then
  fail "no running containerd task for container $cid"
else
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  ppid=$(awk '$1 == "PPid:" {print $2}' "/proc/$pid/status")
  shim=$(tr '\0' ' ' <"/proc/$ppid/cmdline" 2>/dev/null || true)
  if [[ $cmd == "/vaultsync run "* && $shim == *containerd-shim-runc-v2*"-address $CONTAINERD_ADDRESS "* ]]; then
    pass "process $pid '$cmd' is a child of our containerd shim (pid $ppid)"
  else
    fail "process $pid: '$cmd', parent $ppid: '$shim'"
  fi
  ids=$(awk '$1 == "Uid:" || $1 == "Gid:" {printf "%s %s %s %s %s;", $1, $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$ids" = "Uid: 65532 65532 65532 65532;Gid: 65532 65532 65532 65532;" ] &&
    pass "process runs as UID/GID 65532 (real, effective, saved, fs): /proc/$pid/status" ||
    fail "process ids: $ids"
  sec=$(awk '$1 == "NoNewPrivs:" || $1 == "CapEff:" || $1 == "CapBnd:" || $1 == "Seccomp:" {printf "%s %s ", $1, $2}' "/proc/$pid/status")
  [ "$sec" = "CapEff: 0000000000000000 CapBnd: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 " ] &&
    pass "process has no capabilities, no_new_privs, a seccomp filter: $sec" ||
    fail "process privileges: $sec"
  rootmnt=$(awk '$5 == "/" {print $6}' "/proc/$pid/mountinfo")
  [[ ,$rootmnt, == *,ro,* ]] && pass "root mount of the container is read-only ($rootmnt)" ||
    fail "root mount options: '$rootmnt'"
  # A write through the container's own root (/proc/PID/root), as root on
  # the host: only a read-only mount refuses it.
  if err=$(: 2>&1 >"/proc/$pid/root/node-tier-write-probe"); then
    rm -f "/proc/$pid/root/node-tier-write-probe"
    fail "a write to the container's root filesystem succeeded"
  elif [[ $err == *"Read-only file system"* ]]; then
    pass "a write to the container's root filesystem fails: Read-only file system"
  else
    fail "a write to the container's root filesystem failed otherwise: $err"
  fi
fi

# The operator in the Pod leads (a Lease through the in-cluster API server).
holder=$(k get lease -n "$op_ns" "$release-leader" -o jsonpath='{.spec.holderIdentity}' 2>&1 || true)
[ "$holder" = "$pod" ] && pass "Lease $release-leader held by $pod" || fail "Lease $release-leader holder: '$holder' (want $pod)"

