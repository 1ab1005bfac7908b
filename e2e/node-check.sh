#!/usr/bin/env bash
# Proof that the node of e2e/node.sh runs Pods for real:
#   1. a Pod of the locally built test-app image runs, its log reaches
#      `kubectl logs`, its IP is in the bridge's range;
#   2. a Service in front of a busybox httpd Pod answers through its
#      ClusterIP from another Pod and from the host (kube-proxy, iptables);
#   3. a projected ServiceAccount token (audience "vault") is in the Pod;
#   4. the API server reaches a Service the way it calls webhooks (ClusterIP
#      resolver, from the host's network namespace): a webhook pointing at
#      the plain-HTTP httpd must fail with "server gave HTTP response to
#      HTTPS client", which proves the TCP connection got there;
#   5. a Pod reaches the API server through Service default/kubernetes.
#
#   e2e/node-check.sh STATE_DIR      (after env.sh up and node.sh up)
# Prints one line per check and "N passed, N failed" at the end.
# `ok` and `bad` always succeed, so `A && ok || bad` is an if-then-else here.
# shellcheck disable=SC2015,SC2016
set -uo pipefail

state=${1:?usage: $0 STATE_DIR}
# shellcheck disable=SC1091
source "$state/env"
# shellcheck disable=SC1091
source "$state/node/env"
ns=node-check
passed=0 failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
k() { kubectl --request-timeout=20s "$@"; }

in_range() { # IP in 10.244.0.0/24 (POD_CIDR)
  local prefix=${POD_CIDR%.*/*}
  [[ $1 == "$prefix".* ]]
}

k delete namespace "$ns" --ignore-not-found --wait=true >/dev/null 2>&1
k create namespace "$ns" >/dev/null
for _ in $(seq 60); do
  k get serviceaccount default -n "$ns" >/dev/null 2>&1 && break
  sleep 0.5
done
k create serviceaccount app -n "$ns" >/dev/null

k apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: $TEST_APP_IMAGE
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello-from-pod; exec sleep 3600']
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $TEST_APP_IMAGE
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /tmp/www && echo ok-from-web >/tmp/www/index.html && exec httpd -f -v -p 8080 -h /tmp/www']
    ports: [{containerPort: 8080}]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8080}
---
apiVersion: v1
kind: Pod
metadata: {name: token}
spec:
  terminationGracePeriodSeconds: 1
  serviceAccountName: app
  containers:
  - name: app
    image: $TEST_APP_IMAGE
    imagePullPolicy: Never
    command: [sleep, "3600"]
    volumeMounts:
    - {name: vault-token, mountPath: /var/run/secrets/tokens, readOnly: true}
  volumes:
  - name: vault-token
    projected:
      sources:
      - serviceAccountToken: {audience: vault, expirationSeconds: 600, path: vault-token}
EOF

t0=$SECONDS
if k wait -n "$ns" --for=condition=Ready pod/hello pod/web pod/token --timeout=120s >/dev/null; then
  ok "pods hello, web, token Ready in $((SECONDS - t0))s"
else
  bad "pods not Ready: $(k get pods -n "$ns" -o wide 2>&1)"
  k describe pods -n "$ns" | tail -40
  k delete namespace "$ns" --wait=false >/dev/null 2>&1
  echo "node-check: $passed passed, $failed failed (the rest not run)"
  exit 1
fi

# 1. logs and IP.
logs=$(k logs -n "$ns" hello 2>&1)
[[ $logs == *hello-from-pod* ]] && ok "kubectl logs hello: $logs" || bad "kubectl logs hello: $logs"
ip=$(k get pod -n "$ns" hello -o jsonpath='{.status.podIP}')
in_range "$ip" && ok "pod IP $ip in $POD_CIDR" || bad "pod IP '$ip' not in $POD_CIDR"
routes=$(k exec -n "$ns" hello -- ip route 2>&1)
[[ $routes == *"${POD_CIDR%/*}"* && $routes != *default* ]] && ok "no default route in the pod: $(echo "$routes" | tr '\n' ';')" ||
  bad "pod has a default route: $routes"

# 2. Service through kube-proxy.
cip=$(k get service -n "$ns" web -o jsonpath='{.spec.clusterIP}')
for _ in $(seq 60); do
  [ -n "$(k get endpointslices -n "$ns" -l kubernetes.io/service-name=web -o jsonpath='{.items[*].endpoints[*].addresses[*]}')" ] && break
  sleep 0.5
done
# busybox-static's wget segfaults in the pod (static glibc resolving even
# a numeric address); nc speaks the HTTP request instead.
got=
for _ in $(seq 20); do
  got=$(k exec -n "$ns" hello -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 $cip 80" 2>&1) &&
    [[ $got == *ok-from-web* ]] && break
  sleep 1
done
[[ $got == *ok-from-web* ]] && ok "pod -> ClusterIP $cip:80 -> web: $(echo "$got" | head -1 | tr -d '\r') ... ok-from-web" ||
  bad "pod -> ClusterIP $cip:80: $got"
got=$(curl -sS --max-time 5 "http://$cip/" 2>&1)
[ "$got" = ok-from-web ] && ok "host -> ClusterIP $cip:80 -> web: $got" || bad "host -> ClusterIP $cip:80: $got"

# 3. Projected token.
tok=$(k exec -n "$ns" token -- cat /var/run/secrets/tokens/vault-token 2>&1)
payload=$(printf '%s' "$tok" | cut -d. -f2 | tr '_-' '/+')
while [ $((${#payload} % 4)) -ne 0 ]; do payload+="="; done
claims=$(printf '%s' "$payload" | base64 -d 2>/dev/null)
if [[ $claims == *'"vault"'* && $claims == *"system:serviceaccount:$ns:app"* ]]; then
  ok "projected token in pod token: aud vault, sub system:serviceaccount:$ns:app"
else
  bad "projected token: ${tok:0:120} / $claims"
fi
sa=$(k exec -n "$ns" token -- ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1 | tr '\n' ' ')
[[ $sa == *token* && $sa == *ca.crt* ]] && ok "default SA volume: $sa" || bad "default SA volume: $sa"

# 4. The API server calls a Service the way it calls webhooks.
k apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: node-check-probe}
webhooks:
- name: probe.node-check.vaultsync.dev
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    service: {namespace: $ns, name: web, port: 443, path: /validate}
  rules:
  - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps], scope: Namespaced}
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: $ns}
EOF
got=
for _ in $(seq 10); do
  got=$(k create configmap -n "$ns" probe 2>&1) || true
  [[ $got == *"HTTP response to HTTPS client"* ]] && break
  sleep 1
done
if [[ $got == *"HTTP response to HTTPS client"* ]]; then
  ok "API server -> Service web:443 (webhook, ClusterIP) reached httpd: ${got:0:220}"
else
  bad "API server -> Service web:443 (webhook): $got"
fi
k delete validatingwebhookconfiguration node-check-probe >/dev/null 2>&1
grep -q "POST /validate" <(k logs -n "$ns" web 2>&1) && ok "httpd logged the API server's POST /validate" ||
  echo "info httpd log: $(k logs -n "$ns" web 2>&1 | tail -3)"

# 5. Pods reach the API server through Service kubernetes (10.0.0.1:443).
kenv=$(k exec -n "$ns" hello -- sh -c 'echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT' 2>&1)
got=$(k exec -n "$ns" hello -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 ${kenv%:*} ${kenv#*:}" 2>&1)
[[ $got == *"HTTP request to an HTTPS server"* ]] && ok "pod -> kubernetes Service $kenv reaches the API server's TLS port" ||
  bad "pod -> kubernetes Service $kenv: $got"

if [ "${NODE_CHECK_KEEP:-0}" != 1 ]; then
  k delete namespace "$ns" --wait=false >/dev/null 2>&1
fi
echo "node-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
