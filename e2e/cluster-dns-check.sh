#!/usr/bin/env bash
# Proof of the cluster DNS of e2e/lib/cluster-dns.sh against a running
# environment of e2e/env.sh, without a node:
#
#   e2e/cluster-dns-check.sh STATE_DIR [LISTEN_IP]
#
# Starts CoreDNS on LISTEN_IP:53 (default 127.0.1.53, a loopback address:
# the node's bridge address belongs to e2e/node.sh), creates in namespace
# dns-check a Service with a ClusterIP and a headless one (with an
# EndpointSlice of its own, as no Pod runs here), and asks with a small DNS
# client of Python's standard library, over UDP and TCP:
#   - A of openbao.dns-check.svc.cluster.local is the ClusterIP, and the
#     short openbao.dns-check.svc resolves through a Pod's search list
#     (glibc's resolver, given the resolv.conf a Pod gets, in a mount
#     namespace of its own; or the same search done by hand where unshare
#     is not allowed), and from a static binary (glibc, like the operator's
#     image) in a chroot holding only it, /etc/hosts and that resolv.conf;
#   - PTR of the ClusterIP, A of the headless Service (its endpoints),
#     NXDOMAIN for a missing Service;
#   - a name outside cluster.local is REFUSED, the binary has no forwarding
#     plugin, and CoreDNS holds no socket to anything but loopback;
#   - a Service created after a failed lookup resolves within seconds;
#   - CoreDNS's identity may not read Secrets.
# Prints one pass/FAIL line per check and "N passed, N failed"; exits
# non-zero on a failure. Stops CoreDNS and deletes the namespace at the end.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 STATE_DIR [LISTEN_IP]" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
state=$(cd "$1" && pwd -P)
listen=${2:-127.0.1.53}
ns=dns-check
[ -f "$state/env" ] || { echo "cluster-dns-check: no environment in $state (e2e/env.sh up $state)" >&2; exit 2; }
# shellcheck source=/dev/null
source "$state/env"
# shellcheck source=SCRIPTDIR/lib/cluster-dns.sh
source "$here/lib/cluster-dns.sh"

bin=$(bash "$root/scripts/node-tools.sh" --coredns)
bin=${bin##*$'\n'}

passed=0 failed=0
ok() { echo "pass: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# check DESCRIPTION COMMAND...
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
not() { ! "$@"; }

# dnsq PROTO NAME TYPE: one query to $listen:53; prints the response code
# and the answers of that type, space separated (e.g. "NOERROR 10.0.0.12").
dnsq() {
  python3 - "$listen" "$@" <<'PY'
import random, socket, struct, sys
server, proto, name, qtype = sys.argv[1:5]
types = {"A": 1, "PTR": 12, "AAAA": 28}
rcodes = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", types[qtype], 1)
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (server, 53))
    r = s.recv(65535)
else:
    s = socket.create_connection((server, 53), timeout=3)
    s.sendall(struct.pack(">H", len(q)) + q)
    n = struct.unpack(">H", s.recv(2))[0]
    r = b""
    while len(r) < n:
        chunk = s.recv(n - len(r))
        if not chunk:
            break
        r += chunk
rid, flags, qd, an = struct.unpack(">HHHH", r[:8])
assert rid == qid, "answer to another query"

def read_name(off):
    labels = []
    while True:
        ln = r[off]
        if ln & 0xC0 == 0xC0:
            ptr = struct.unpack(">H", r[off:off + 2])[0] & 0x3FFF
            return ".".join(labels + [read_name(ptr)[0]]).rstrip("."), off + 2
        off += 1
        if ln == 0:
            return ".".join(labels), off
        labels.append(r[off:off + ln].decode())
        off += ln

off = 12
for _ in range(qd):
    off = read_name(off)[1] + 4
out = [rcodes.get(flags & 0xF, str(flags & 0xF))]
for _ in range(an):
    off = read_name(off)[1]
    t, _, _, rdlen = struct.unpack(">HHIH", r[off:off + 10])
    off += 10
    if t == types[qtype] == 1:
        out.append(socket.inet_ntoa(r[off:off + 4]))
    elif t == types[qtype] == 12:
        out.append(read_name(off)[0])
    off += rdlen
print(" ".join(out))
PY
}

cleanup() {
  cluster_dns_down "$state" || true
  kubectl delete namespace "$ns" --wait=false --ignore-not-found >/dev/null 2>&1 || true
}
trap cleanup EXIT

# 1. The binary cannot forward: its plugins (compiled in) include no
# forward, grpc or proxy plugin.
plugins=$("$bin/coredns" -plugins | tr -s '\n' ' ')
echo "coredns: $("$bin/coredns" -version | head -n 1), plugins: $plugins"
check "coredns has no forwarding plugin (forward, grpc, proxy)" \
  not grep -qwE 'forward|grpc|proxy' <<<"$plugins"

# 2. CoreDNS up.
t0=$SECONDS
cluster_dns_up "$state" "$listen"
echo "coredns ready in $((SECONDS - t0))s on $listen:53"

# 3. Objects.
# A namespace left by an earlier run may still be terminating.
kubectl delete namespace "$ns" --ignore-not-found --timeout=60s >/dev/null
kubectl create namespace "$ns" >/dev/null
kubectl apply -n "$ns" -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: openbao
spec:
  selector: {app: openbao}
  ports: [{name: http, port: 8200}]
---
apiVersion: v1
kind: Service
metadata:
  name: openbao-headless
spec:
  clusterIP: None
  ports: [{name: http, port: 8200}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: openbao-headless-1
  labels:
    kubernetes.io/service-name: openbao-headless
    endpointslice.kubernetes.io/managed-by: cluster-dns-check
addressType: IPv4
ports: [{name: http, port: 8200, protocol: TCP}]
endpoints:
- addresses: [10.244.0.77]
  conditions: {ready: true}
- addresses: [10.244.0.78]
  conditions: {ready: true}
EOF
cluster_ip=$(kubectl get service openbao -n "$ns" -o jsonpath='{.spec.clusterIP}')
fqdn=openbao.$ns.svc.cluster.local

# wait_answer SECONDS EXPECTED PROTO NAME TYPE: until dnsq prints EXPECTED;
# sets $answer to the last answer.
wait_answer() {
  local until=$((SECONDS + $1)) want=$2
  shift 2
  while :; do
    answer=$(dnsq "$@" 2>&1) || true
    [ "$answer" = "$want" ] && return 0
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.2
  done
}

answer=
if wait_answer 10 "NOERROR $cluster_ip" udp "$fqdn" A; then
  ok "A $fqdn over UDP = $answer (ClusterIP $cluster_ip)"
else
  bad "A $fqdn over UDP: '$answer', expected the ClusterIP $cluster_ip"
fi
answer=$(dnsq tcp "$fqdn" A 2>&1) || true
check "A $fqdn over TCP = $answer" test "$answer" = "NOERROR $cluster_ip"

# The short name through a Pod's resolv.conf (what the kubelet writes for
# clusterDNS [LISTEN_IP], clusterDomain cluster.local, namespace dns-check).
printf 'search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5 attempts:1 timeout:2\n' \
  "$ns" "$listen" >"$state/dns/pod-resolv.conf"
short=openbao.$ns.svc
if unshare -m true 2>/dev/null; then
  # shellcheck disable=SC2016
  got=$(unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && getent ahostsv4 "$2"' _ \
    "$state/dns/pod-resolv.conf" "$short" | awk '$2 == "STREAM" {print $1, $3}') || true
  check "short name $short via the Pod's search list (glibc getent): '$got'" \
    test "$got" = "$cluster_ip $fqdn"
else
  # The search a resolver does for a name with fewer than 5 dots.
  got=
  for suffix in "$ns.svc.cluster.local" svc.cluster.local cluster.local; do
    a=$(dnsq udp "$short.$suffix" A) || true
    if [ "${a%% *}" = NOERROR ] && [ "$a" != NOERROR ]; then
      got="${a#* } $short.$suffix"
      break
    fi
  done
  check "short name $short via the Pod's search list (by hand, no unshare): '$got'" \
    test "$got" = "$cluster_ip $fqdn"
fi

# The same from a static binary in an empty root filesystem, as the
# operator's image is (a statically linked glibc getaddrinfo, see
# docs/install.md): a chroot holding only the binary, /etc/hosts and the
# Pod's resolv.conf.
if command -v cc >/dev/null 2>&1; then
  croot=$state/dns/chroot
  rm -rf "$croot"
  mkdir -p "$croot/etc"
  cp "$state/dns/pod-resolv.conf" "$croot/etc/resolv.conf"
  printf '127.0.0.1 localhost\n' >"$croot/etc/hosts"
  cat >"$state/dns/resolve.c" <<'C'
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* resolve NAME: prints the IPv4 addresses getaddrinfo finds, one a line. */
int main(int argc, char **argv) {
  struct addrinfo hints, *res, *ai;
  char buf[INET_ADDRSTRLEN];
  int rc;
  if (argc != 2) return 2;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(argv[1], NULL, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", argv[1], gai_strerror(rc));
    return 1;
  }
  for (ai = res; ai; ai = ai->ai_next)
    puts(inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, buf, sizeof buf));
  freeaddrinfo(res);
  return 0;
}
C
  if cc -static -O1 -o "$croot/resolve" "$state/dns/resolve.c" 2>"$state/dns/resolve.cc.log"; then
    got=$(chroot "$croot" /resolve "$short" 2>&1) || true
    check "short name $short from a static binary in an empty chroot: '$got'" test "$got" = "$cluster_ip"
    got=$(chroot "$croot" /resolve example.com 2>&1) || true
    check "example.com from the static binary does not resolve: '$got'" not grep -qE '^[0-9.]+$' <<<"$got"
  else
    bad "cc -static failed: $(tail -n 3 "$state/dns/resolve.cc.log")"
  fi
else
  echo "skip: no C compiler, no static-binary check"
fi

ptr_name=$(awk -F. '{print $4"."$3"."$2"."$1".in-addr.arpa"}' <<<"$cluster_ip")
answer=$(dnsq udp "$ptr_name" PTR 2>&1) || true
check "PTR $ptr_name = $answer" test "$answer" = "NOERROR $fqdn"

answer=$(dnsq udp "openbao-headless.$ns.svc.cluster.local" A 2>&1) || true
sorted=$(tr ' ' '\n' <<<"${answer#* }" | sort | tr '\n' ' ')
check "A openbao-headless.$ns.svc.cluster.local (headless) = $answer" \
  test "${answer%% *} $sorted" = "NOERROR 10.244.0.77 10.244.0.78 "

answer=$(dnsq udp "nosuch.$ns.svc.cluster.local" A 2>&1) || true
check "A nosuch.$ns.svc.cluster.local = $answer (NXDOMAIN)" test "$answer" = NXDOMAIN

# 4. Nothing outside cluster.local: REFUSED, nothing forwarded.
for name in example.com openbao "$short"; do
  answer=$(dnsq udp "$name" A 2>&1) || true
  check "A $name (outside cluster.local) = $answer (REFUSED)" test "$answer" = REFUSED
done
answer=$(dnsq udp 8.8.8.8.in-addr.arpa PTR 2>&1) || true
check "PTR 8.8.8.8.in-addr.arpa (outside the reverse zones) = $answer (REFUSED)" test "$answer" = REFUSED
pid=$(cat "$state/pids/coredns.pid")
peers=$(ss -Htunap 2>/dev/null | grep "pid=$pid," | awk '{print $6}' | grep -v '^\*' | sort -u | tr '\n' ' ') || true
only_loopback() {
  local p
  for p in $peers; do
    [[ $p == *:'*' ]] && continue # unconnected (a UDP listener)
    [[ $p =~ ^(127\.[0-9.]+|\[::1\]|\[::ffff:127\.[0-9.]+\]):[0-9]+$ ]] || return 1
  done
}
check "coredns's sockets reach only loopback (peers: ${peers:-none})" only_loopback

# 5. A new Service appears within seconds (after a lookup that failed, so
# a cached NXDOMAIN would show).
answer=$(dnsq udp "late.$ns.svc.cluster.local" A 2>&1) || true
[ "$answer" = NXDOMAIN ] || bad "late.$ns.svc.cluster.local before creation: $answer"
t0=$(date +%s.%N)
kubectl create service clusterip late -n "$ns" --tcp=80:80 >/dev/null
late_ip=$(kubectl get service late -n "$ns" -o jsonpath='{.spec.clusterIP}')
if wait_answer 15 "NOERROR $late_ip" udp "late.$ns.svc.cluster.local" A; then
  ok "new Service late.$ns resolves to $late_ip $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$t0")s after kubectl create"
else
  bad "new Service late.$ns: '$answer' after 15s, expected $late_ip"
fi

# 6. Least privilege, and the rights suffice (no "forbidden" in the log).
as=(--as system:vaultsync:cluster-dns)
check "CoreDNS's user may watch endpointslices" kubectl auth can-i watch endpointslices.discovery.k8s.io "${as[@]}" -q
check "CoreDNS's user may not read secrets" not kubectl auth can-i get secrets --all-namespaces "${as[@]}" -q
check "CoreDNS's user may not list pods" not kubectl auth can-i list pods --all-namespaces "${as[@]}" -q
check "no 'forbidden' in $state/logs/coredns.log" not grep -qi forbidden "$state/logs/coredns.log"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
