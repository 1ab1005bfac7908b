# shellcheck shell=bash
# make_pki DIR: a throwaway PKI for the local control plane, with openssl.
#   ca.crt/ca.key                  cluster CA (client and serving certs)
#   apiserver.crt/.key             serving cert of kube-apiserver
#   admin.crt/.key                 CN=admin, O=system:masters
#   controller-manager.crt/.key    CN=system:kube-controller-manager
#   apiserver-kubelet-client.crt/.key
#                                  the API server's identity towards a
#                                  kubelet (logs, exec; e2e/node.sh)
#   sa.key/sa.pub                  RSA key pair signing ServiceAccount tokens
#   front-proxy-ca.crt/.key, front-proxy-client.crt/.key
#                                  request-header (aggregation) client auth;
#                                  without it every delegating component
#                                  (kube-controller-manager) logs errors about
#                                  a missing requestheader CA bundle
# Uses its own openssl config, so the system openssl.cnf does not matter.

make_pki() {
  local dir=$1
  mkdir -p "$dir"
  (
    umask 077
    cd "$dir" || exit 1
    cat >openssl.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:10.0.0.1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
    key() { openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ||
      openssl genrsa -out "$1" 2048 2>/dev/null; }

    # ca NAME SUBJECT
    ca() {
      key "$1.key"
      openssl req -x509 -new -config openssl.cnf -extensions ca -key "$1.key" \
        -subj "$2" -days 3650 -sha256 -out "$1.crt"
    }
    # leaf CA NAME SUBJECT EXTENSIONS
    leaf() {
      key "$2.key"
      openssl req -new -config openssl.cnf -key "$2.key" -subj "$3" -out "$2.csr"
      openssl x509 -req -in "$2.csr" -CA "$1.crt" -CAkey "$1.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days 365 -sha256 -extfile openssl.cnf -extensions "$4" -out "$2.crt" 2>/dev/null
      rm -f "$2.csr"
    }
    ca ca "/CN=vaultsync-e2e-ca"
    leaf ca apiserver "/CN=kube-apiserver" server
    leaf ca admin "/O=system:masters/CN=admin" client
    leaf ca controller-manager "/CN=system:kube-controller-manager" client
    leaf ca apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
    ca front-proxy-ca "/CN=vaultsync-e2e-front-proxy-ca"
    leaf front-proxy-ca front-proxy-client "/CN=front-proxy-client" client

    key sa.key
    openssl pkey -in sa.key -pubout -out sa.pub
    chmod 644 ca.crt front-proxy-ca.crt
  )
}
