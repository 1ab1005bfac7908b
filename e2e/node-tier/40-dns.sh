# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there). Name resolution inside the
# image: the operator is a static binary on an empty root filesystem, and
# its Vault client resolves host names with the C library's resolver
# (glibc, linked in), reading the /etc/resolv.conf the kubelet mounts.
# The cluster DNS is CoreDNS, run by node.sh on the node IP behind Service
# kube-system/kube-dns ($CLUSTER_DNS_IP, the kubelet's clusterDNS), serving
# cluster.local from the API server and nothing else.
#
# Service `openbao` in $ns has no selector: its EndpointSlice names the
# node IP and the port where node.sh forwards to OpenBao. A second
# SecretStore reaches OpenBao by that Service's name only.

[ -n "${CLUSTER_DNS_IP:-}" ] || fatal "CLUSTER_DNS_IP missing from $state/node/env (node.sh without cluster DNS?)"
bao_port=${NODE_BAO_ADDR##*:}
k apply -n "$ns" -f - >/dev/null <<EOF2
apiVersion: v1
kind: Service
metadata: {name: openbao}
spec:
  ports: [{name: http, port: 8200, targetPort: $bao_port}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: openbao-node
  labels: {kubernetes.io/service-name: openbao}
addressType: IPv4
ports: [{name: http, port: $bao_port, protocol: TCP}]
endpoints: [{addresses: ["$NODE_IP"]}]
EOF2
svc_ip=$(k get service -n "$ns" openbao -o jsonpath='{.spec.clusterIP}')

# What the kubelet gave the operator's container: read on the host.
op_pod=$(lease_holder)
cid=$(k get pod -n "$op_ns" "$op_pod" -o jsonpath='{.status.containerStatuses[0].containerID}' 2>/dev/null)
pid=$("${ctr_k8s[@]}" tasks ls 2>/dev/null | awk -v id="${cid#containerd://}" '$1 == id {print $2}')
resolv=$(cat "/proc/$pid/root/etc/resolv.conf" 2>/dev/null || true)
if grep -qx "nameserver $CLUSTER_DNS_IP" <<<"$resolv" && grep -q "^search $op_ns.svc.cluster.local svc.cluster.local cluster.local" <<<"$resolv"; then
  pass "the operator container's /etc/resolv.conf names the cluster DNS $CLUSTER_DNS_IP and the cluster search path"
else
  fail "the operator container's /etc/resolv.conf: $(tr '\n' '|' <<<"$resolv")"
fi

# The answer a Pod gets, asked the way the C library asks (UDP, from a
# Pod's network namespace would be the same path through kube-proxy).
answer=$(python3 - "$CLUSTER_DNS_IP" "openbao.$ns.svc.cluster.local" <<'PY'
import random, socket, struct, sys
server, name = sys.argv[1:]
qid = random.randrange(65536)
query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(query, (server, 53))
data, _ = s.recvfrom(4096)
rid, flags, qd, an = struct.unpack(">HHHH", data[:8])
assert rid == qid, "answer to another query"
# Skip the question, read the first A record.
i = 12
while data[i]:
    i += data[i] + 1
i += 5
for _ in range(an):
    if data[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while data[i]:
            i += data[i] + 1
        i += 1
    rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
    i += 10
    if rtype == 1:
        print(socket.inet_ntoa(data[i:i + 4]))
        break
    i += rdlen
else:
    print("rcode", flags & 0xF)
PY
)
check "cluster DNS answer for openbao.$ns.svc.cluster.local (the Service's ClusterIP)" "$svc_ip" "$answer"

# The operator resolves the short name through the search path.
{
  store_manifest openbao-by-name "http://openbao.$ns.svc:8200"
  cat <<EOF2
---
apiVersion: vaultsync.dev/v1alpha1
kind: ExternalSecret
metadata: {name: by-name}
spec:
  refreshInterval: 1h
  secretStoreRef: {name: openbao-by-name, kind: SecretStore}
  target: {name: by-name}
  data:
  - secretKey: password
    remoteRef: {key: node-tier/db, property: password}
EOF2
} | k apply -n "$ns" -f - >/dev/null
if wait_value by-name password "$second" 60; then
  pass "the operator (static binary, empty root filesystem) reached OpenBao as http://openbao.$ns.svc:8200 through the cluster DNS"
  pod_bao_addr=http://openbao.$ns.svc:8200
else
  fail "ExternalSecret $ns/by-name through http://openbao.$ns.svc:8200: $(k get externalsecret -n "$ns" by-name -o jsonpath='{.status.conditions[0].message}')"
fi
