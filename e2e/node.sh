#!/usr/bin/env bash
# A real node for the environment of e2e/env.sh: containerd, a kubelet
# registered as Node $VAULTSYNC_NODE_NAME (default vaultsync-node), a CNI
# bridge, kube-proxy (iptables mode) and a kube-scheduler, so Pods really
# run and Services route. Prototype: see docs/node-prototype.md.
#
#   e2e/node.sh up STATE_DIR     (after `e2e/env.sh up STATE_DIR`)
#   e2e/node.sh down STATE_DIR   (`e2e/env.sh down` runs it too if needed)
#
# `up` writes into STATE_DIR/node/:
#   env          `source` it after STATE_DIR/env: NODE_NAME,
#                CONTAINERD_ADDRESS, POD_CIDR, NODE_IP, NODE_BAO_ADDR (OpenBao
#                for Pods), TEST_APP_IMAGE, PAUSE_IMAGE, PATH with ctr/kubelet
#   pids/        containerd, kubelet, kube-proxy, kube-scheduler,
#                api-forward (socat: node IP -> the API server),
#                bao-forward (socat: node IP -> OpenBao) (logs in STATE_DIR/logs/)
#   containerd/  root, state, config.toml; socket STATE_DIR/node/ctrd.sock
#   kubelet/     root dir, config, certificates; pod-logs/
#   cni/         net.d (the bridge's conflist), host-local's IPAM state
#   images/      docker archives of the images built here (buildah, FROM
#                scratch + busybox-static), imported into containerd's
#                k8s.io namespace: localhost/vaultsync/pause:local (the
#                sandbox image) and localhost/vaultsync/test-app:local
#   host.txt     what `up` changed on the host (sysctls' old values), for down
#
# Network, all on this machine: bridge vsnode0 with 10.244.0.1/24 (the node
# IP; the kubelet serves on it), Pods get 10.244.0.0/24 from host-local and
# routes only to that subnet and to the Service range 10.0.0.0/24 (no
# default route, no masquerade). The host routes 10.0.0.0/24 onto the bridge,
# so kube-proxy's DNAT of a ClusterIP works from the host (the API server)
# too. Chain VSNODE-FORWARD drops whatever would be forwarded between the
# bridge and any other interface. ip_forward must be 1 for Pod -> ClusterIP
# -> Pod (it goes through the host); `down` restores the old value.
#
# No eviction: every evictionHard signal is "0%", which the kubelet reads
# as "no threshold". This node shares a developer's or CI machine's disk and
# memory, so host-wide pressure says nothing about the operator; with 1%
# thresholds a CI run on a nearly full disk had the operator Pod evicted
# (DiskPressure) mid-test. The kernel's OOM killer still guards memory.
#
# cgroups: this machine has cgroup v1 (the unified hierarchy has no
# controllers), so the kubelet runs with failCgroupV1: false and the
# cgroupfs driver, Pods under the cgroup root <this shell's memory
# cgroup>/vaultsync-node. Root here lacks CAP_SYS_RESOURCE, so containerd
# restricts oom_score_adj (see the containerd config below).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/cluster-dns.sh
source "$here/lib/cluster-dns.sh"
log() { printf 'node.sh [%3ss] %s\n' "$((SECONDS - envsh_t0))" "$*" >&2; }

timeout=${VAULTSYNC_ENV_TIMEOUT:-120}
node_name=${VAULTSYNC_NODE_NAME:-vaultsync-node}
bridge=vsnode0
pod_cidr=10.244.0.0/24
node_ip=10.244.0.1
service_cidr=10.0.0.0/24
# Service kube-system/kube-dns, the kubelet's clusterDNS: CoreDNS on the
# node IP behind it (e2e/lib/cluster-dns.sh).
dns_service_ip=10.0.0.10
cgroup_root=/vaultsync-node # made relative to our memory cgroup by make_cgroup_root
fwd_chain=VSNODE-FORWARD
pause_image=localhost/vaultsync/pause:local
app_image=localhost/vaultsync/test-app:local
# The OCI runtime containerd's runc shim calls (runc or crun; see below).
oci_runtime=${VAULTSYNC_NODE_OCI_RUNTIME:-runc}
# Host settings the kubelet or `up` change; `down` puts back the old values.
sysctls=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory
  vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

usage() {
  echo "usage: $0 up|down STATE_DIR" >&2
  exit 2
}

# start_node NAME CMD...: start_bg of common.sh, pid in STATE_DIR/node/pids.
start_node() {
  local name=$1
  shift
  setsid nohup "$@" </dev/null >"$state/logs/$name.log" 2>&1 &
  echo "$!" >"$node/pids/$name.pid"
  log "started $name (pid $!, log $state/logs/$name.log)"
}
pid_of() { cat "$node/pids/$1.pid" 2>/dev/null || true; }

# sign NAME SUBJECT EXT_SECTION: a leaf certificate from the env's CA.
sign() {
  local name=$1 subj=$2 ext=$3 pki=$state/pki
  (
    umask 077
    cd "$node/pki"
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name.key" 2>/dev/null
    openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" -config "$node/pki/openssl.cnf"
    openssl x509 -req -in "$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
      -extfile "$node/pki/openssl.cnf" -extensions "$ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr"
  )
}

kubeconfig() {
  local file=$1 cert=$2 user=$3
  (
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vaultsync-e2e
  cluster:
    server: $KUBE_API_URL
    certificate-authority: $state/pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $node/pki/$cert.crt
    client-key: $node/pki/$cert.key
contexts:
- name: $user@vaultsync-e2e
  context: {cluster: vaultsync-e2e, user: $user}
current-context: $user@vaultsync-e2e
EOF
  )
}

up_failed() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ]; then
    printf 'node.sh: "up %s" failed (exit %s); undoing it. Logs stay in %s/logs\n' "$state" "$rc" "$state" >&2 || true
    cmd_down_inner || true
  fi
  exit "$rc"
}

cmd_up() {
  state=$(abs_dir "$1")
  node=$state/node
  [ -f "$state/env" ] || { echo "node.sh: $state/env missing: run e2e/env.sh up $state first" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$state/env"
  [ "$(id -u)" = 0 ] || { echo "node.sh: needs root (network, mounts, cgroups)" >&2; exit 1; }
  if ip link show "$bridge" >/dev/null 2>&1; then
    echo "node.sh: bridge $bridge exists: another node is up on this machine (e2e/node.sh down its STATE_DIR)" >&2
    exit 1
  fi
  [ -d "$node/pids" ] && [ -n "$(ls -A "$node/pids" 2>/dev/null)" ] && cmd_down_inner
  trap up_failed EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  rm -rf "$node"
  mkdir -p "$node"/{pids,pki,containerd,kubelet,pod-logs,cni/net.d,cni/ipam,images,kube-proxy}
  local sock=$node/ctrd.sock
  [ "${#sock}" -lt 100 ] || die "socket path $sock too long for a unix socket: use a shorter STATE_DIR"

  # 1. Tools.
  log "installing/locating node tools (scripts/node-tools.sh)"
  local bin
  bin=$(bash "$root/scripts/node-tools.sh" </dev/null)
  bin=${bin##*$'\n'}
  export PATH="$bin:$PATH"
  local t
  for t in containerd ctr containerd-shim-runc-v2 kubelet kube-proxy kube-scheduler "$oci_runtime" buildah iptables conntrack; do
    command -v "$t" >/dev/null || die "$t not found after scripts/node-tools.sh"
  done
  local cni_bin=/usr/lib/cni
  [ -x "$cni_bin/bridge" ] && [ -x "$cni_bin/host-local" ] && [ -x "$cni_bin/loopback" ] || die "CNI plugins missing in $cni_bin"

  # 2. Host network: the bridge (created here, so the kubelet can take its
  # address as node IP), the Service route, forwarding guard, sysctls.
  : >"$node/host.txt"
  local s
  for s in "${sysctls[@]}"; do
    echo "$s=$(sysctl -n "$s")" >>"$node/host.txt"
  done
  ip link add "$bridge" type bridge
  ip addr add "$node_ip/24" dev "$bridge"
  ip link set "$bridge" up
  ip route add "$service_cidr" dev "$bridge" src "$node_ip"
  iptables -w -N "$fwd_chain"
  iptables -w -A "$fwd_chain" -i "$bridge" -o "$bridge" -j RETURN
  iptables -w -A "$fwd_chain" -i "$bridge" -j DROP
  iptables -w -A "$fwd_chain" -o "$bridge" -j DROP
  iptables -w -I FORWARD 1 -j "$fwd_chain"
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

  # Cluster DNS: CoreDNS on the node IP (it needs the bridge's address),
  # serving cluster.local from the API server and refusing every other
  # name, so nothing is asked beyond this machine. Pods ask it through
  # Service kube-system/kube-dns ($dns_service_ip), as on any cluster:
  # kube-proxy's DNAT takes them to the node IP.
  log "cluster DNS (CoreDNS) on $node_ip:53"
  cluster_dns_up "$state" "$node_ip" || die "CoreDNS did not start (see $state/logs/coredns.log)"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $dns_service_ip
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
  node_endpoints kube-system kube-dns "{name: dns, port: 53, protocol: UDP}" "{name: dns-tcp, port: 53, protocol: TCP}"

  cat >"$node/cni/net.d/10-vsnode.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "vsnode",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$node_ip"}]],
        "routes": [{"dst": "$service_cidr"}],
        "dataDir": "$node/cni/ipam"
      }
    }
  ]
}
EOF

  # 3. Certificates from the env's CA.
  cat >"$node/pki/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[kubelet]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:$node_ip, IP:127.0.0.1, DNS:$node_name
EOF
  sign kubelet-client "/O=system:nodes/CN=system:node:$node_name" client
  sign kubelet-serving "/CN=$node_name" kubelet
  sign kube-proxy "/CN=system:kube-proxy" client
  sign kube-scheduler "/CN=system:kube-scheduler" client
  kubeconfig "$node/kubelet/kubeconfig" kubelet-client "system:node:$node_name"
  kubeconfig "$node/kube-proxy/kubeconfig" kube-proxy system:kube-proxy
  mkdir -p "$node/kube-scheduler"
  kubeconfig "$node/kube-scheduler/kubeconfig" kube-scheduler system:kube-scheduler

  # 4. containerd, its own root, state and socket.
  local ports kubelet_port kubelet_healthz proxy_healthz proxy_metrics sched_port
  ports=$(free_ports 5)
  { read -r kubelet_port; read -r kubelet_healthz; read -r proxy_healthz; read -r proxy_metrics; read -r sched_port; } <<<"$ports"
  # Schema version 4 (containerd 2.4's). Everything host-global is turned
  # away from the host: no imports from /etc/containerd/conf.d, NRI off (its
  # socket would be /var/run/nri/nri.sock), the opt and image-verifier dirs
  # under STATE_DIR instead of /opt/containerd.
  cat >"$node/containerd/config.toml" <<EOF
version = 4
root = "$node/containerd/root"
state = "$node/containerd/state"
imports = []
[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "$sock"
  [plugins.'io.containerd.server.v1.ttrpc']
    address = "$sock.ttrpc"
  [plugins.'io.containerd.server.v1.debug']
    address = ""
  [plugins.'io.containerd.server.v1.metrics']
    address = ""
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.internal.v1.opt']
    path = "$node/containerd/opt"
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = "$node/containerd/image-verifier"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "${VAULTSYNC_NODE_SNAPSHOTTER:-overlayfs}"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$pause_image"
  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = []
    # This machine withholds CAP_SYS_RESOURCE even from root: lowering
    # oom_score_adj (the kubelet asks -998 for sandboxes) fails with EPERM
    # in runc init. Containers get no less than containerd's own value.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = "$(command -v "$oci_runtime")"
          SystemdCgroup = false
          Root = "$node/containerd/runc"
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["$cni_bin"]
      conf_dir = "$node/cni/net.d"
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOF
  start_node containerd containerd --config "$node/containerd/config.toml"
  wait_for containerd "$timeout" "containerd to answer on $sock" ctr --address "$sock" version

  # 5. Images, built here: busybox-static FROM scratch.
  build_images "$sock"

  # 6. kubelet. Its cgroup root must exist in every hierarchy. It sits
  # below this shell's memory cgroup (a sandbox may account memory there),
  # so Pods count where we do; in the other hierarchies the same path is
  # created (cpuset's levels inherit cpus and mems from their parent).
  make_cgroup_root
  cat >"$node/cgroup-root" <<<"$cgroup_root"
  cat >"$node/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
containerRuntimeEndpoint: unix://$sock
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
tlsCertFile: $node/pki/kubelet-serving.crt
tlsPrivateKeyFile: $node/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: ["$dns_service_ip"]
resolvConf: ""
podLogsDir: $node/pod-logs
failSwapOn: false
rotateCertificates: false
serverTLSBootstrap: false
registerNode: true
maxPods: 50
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  imagefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.inodesFree: "0%"
evictionPressureTransitionPeriod: 10s
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusReportFrequency: 10s
EOF
  start_node kubelet kubelet \
    --config="$node/kubelet/config.yaml" \
    --kubeconfig="$node/kubelet/kubeconfig" \
    --root-dir="$node/kubelet/root" \
    --cert-dir="$node/kubelet/pki" \
    --hostname-override="$node_name" \
    --node-ip="$node_ip" \
    --v=2
  wait_for kubelet "$timeout" "kubelet /healthz" curl -fsS --max-time 2 "http://127.0.0.1:$kubelet_healthz/healthz"
  wait_for kubelet "$timeout" "Node $node_name to be Ready" \
    kubectl wait --for=condition=Ready "node/$node_name" --timeout=5s

  # 7. kube-proxy, iptables mode, NodePorts only on the bridge address.
  cat >"$node/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $node/kube-proxy/kubeconfig
hostnameOverride: $node_name
clusterCIDR: $pod_cidr
healthzBindAddress: 127.0.0.1:$proxy_healthz
metricsBindAddress: 127.0.0.1:$proxy_metrics
nodePortAddresses: ["$node_ip/32"]
detectLocalMode: ClusterCIDR
iptables:
  localhostNodePorts: false
  masqueradeAll: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start_node kube-proxy kube-proxy --config="$node/kube-proxy/config.yaml" --v=2
  wait_for kube-proxy "$timeout" "kube-proxy /healthz" curl -fsS --max-time 2 "http://127.0.0.1:$proxy_healthz/healthz"

  # 8. kube-scheduler: e2e/env.sh has none (no Pod ran there before).
  local skc=$node/kube-scheduler/kubeconfig
  start_node kube-scheduler kube-scheduler \
    --kubeconfig="$skc" --authentication-kubeconfig="$skc" --authorization-kubeconfig="$skc" \
    --bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false \
    --cert-dir="$node/kube-scheduler/pki" --profiling=false
  wait_for kube-scheduler "$timeout" "kube-scheduler /healthz" curl -fsSk --max-time 2 "https://127.0.0.1:$sched_port/healthz"

  # 9. Pods reach the API server as https://kubernetes.default.svc: the
  # API server listens on 127.0.0.1 only, so socat forwards the node IP's
  # port (the Service's targetPort, the API server's port) to it, and
  # default/kubernetes gets an EndpointSlice naming the node IP (env.sh runs
  # the API server with --endpoint-reconciler-type=none).
  local api_port=${KUBE_API_URL##*:}
  start_node api-forward socat "TCP-LISTEN:$api_port,bind=$node_ip,fork,reuseaddr" "TCP:127.0.0.1:$api_port"
  node_endpoints default kubernetes "{name: https, port: $api_port, protocol: TCP}"
  local kube_svc_ip=${service_cidr%.*/*}.1
  wait_for api-forward "$timeout" "the API server through Service kubernetes ($kube_svc_ip:443)" \
    curl -fsS --max-time 2 --cacert "$state/pki/ca.crt" --resolve "kubernetes.default.svc:443:$kube_svc_ip" \
    --cert "$node/pki/kube-proxy.crt" --key "$node/pki/kube-proxy.key" https://kubernetes.default.svc/version

  # 10. OpenBao for Pods, the same way: the dev server listens on
  # 127.0.0.1 only, which a Pod cannot reach (its own loopback); Pods use
  # http://NODE_IP:<OpenBao's port> ($NODE_BAO_ADDR in node/env), or a
  # Service of their own pointing there (the node tier's 40-dns).
  local bao_port=${BAO_ADDR##*:}
  start_node bao-forward socat "TCP-LISTEN:$bao_port,bind=$node_ip,fork,reuseaddr" "TCP:127.0.0.1:$bao_port"
  wait_for bao-forward "$timeout" "OpenBao on the node IP ($node_ip:$bao_port)" \
    curl -fsS --max-time 2 "http://$node_ip:$bao_port/v1/sys/health"

  {
    printf '# written by e2e/node.sh up; source it after %s/env\n' "$state"
    printf 'export NODE_NAME=%q NODE_IP=%q POD_CIDR=%q\n' "$node_name" "$node_ip" "$pod_cidr"
    printf 'export NODE_BAO_ADDR=%q\n' "http://$node_ip:$bao_port"
    printf 'export CLUSTER_DNS_IP=%q\n' "$dns_service_ip"
    printf 'export CONTAINERD_ADDRESS=%q CONTAINERD_NAMESPACE=k8s.io\n' "$sock"
    printf 'export TEST_APP_IMAGE=%q PAUSE_IMAGE=%q\n' "$app_image" "$pause_image"
    # shellcheck disable=SC2016
    printf 'export PATH=%q:"$PATH"\n' "$bin"
  } >"$node/env"
  trap - EXIT INT TERM
  log "node $node_name up in $((SECONDS - envsh_t0))s: source $state/env $node/env"
}

# node_endpoints NAMESPACE SERVICE PORT...: an EndpointSlice
# SERVICE-node for the Service, naming the node IP with the given ports
# (YAML flow mappings); `down` deletes it by name.
node_endpoints() {
  local namespace=$1 service=$2 port
  shift 2
  {
    cat <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $service-node
  namespace: $namespace
  labels:
    kubernetes.io/service-name: $service
    endpointslice.kubernetes.io/managed-by: node.sh.vaultsync.dev
addressType: IPv4
endpoints:
- addresses: ["$node_ip"]
  conditions: {ready: true}
ports:
EOF
    for port in "$@"; do echo "- $port"; done
  } | kubectl apply -f - >/dev/null
}

make_cgroup_root() {
  local base h dir rel part
  base=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
  [ "$base" != / ] || base=
  cgroup_root=$base/vaultsync-node
  for h in /sys/fs/cgroup/*/; do
    [ -f "${h}cgroup.procs" ] || continue
    case $h in */unified/) continue ;; esac
    dir=${h%/}
    rel=${cgroup_root#/}
    local IFS=/
    for part in $rel; do
      if [ ! -d "$dir/$part" ]; then
        mkdir "$dir/$part"
        if [ -f "$dir/cpuset.cpus" ]; then
          cat "$dir/cpuset.cpus" >"$dir/$part/cpuset.cpus"
          cat "$dir/cpuset.mems" >"$dir/$part/cpuset.mems"
        fi
      fi
      dir=$dir/$part
    done
    unset IFS
  done
  log "cgroup root $cgroup_root (cgroup v1, cgroupfs driver)"
}

# build_images SOCKET: pause and test-app, FROM scratch with busybox-static,
# in buildah's vfs storage under STATE_DIR/node (chroot isolation: no
# runtime needed), exported as docker archives and imported like
# `kind load image-archive` does.
build_images() {
  local sock=$1 store=$node/buildah rootfs=$node/images/rootfs a
  local bb=/bin/busybox
  file -L "$bb" 2>/dev/null | grep -q 'statically linked' || die "$bb is not busybox-static"
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
  cp "$bb" "$rootfs/bin/busybox"
  for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$rootfs/bin/$a"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
  echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
  local bh=(buildah --storage-driver vfs --root "$store/root" --runroot "$store/run")
  local img name cmd c
  for img in pause test-app; do
    name=localhost/vaultsync/$img:local
    c=$("${bh[@]}" from --quiet --isolation chroot scratch)
    "${bh[@]}" copy --quiet "$c" "$rootfs/" / >/dev/null
    if [ "$img" = pause ]; then
      # The sandbox's process: sleeps, exits at once on TERM/INT.
      cmd='["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'
    else
      cmd='["/bin/sh"]'
    fi
    "${bh[@]}" config --entrypoint '[]' --cmd "$cmd" --env PATH=/bin --workingdir / \
      --os linux --arch amd64 "$c"
    "${bh[@]}" commit --quiet --rm "$c" "$name" >/dev/null
    rm -f "$node/images/$img.tar"
    "${bh[@]}" push --quiet "$name" "docker-archive:$node/images/$img.tar:$name" >/dev/null
    ctr --address "$sock" -n k8s.io images import --local "$node/images/$img.tar" >/dev/null 2>"$state/logs/ctr-import.log" ||
      ctr --address "$sock" -n k8s.io images import "$node/images/$img.tar" >/dev/null 2>>"$state/logs/ctr-import.log" ||
      die "ctr images import $img failed: $(cat "$state/logs/ctr-import.log")"
    log "image $name built and imported ($(du -h "$node/images/$img.tar" | cut -f1))"
  done
  rm -rf "$store" "$rootfs"
}

# --- down ---------------------------------------------------------------

cmd_down() {
  if [ ! -d "$1/node" ]; then
    log "nothing to stop: $1/node does not exist"
    return 0
  fi
  state=$(abs_dir "$1")
  node=$state/node
  # shellcheck disable=SC1091
  [ -f "$state/env" ] && source "$state/env"
  cmd_down_inner
  log "node down (logs kept in $state/logs)"
}

cmd_down_inner() {
  local sock=$node/ctrd.sock bin
  bin=$(bash "$root/scripts/node-tools.sh" --print)
  export PATH="$bin:$PATH"
  # Pods first, while the kubelet still runs: it stops the sandboxes
  # through CNI DEL (veths, IPAM) the normal way.
  if [ -f "$node/pids/kubelet.pid" ] && alive "$(pid_of kubelet)" &&
    kubectl get node "$node_name" --request-timeout=5s >/dev/null 2>&1; then
    log "deleting the pods of node $node_name"
    kubectl delete pods --all-namespaces --field-selector "spec.nodeName=$node_name" \
      --grace-period=1 --wait=false --request-timeout=10s >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ] &&
      [ -n "$(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null)" ]; do
      sleep 1
    done
  fi
  stop_named kube-scheduler
  stop_named api-forward
  stop_named bao-forward
  kubectl delete endpointslice -n default kubernetes-node --ignore-not-found --request-timeout=5s >/dev/null 2>&1 || true
  kubectl delete service -n kube-system kube-dns --ignore-not-found --request-timeout=5s >/dev/null 2>&1 || true
  kubectl delete endpointslice -n kube-system kube-dns-node --ignore-not-found --request-timeout=5s >/dev/null 2>&1 || true
  cluster_dns_down "$state" || true
  stop_named kube-proxy
  if [ -x "$bin/kube-proxy" ]; then
    kube-proxy --cleanup >"$state/logs/kube-proxy-cleanup.log" 2>&1 || true
  fi
  stop_named kubelet
  kubectl delete node "$node_name" --ignore-not-found --request-timeout=5s >/dev/null 2>&1 || true
  # Whatever still runs in containerd: killed and removed.
  if [ -S "$sock" ]; then
    local id
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 || true
      ctr --address "$sock" -n k8s.io containers rm "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_named containerd
  # Shims of our containerd (they carry our socket on their command line).
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    if tr '\0' ' ' 2>/dev/null <"$f" | grep -qF -- "-address $sock "; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # containerd's fixed directories (shim sockets, fifos), if empty now.
  rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
  # Mounts under STATE_DIR/node (rootfs overlays, netns, pod volumes),
  # deepest first.
  local m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v p="$node/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  # Network: the bridge, route, our chain, the kubelet's chains.
  ip link del "$bridge" 2>/dev/null || true
  if iptables -w -S "$fwd_chain" >/dev/null 2>&1; then
    iptables -w -D FORWARD -j "$fwd_chain" 2>/dev/null || true
    iptables -w -F "$fwd_chain"
    iptables -w -X "$fwd_chain"
  fi
  local ipt table
  for ipt in iptables ip6tables; do
    for table in mangle nat filter; do
      "$ipt" -w -t "$table" -F KUBE-KUBELET-CANARY 2>/dev/null && "$ipt" -w -t "$table" -X KUBE-KUBELET-CANARY 2>/dev/null || true
    done
    "$ipt" -w -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
  # The kubelet's and kube-proxy's martian-packet guard (kube-proxy
  # --cleanup leaves it).
  for ipt in iptables ip6tables; do
    while "$ipt" -w -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$ipt" -w -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    "$ipt" -w -F KUBE-FIREWALL 2>/dev/null && "$ipt" -w -X KUBE-FIREWALL 2>/dev/null || true
  done
  # Host settings back as they were.
  if [ -f "$node/host.txt" ]; then
    local kv
    while read -r kv; do
      sysctl -qw "$kv" 2>/dev/null || true
    done <"$node/host.txt"
    rm -f "$node/host.txt"
  fi
  # The cgroups the kubelet made, in every hierarchy, deepest first.
  local h
  [ -f "$node/cgroup-root" ] && cgroup_root=$(cat "$node/cgroup-root")
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h${cgroup_root#/}" ] || continue
    find "$h${cgroup_root#/}" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "$node/containerd" "$node/kubelet/root" "$node/cni/ipam" "$node/images" "$node/buildah"
}

# stop_named NAME: stop_pidfiles of common.sh for one of ours.
stop_named() {
  [ -f "$node/pids/$1.pid" ] || return 0
  stop_pidfiles "$node/pids/$1.pid"
}

[ $# -eq 2 ] || usage
case $1 in
  up) cmd_up "$2" ;;
  down) cmd_down "$2" ;;
  *) usage ;;
esac
