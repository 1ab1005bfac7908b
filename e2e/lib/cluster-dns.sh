# shellcheck shell=bash
# Cluster DNS for Pods of e2e/node.sh: CoreDNS (scripts/node-tools.sh builds
# it with only bind, ready, errors, log, loadbalance, cache and kubernetes;
# no forward plugin) runs on the host, answers for cluster.local and the
# reverse zones of the Service and Pod ranges from the API server, and
# REFUSES every other name: nothing is sent off this machine.
#
#   cluster_dns_up STATE_DIR LISTEN_IP   start it, wait until it is ready
#   cluster_dns_down STATE_DIR           stop it (idempotent)
#
# Sourced, never run; needs a running e2e/env.sh environment in STATE_DIR
# (its env file, admin kubeconfig and CA) and coredns in the tools' bin dir
# (scripts/node-tools.sh, or `scripts/node-tools.sh --coredns` for it alone).
# Uses no helper of the sourcing script; its own functions start with
# cluster_dns_ or _cdns_.
#
# Writes:
#   STATE_DIR/dns/Corefile       the configuration
#   STATE_DIR/dns/coredns.crt/.key, kubeconfig
#                                CoreDNS's identity towards the API server:
#                                user system:vaultsync:cluster-dns, signed by
#                                the env's CA, bound to ClusterRole
#                                vaultsync:cluster-dns (list/watch services,
#                                namespaces, endpointslices: nothing else)
#   STATE_DIR/logs/coredns.log   its log (one line per query: plugin log)
#   STATE_DIR/pids/coredns.pid   so `e2e/env.sh down` stops it too
#
# CoreDNS listens on LISTEN_IP:53 (UDP and TCP; plugin bind, so several
# environments can run side by side on different addresses) and serves its
# readiness on http://LISTEN_IP:$CLUSTER_DNS_READY_PORT/ready (default 8181;
# 200 once the kubernetes plugin has synced with the API server).
# Environment: CLUSTER_DNS_REVERSE, the ranges whose PTR records it serves
# (default "10.0.0.0/24 10.244.0.0/24": Services of e2e/env.sh, Pods of
# e2e/node.sh; /8, /16 or /24 only); CLUSTER_DNS_TIMEOUT, the wait in
# seconds (default 60).
#
# What the kubelet of e2e/node.sh needs, in its KubeletConfiguration:
#   clusterDNS: [LISTEN_IP]       e.g. the node's bridge address 10.244.0.1
#   clusterDomain: cluster.local  (already set)
# Then a Pod with the default dnsPolicy (ClusterFirst) gets a resolv.conf of
#   search NAMESPACE.svc.cluster.local svc.cluster.local cluster.local
#   nameserver LISTEN_IP
#   options ndots:5
# so `openbao.node-tier.svc` resolves through the search list. Pods with
# hostNetwork need dnsPolicy ClusterFirstWithHostNet for the same. The Pods
# reach LISTEN_IP:53 directly (no Service, no kube-proxy rule); the host
# must accept UDP and TCP port 53 on that address from the Pod range.

# cluster_dns_up STATE_DIR LISTEN_IP
cluster_dns_up() {
  local state listen=$2 dir bin ready_port=${CLUSTER_DNS_READY_PORT:-8181}
  local timeout=${CLUSTER_DNS_TIMEOUT:-60} api_url zones zone cidr
  state=$(cd "$1" && pwd -P) || return 1
  dir=$state/dns
  [ -f "$state/env" ] || { _cdns_err "no environment in $state (run e2e/env.sh up $state)"; return 1; }
  bin=$(bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/node-tools.sh" --print)
  [ -x "$bin/coredns" ] || { _cdns_err "$bin/coredns missing (run scripts/node-tools.sh)"; return 1; }
  # shellcheck source=/dev/null
  api_url=$(. "$state/env" && echo "$KUBE_API_URL")
  cluster_dns_down "$state"
  mkdir -p "$dir" "$state/logs" "$state/pids"

  # Identity and rights: the least the kubernetes plugin needs (it watches
  # Services, EndpointSlices and Namespaces; Pods only with `pods verified`).
  (
    umask 077
    cd "$dir" || exit 1
    printf '[req]\ndistinguished_name = dn\n[dn]\n[client]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n' >openssl.cnf
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out coredns.key 2>/dev/null
    openssl req -new -config openssl.cnf -key coredns.key -subj /CN=system:vaultsync:cluster-dns -out coredns.csr
    openssl x509 -req -in coredns.csr -CA "$state/pki/ca.crt" -CAkey "$state/pki/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
      -extfile openssl.cnf -extensions client -out coredns.crt 2>/dev/null
    rm -f coredns.csr
    cat >kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vaultsync-e2e
  cluster:
    server: $api_url
    certificate-authority: $state/pki/ca.crt
users:
- name: cluster-dns
  user:
    client-certificate: $dir/coredns.crt
    client-key: $dir/coredns.key
contexts:
- name: cluster-dns
  context: {cluster: vaultsync-e2e, user: cluster-dns}
current-context: cluster-dns
EOF
  ) || { _cdns_err "could not make CoreDNS's client certificate"; return 1; }
  "$bin/kubectl" --kubeconfig "$state/kubeconfig" apply -f - >/dev/null <<'EOF' || { _cdns_err "could not grant CoreDNS its rights"; return 1; }
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: vaultsync:cluster-dns
rules:
- apiGroups: [""]
  resources: [services, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: vaultsync:cluster-dns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: vaultsync:cluster-dns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:vaultsync:cluster-dns
EOF

  # Zones: cluster.local and a.b.c.in-addr.arpa per reverse range. A name
  # in no zone matches no server block, and CoreDNS answers REFUSED.
  zones="cluster.local:53"
  for cidr in ${CLUSTER_DNS_REVERSE:-10.0.0.0/24 10.244.0.0/24}; do
    zone=$(_cdns_reverse_zone "$cidr") || { _cdns_err "CLUSTER_DNS_REVERSE: $cidr is not an IPv4 /8, /16 or /24"; return 1; }
    zones+=" $zone:53"
  done
  # cache keeps answers up to their TTL (ttl 5, the kubernetes plugin's
  # default) but no NXDOMAIN: a Service created just after a Pod asked for
  # it resolves at once (with denials cached: ~5 s later).
  cat >"$dir/Corefile" <<EOF
$zones {
    bind $listen
    ready $listen:$ready_port
    errors
    log
    loadbalance
    cache 30 {
        disable denial
    }
    kubernetes {
        kubeconfig $dir/kubeconfig cluster-dns
        pods disabled
        ttl 5
    }
}
EOF

  setsid nohup "$bin/coredns" -conf "$dir/Corefile" </dev/null >"$state/logs/coredns.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/pids/coredns.pid"
  echo "cluster-dns: started coredns (pid $pid) on $listen:53, log $state/logs/coredns.log" >&2
  local deadline=$((SECONDS + timeout))
  until curl -fsS --max-time 2 -o /dev/null "http://$listen:$ready_port/ready" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      _cdns_err "coredns exited; last lines of $state/logs/coredns.log:"
      tail -n 20 "$state/logs/coredns.log" >&2
      rm -f "$state/pids/coredns.pid"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      _cdns_err "coredns not ready after ${timeout}s; last lines of $state/logs/coredns.log:"
      tail -n 20 "$state/logs/coredns.log" >&2
      cluster_dns_down "$state"
      return 1
    fi
    sleep 0.5
  done
  echo "cluster-dns: ready (zones: $zones)" >&2
}

# cluster_dns_down STATE_DIR: TERM, up to 10s of grace, then KILL.
cluster_dns_down() {
  local f=$1/pids/coredns.pid pid i
  [ -f "$f" ] || return 0
  pid=$(tr -d '[:space:]' <"$f")
  case $pid in '' | *[!0-9]*) rm -f "$f"; return 0 ;; esac
  # Only if it is still our coredns (the pid may have been reused).
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = coredns ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = coredns ] || break
      sleep 0.2
    done
    [ "$i" -lt 50 ] || kill -KILL "$pid" 2>/dev/null || true
    echo "cluster-dns: stopped coredns (pid $pid)" >&2
  fi
  rm -f "$f"
}

# _cdns_reverse_zone CIDR: 10.0.0.0/24 -> 0.0.10.in-addr.arpa
_cdns_reverse_zone() {
  local ip=${1%/*} bits=${1#*/} a b c d
  IFS=. read -r a b c d <<<"$ip"
  [[ $a =~ ^[0-9]+$ && $b =~ ^[0-9]+$ && $c =~ ^[0-9]+$ && $d =~ ^[0-9]+$ ]] || return 1
  case $bits in
    8) echo "$a.in-addr.arpa" ;;
    16) echo "$b.$a.in-addr.arpa" ;;
    24) echo "$c.$b.$a.in-addr.arpa" ;;
    *) return 1 ;;
  esac
}

_cdns_err() { echo "cluster-dns: ERROR: $*" >&2; }
