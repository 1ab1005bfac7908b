#!/usr/bin/env bash
# The local test environment of vaultsync: etcd, kube-apiserver,
# kube-controller-manager and an OpenBao dev server, all on 127.0.0.1 with
# free ports, no Docker and no kubelet.
#
#   e2e/env.sh up STATE_DIR     start everything, write STATE_DIR/env
#   e2e/env.sh down STATE_DIR   stop everything recorded in STATE_DIR/pids
#
# `up` writes into STATE_DIR:
#   env          `source` it: KUBECONFIG, KUBE_API_URL, BAO_ADDR, BAO_TOKEN,
#                VAULTSYNC_STATE and PATH (tools first)
#   kubeconfig   admin (system:masters) client-cert kubeconfig
#   pki/         CA, serving/client certs, ServiceAccount signing keys
#   logs/kube-audit.log  the API server's audit log (JSON lines, metadata
#                of requests by ServiceAccounts of vaultsync-system)
#   logs/NAME.log, pids/NAME.pid   of etcd, kube-apiserver,
#                kube-controller-manager, openbao (other scripts add theirs,
#                e.g. operator.pid; `down` stops those too)
# Environment: BAO_PORT pins OpenBao's port (default: a free one);
# VAULTSYNC_ENV_TIMEOUT bounds each wait in seconds (default 120).
#
# OpenBao as configured here:
#   - secret/  KV v2 (dev mode default), kv1/ KV v1, auth methods
#     kubernetes/ and approle/, root token "root".
#   - database/  the database engine against the local PostgreSQL
#     (e2e/lib/postgres.sh): connection `postgres`, dynamic role `app`
#     (default_ttl 1h, max_ttl 24h; tests write their own short-TTL roles
#     with db_name=postgres), static role `static-app` (user static_app).
#   - pki/  an internal root CA (its PEM: $VAULTSYNC_PKI_CA) and role
#     `example-dot-com` (subdomains of example.com, max_ttl 72h).
#   `up` proves both: issued database credentials log in, an issued
#   certificate verifies against the CA with openssl.
# PostgreSQL 15 (Debian's package, installed when missing) on 127.0.0.1:$PGPORT,
#   admin $VAULTSYNC_PG_ADMIN_USER / $VAULTSYNC_PG_ADMIN_PASSWORD, database
#   app; psql is on the env file's PATH.
# OpenLDAP slapd (Debian's package, installed when missing; e2e/lib/ldap.sh)
#   on $VAULTSYNC_LDAP_URL, suffix dc=vaultsync,dc=test with ou=people and
#   ou=groups, admin $VAULTSYNC_LDAP_ADMIN_DN (password in the file
#   $VAULTSYNC_LDAP_ADMIN_PASSWORD_FILE). OpenBao 2.7 has no LDAP auth
#   method built in, so auth/ldap is on a dev server of its own,
#   $VAULTSYNC_LDAP_BAO_ADDR (OpenBao 2.6.2, token root); it searches the
#   directory as that admin (userattr uid, groupattr cn), proven by a login
#   of user env-check through group env-check.
#   - auth/kubernetes checks every login JWT with a real TokenReview against
#     this API server, as ServiceAccount kube-system/openbao-token-reviewer
#     (bound to system:auth-delegator; its token is valid 24h).
#
# AUDIENCES of kubernetes roles (read this before writing one):
#   The API server's own audience is https://kubernetes.default.svc
#   (--api-audiences and --service-account-issuer); a TokenRequest without
#   audiences (`kubectl create token SA`) yields a token for it.
#   - Role WITH `audience=X` (recommended): OpenBao refuses JWTs whose aud
#     claim lacks X ("invalid audience (aud) claim") and asks the TokenReview
#     for audience X. Request tokens with audiences [X]. The operator requests
#     audience "vault" by default (--default-audience /
#     VAULTSYNC_DEFAULT_AUDIENCE, or a store's serviceAccountRef.audiences),
#     so roles for it set audience=vault, as e2e/tests do.
#   - Role WITHOUT `audience`: OpenBao runs the TokenReview with the JWT's own
#     aud claim, so a token of ANY audience of this cluster is accepted
#     ("vault", the API server's, anything). Works, but proves nothing about
#     audiences.
#   `up` verifies both: role env-check (no audience, token of the default
#   audience) and role env-check-vault (audience=vault, token for "vault").
#   Tokens are checked for real: deleting the ServiceAccount makes the next
#   login fail (allow a second or two for the API server's informer cache).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=SCRIPTDIR/lib/common.sh
source "$here/lib/common.sh"
# shellcheck source=SCRIPTDIR/lib/pki.sh
source "$here/lib/pki.sh"
# shellcheck source=SCRIPTDIR/lib/postgres.sh
source "$here/lib/postgres.sh"
# shellcheck source=SCRIPTDIR/lib/ldap.sh
source "$here/lib/ldap.sh"

timeout=${VAULTSYNC_ENV_TIMEOUT:-120}
service_cidr=10.0.0.0/24
sa_issuer=https://kubernetes.default.svc

usage() {
  echo "usage: $0 up|down STATE_DIR" >&2
  exit 2
}

# write_kubeconfig FILE SERVER CERT_NAME USER
write_kubeconfig() {
  local file=$1 server=$2 cert=$3 user=$4
  (
    umask 077
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vaultsync-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 <"$state/pki/ca.crt" | tr -d '\n')
users:
- name: $user
  user:
    client-certificate-data: $(base64 <"$state/pki/$cert.crt" | tr -d '\n')
    client-key-data: $(base64 <"$state/pki/$cert.key" | tr -d '\n')
contexts:
- name: $user@vaultsync-e2e
  context:
    cluster: vaultsync-e2e
    user: $user
current-context: $user@vaultsync-e2e
EOF
  )
}

# --- up -----------------------------------------------------------------

up_failed() {
  local rc=$?
  trap - EXIT INT TERM
  trap '' PIPE
  if [ "$rc" -ne 0 ]; then
    printf 'env.sh: "up %s" failed (exit %s); stopping what it started. Logs stay in %s/logs\n' \
      "$state" "$rc" "$state" >&2 || true
    stop_all || true
  fi
  exit "$rc"
}

cmd_up() {
  mkdir -p "$1"
  state=$(abs_dir "$1")
  # A previous environment in the same directory goes first.
  if [ -d "$state/pids" ] && [ -n "$(ls -A "$state/pids" 2>/dev/null)" ]; then
    log "stopping the environment already recorded in $state/pids"
    stop_all
  fi
  trap up_failed EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Whoever read our output went away: still clean up (SIGPIPE's default
  # action would kill this shell without running the EXIT trap).
  trap 'exit 141' PIPE
  rm -rf "$state/etcd" "$state/pki" "$state/env" "$state/kubeconfig" "$state/kube-cache"
  mkdir -p "$state/pki" "$state/logs" "$state/pids"

  # Outer variables that would redirect our clients elsewhere.
  unset VAULT_ADDR VAULT_TOKEN VAULT_NAMESPACE BAO_NAMESPACE BAO_CACERT BAO_CLIENT_CERT BAO_CLIENT_KEY \
    HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy 2>/dev/null || true
  export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

  # 1. Tools.
  log "installing/locating tools (scripts/tools.sh)"
  local bin
  bin=$(bash "$root/scripts/tools.sh" </dev/null)
  bin=${bin##*$'\n'}
  local t
  for t in etcd kube-apiserver kube-controller-manager kubectl bao; do
    [ -x "$bin/$t" ] || die "scripts/tools.sh did not provide $bin/$t"
  done
  export PATH="$bin:$PATH"
  ensure_postgres
  ensure_ldap

  # 2. Ports.
  local ports etcd_port etcd_peer_port api_port kcm_port bao_tls_port bao_port ldap_port
  pg_port=
  ports=$(free_ports 8)
  # Test hook: the first attempt's etcd port, e.g. one held by another
  # process, to prove the retry below (scripts/e2e.sh uses it).
  if [ -n "${VAULTSYNC_ENV_FIRST_ETCD_PORT:-}" ] && [ "${envsh_attempt:-1}" -eq 1 ]; then
    ports="$VAULTSYNC_ENV_FIRST_ETCD_PORT"$'\n'"${ports#*$'\n'}"
  fi
  { read -r etcd_port; read -r etcd_peer_port; read -r api_port; read -r kcm_port; read -r ldap_port; read -r bao_tls_port; read -r bao_port; read -r pg_port; } <<<"$ports"
  if [ -n "${BAO_PORT:-}" ]; then
    # The dev server also listens on BAO_PORT+1 (cluster address).
    if ! port_is_free "$BAO_PORT" || ! port_is_free "$((BAO_PORT + 1))"; then
      die "BAO_PORT=$BAO_PORT: 127.0.0.1:$BAO_PORT or :$((BAO_PORT + 1)) is in use (another environment still running? e.g. 'make demo-down')"
    fi
    bao_port=$BAO_PORT
  fi
  log "ports: etcd $etcd_port/$etcd_peer_port, kube-apiserver $api_port, kube-controller-manager $kcm_port, openbao $bao_port, postgres $pg_port, ldap $ldap_port"

  # 3. PKI.
  log "generating the PKI in $state/pki"
  make_pki "$state/pki"
  local pki="$state/pki"
  local api_url="https://127.0.0.1:$api_port"
  write_kubeconfig "$state/kubeconfig" "$api_url" admin admin
  write_kubeconfig "$pki/controller-manager.kubeconfig" "$api_url" controller-manager system:kube-controller-manager
  export KUBECONFIG="$state/kubeconfig"
  # kubectl's discovery cache is per server URL; keep it out of ~/.kube.
  export KUBECACHEDIR="$state/kube-cache"

  # 4. etcd.
  mkdir -p "$state/etcd"
  chmod 700 "$state/etcd"
  start_bg etcd etcd \
    --name=vaultsync-e2e \
    --data-dir="$state/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="vaultsync-e2e=http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true \
    --log-level=warn
  wait_for etcd "$timeout" "etcd to be healthy" \
    curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health"

  # kube-apiserver. The --kubelet-* flags matter only when e2e/node.sh adds
  # a kubelet: the API server authenticates to it with a client cert (for
  # logs, exec), checks its serving cert against the cluster CA, and dials the Node's InternalIP (the node's bridge address;
  # its Hostname does not resolve here). The endpoint reconciler would publish 127.0.0.1 as the
  # endpoint of Service default/kubernetes, which validation refuses
  # (loopback), so it is off: nothing in this environment runs in a pod.
  # Audit log of every request by a ServiceAccount of vaultsync-system (the
  # operator's identity), metadata only: tests read it to see which rights
  # the operator uses and which writes of a fenced-off leader were accepted.
  cat >"$state/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts:vaultsync-system"]
  - level: None
POLICY
  start_bg kube-apiserver kube-apiserver \
    --audit-policy-file="$state/audit-policy.yaml" \
    --audit-log-path="$state/logs/kube-audit.log" \
    --audit-log-format=json \
    --bind-address=127.0.0.1 \
    --secure-port="$api_port" \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --client-ca-file="$pki/ca.crt" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --cert-dir="$pki/apiserver-generated" \
    --service-account-issuer="$sa_issuer" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --api-audiences="$sa_issuer" \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" \
    --proxy-client-key-file="$pki/front-proxy-client.key" \
    --authorization-mode=Node,RBAC \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-cluster-ip-range="$service_cidr" \
    --allow-privileged=true \
    --profiling=false
  # shellcheck disable=SC2016
  WAIT_DIAG='kubectl get --raw "/readyz?verbose" --request-timeout=5s 2>&1 | sed "s/\\\\n/\n/g" | grep -v " ok$"' \
    wait_for kube-apiserver "$timeout" "kube-apiserver /readyz" \
    kubectl get --raw /readyz --request-timeout=5s

  # kube-controller-manager: garbage collector, namespace deletion,
  # ServiceAccounts, and the rest of the default controllers.
  start_bg kube-controller-manager kube-controller-manager \
    --kubeconfig="$pki/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$pki/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$pki/controller-manager.kubeconfig" \
    --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=true \
    --leader-elect=false \
    --bind-address=127.0.0.1 \
    --secure-port="$kcm_port" \
    --cert-dir="$pki/controller-manager-generated" \
    --profiling=false

  # 6. OpenBao, started now so it comes up while the controllers do.
  # (-dev-no-store-token: do not write ~/.bao-token.)
  # Audit devices are declarative in OpenBao 2.x: every request is logged,
  # for tests that count logins and renewals per auth mount.
  printf 'audit "file" "e2e" {\n  options {\n    file_path = "%s"\n  }\n}\n' \
    "$state/logs/openbao-audit.log" >"$state/openbao.hcl"
  start_bg openbao bao server -dev -dev-root-token-id=root \
    -dev-listen-address="127.0.0.1:$bao_port" -dev-no-store-token -config="$state/openbao.hcl"
  export BAO_ADDR="http://127.0.0.1:$bao_port" BAO_TOKEN=root
  # A second dev server serving TLS with its own CA (written to
  # openbao-tls/vault-ca.pem), for the custom CA bundle tests.
  mkdir -p "$state/openbao-tls"
  start_bg openbao-tls bao server -dev -dev-root-token-id=root \
    -dev-listen-address="127.0.0.1:$bao_tls_port" -dev-no-store-token \
    -dev-tls -dev-tls-cert-dir="$state/openbao-tls"
  # PostgreSQL, for OpenBao's database engine.
  start_postgres "$pg_port"
  # OpenLDAP, for OpenBao's LDAP auth method.
  start_ldap "$ldap_port" "$(ldap_bao_port "$ports" "${BAO_PORT:-}" "$((${BAO_PORT:-0} + 1))")"

  wait_for kube-controller-manager "$timeout" "kube-controller-manager /healthz" \
    curl -fsSk --max-time 2 "https://127.0.0.1:$kcm_port/healthz"
  wait_for kube-controller-manager "$timeout" "ServiceAccount default/default (created by kube-controller-manager)" \
    kubectl get serviceaccount default --namespace default --request-timeout=5s

  # Proof that the garbage collector runs: a ConfigMap owned by a deleted
  # owner must disappear. Checked at the end, so the wait overlaps OpenBao.
  local owner_uid
  kubectl create configmap env-check-owner --namespace default >/dev/null
  owner_uid=$(kubectl get configmap env-check-owner --namespace default -o jsonpath='{.metadata.uid}')
  kubectl delete configmap env-check-owner --namespace default --wait=true >/dev/null
  kubectl create --namespace default -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: env-check-orphan
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: env-check-owner
    uid: $owner_uid
EOF

  wait_for openbao "$timeout" "OpenBao to be unsealed (bao status)" bao status
  wait_for openbao-tls "$timeout" "the TLS OpenBao to answer with its own CA" \
    curl -fsS --max-time 2 --cacert "$state/openbao-tls/vault-ca.pem" "https://127.0.0.1:$bao_tls_port/v1/sys/health"
  log "configuring OpenBao"
  bao_do secrets enable -path=kv1 -version=1 kv
  bao_do auth enable kubernetes
  bao_do auth enable approle

  kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ServiceAccount
metadata:
  name: openbao-token-reviewer
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: openbao-token-reviewer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:auth-delegator
subjects:
- kind: ServiceAccount
  name: openbao-token-reviewer
  namespace: kube-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: env-check
  namespace: default
EOF
  local reviewer_jwt
  reviewer_jwt=$(kubectl create token openbao-token-reviewer --namespace kube-system --duration=24h)
  # The JWT goes through stdin ("-"), not the command line.
  printf '%s' "$reviewer_jwt" | bao_do write auth/kubernetes/config \
    kubernetes_host="$api_url" \
    kubernetes_ca_cert=@"$pki/ca.crt" \
    token_reviewer_jwt=- \
    disable_iss_validation=true \
    disable_local_ca_jwt=true

  # Kubernetes auth end to end, through a real TokenReview.
  bao kv put -mount=secret env-check ok=yes >/dev/null 2>"$state/logs/bao-cli.log" ||
    die "bao kv put secret/env-check failed: $(cat "$state/logs/bao-cli.log")"
  printf 'path "secret/data/env-check" { capabilities = ["read"] }\n' | bao_do policy write env-check -
  bao_do write auth/kubernetes/role/env-check \
    bound_service_account_names=env-check bound_service_account_namespaces=default \
    token_policies=env-check token_ttl=10m
  bao_do write auth/kubernetes/role/env-check-vault \
    bound_service_account_names=env-check bound_service_account_namespaces=default \
    audience=vault token_policies=env-check token_ttl=10m
  check_login env-check "$(kubectl create token env-check --namespace default --duration=10m)"
  check_login env-check-vault "$(kubectl create token env-check --namespace default --duration=10m --audience=vault)"

  configure_postgres
  configure_ldap
  configure_pki

  wait_for kube-controller-manager 60 "the garbage collector to delete ConfigMap default/env-check-orphan (owner deleted)" \
    gone configmap env-check-orphan --namespace default

  # 7. The env file.
  {
    printf '# written by e2e/env.sh up; source it\n'
    printf 'export KUBECONFIG=%q\n' "$state/kubeconfig"
    printf 'export KUBE_API_URL=%q\n' "$api_url"
    printf 'export BAO_ADDR=%q\n' "$BAO_ADDR"
    printf 'export BAO_TOKEN=root\n'
    printf 'export BAO_TLS_ADDR=%q\n' "https://127.0.0.1:$bao_tls_port"
    printf 'export BAO_TLS_CACERT=%q\n' "$state/openbao-tls/vault-ca.pem"
    printf 'export VAULTSYNC_STATE=%q\n' "$state"
    printf 'export KUBECACHEDIR=%q\n' "$state/kube-cache"
    printf 'export PGHOST=127.0.0.1 PGPORT=%q\n' "$pg_port"
    printf 'export VAULTSYNC_PG_ADMIN_USER=%q VAULTSYNC_PG_ADMIN_PASSWORD=%q VAULTSYNC_PG_DATABASE=%q\n' \
      "$PG_ADMIN_USER" "$pg_password" "$PG_DATABASE"
    printf 'export VAULTSYNC_PKI_CA=%q\n' "$state/pki-ca.pem"
    printf 'export VAULTSYNC_LDAP_URL=%q VAULTSYNC_LDAP_ADMIN_DN=%q VAULTSYNC_LDAP_ADMIN_PASSWORD_FILE=%q\n' \
      "${ldap_url%/}" "$LDAP_ADMIN_DN" "$state/ldap-admin-password"
    printf 'export VAULTSYNC_LDAP_SUFFIX=%q VAULTSYNC_LDAP_PEOPLE_DN=%q VAULTSYNC_LDAP_GROUPS_DN=%q\n' \
      "$LDAP_SUFFIX" "$LDAP_PEOPLE_DN" "$LDAP_GROUPS_DN"
    printf 'export VAULTSYNC_LDAP_BAO_ADDR=%q\n' "$ldap_bao_addr"
    # shellcheck disable=SC2016
    printf 'export PATH=%q:%q:"$PATH"\n' "$bin" "$pg_bin"
  } >"$state/env"

  trap - EXIT INT TERM PIPE
  local q_state q_self
  q_state=$(printf '%q' "$state")
  q_self=$(printf '%q' "$here/env.sh")
  cat >&2 <<EOF
env.sh: environment up in $((SECONDS - envsh_t0))s
  kube-apiserver  $api_url  (kubeconfig $state/kubeconfig)
  etcd            http://127.0.0.1:$etcd_port
  controller-mgr  https://127.0.0.1:$kcm_port
  OpenBao         $BAO_ADDR  (token root; secret/ kv2, kv1/ kv1, auth kubernetes/ + approle/)
  OpenBao (TLS)   https://127.0.0.1:$bao_tls_port  (token root; CA $state/openbao-tls/vault-ca.pem)
                  database/ (connection postgres, roles app, static-app), pki/ (role example-dot-com)
  PostgreSQL $PG_MAJOR   127.0.0.1:$pg_port  (user $PG_ADMIN_USER, database $PG_DATABASE; password in the env file)
  OpenLDAP        ${ldap_url%/}  ($LDAP_SUFFIX, admin $LDAP_ADMIN_DN; password in $state/ldap-admin-password)
  OpenBao (LDAP)  $ldap_bao_addr  (OpenBao $LDAP_BAO_VERSION, token root; secret/ kv2, auth ldap/)
  logs            $state/logs/   pids: $state/pids/
  use it:         source $q_state/env
  stop it:        bash $q_self down $q_state
EOF
}

# bao_do ARGS...: runs bao, quiet on success, fails `up` with its output.
bao_do() {
  local out
  if ! out=$(bao "$@" 2>&1); then
    printf 'env.sh: bao %s:\n%s\n' "$1 ${2:-}" "$out" >&2
    die "configuring OpenBao failed (bao $1 ${2:-})" openbao
  fi
}

# check_login ROLE JWT: a kubernetes login must succeed and its token must
# read secret/env-check.
check_login() {
  local role=$1 jwt=$2 out token
  if ! out=$(printf '%s' "$jwt" | bao write -field=token auth/kubernetes/login role="$role" jwt=- 2>&1); then
    printf 'env.sh: kubernetes login with role %s failed:\n%s\n' "$role" "$out" >&2
    die "OpenBao kubernetes auth does not work (role $role)" openbao kube-apiserver
  fi
  token=$out
  if ! out=$(BAO_TOKEN=$token bao kv get -mount=secret -field=ok env-check 2>&1) || [ "$out" != yes ]; then
    die "token from kubernetes login (role $role) cannot read secret/env-check: $out" openbao
  fi
  log "kubernetes auth login ok (role $role)"
}

# gone KUBECTL_GET_ARGS...: true once the object does not exist.
gone() {
  local out
  out=$(kubectl get "$@" --ignore-not-found -o name --request-timeout=5s) && [ -z "$out" ]
}

# --- down ---------------------------------------------------------------

cmd_down() {
  if [ ! -d "$1" ]; then
    log "nothing to stop: $1 does not exist"
    return 0
  fi
  state=$(abs_dir "$1")
  # A node of e2e/node.sh still up goes first (its Pods, bridge, iptables).
  if [ -d "$state/node/pids" ] && [ -n "$(ls -A "$state/node/pids" 2>/dev/null)" ]; then
    bash "$here/node.sh" down "$state" || true
  fi
  stop_all
  remove_postgres_dir
  remove_ldap_dir
  log "stopped the environment in $state (logs kept in $state/logs)"
}

# up_with_retries DIR: a port chosen free can be taken by someone else
# before our server binds it (seen on busy machines: etcd died with
# "address already in use"); then the whole environment starts again with
# new ports, up to 3 times.
up_with_retries() {
  local rc
  for envsh_attempt in 1 2 3; do
    export envsh_attempt
    set +e
    (
      set -e
      cmd_up "$1"
    )
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || return 0
    if [ "$envsh_attempt" -lt 3 ] && grep -qsi "address already in use" "$1"/logs/*.log; then
      mkdir -p "$1/logs/attempt-$envsh_attempt"
      mv "$1"/logs/*.log "$1/logs/attempt-$envsh_attempt/" 2>/dev/null || true
      log "a port was taken between choosing it and binding it; starting again with new ports (attempt $((envsh_attempt + 1)) of 3)"
      continue
    fi
    return "$rc"
  done
}

[ $# -eq 2 ] || usage
case $1 in
  up) up_with_retries "$2" ;;
  down) cmd_down "$2" ;;
  *) usage ;;
esac
