# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # set or used by e2e/node-tier.sh and lib.sh
# Sourced by e2e/node-tier.sh (see there). The install a newcomer makes:
# the README's "Try it on kind" block, word for word, on this node. Its
# `kind load image-archive` is what kind runs inside its node container:
# `ctr images import --all-platforms --digests` into containerd's k8s.io
# namespace (kind pipes the archive in and names its snapshotter; here the
# default one), so the function below stands in for kind and nothing else.
# The archive names the image by its full reference (scripts/image.sh), and
# that name is what the Pods ask for.

[ -f "$archive" ] || fatal "image archive $archive missing (make image)"
# OpenBao as Pods reach it (node.sh's forward on the node IP).
[ -n "${NODE_BAO_ADDR:-}" ] || fatal "NODE_BAO_ADDR missing from $state/node/env (node.sh too old?)"
if curl -fsS --max-time 5 "$NODE_BAO_ADDR/v1/sys/health" >/dev/null; then
  pass "OpenBao answers on the node IP: $NODE_BAO_ADDR"
else
  fatal "OpenBao not reachable at $NODE_BAO_ADDR"
fi

# OpenBao side of the sync: a policy, a Kubernetes auth role for
# ServiceAccount $ns/app (audience vault, as the operator requests) and the
# first value. Written before helm install so the sync is not waiting on it.
first=first-$RANDOM$RANDOM second=second-$RANDOM$RANDOM
printf 'path "secret/data/node-tier/*" { capabilities = ["read"] }\n' |
  bao policy write node-tier - >/dev/null
bao write auth/kubernetes/role/node-tier bound_service_account_names=app \
  bound_service_account_namespaces="$ns" audience=vault token_policies=node-tier token_ttl=10m >/dev/null
bao kv put -mount=secret node-tier/db password="$first" >/dev/null

# Stand-in for kind, exported into the shell that runs the README block.
kind() {
  [ "$1 $2" = "load image-archive" ] && [ $# = 3 ] || { echo "kind stand-in: only 'kind load image-archive FILE'" >&2; return 2; }
  ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images import --all-platforms --digests "$3"
}
export -f kind
"${ctr_k8s[@]}" images rm "$image" >/dev/null 2>&1 || true
t_install=$SECONDS
if (cd "$root" && bash "$root/scripts/readme-block.sh" kind-install | bash -euo pipefail) >"$state/node-tier-readme-install.log" 2>&1; then
  pass "README's kind-install block ran: kind load image-archive, helm install, rollout status ($((SECONDS - t_install))s)"
else
  fatal "README's kind-install block failed: $(tail -5 "$state/node-tier-readme-install.log")"
fi
# Listed first, then searched: `ctr ... | grep -q` under pipefail fails
# whenever grep exits at the first match before ctr has written the rest
# (SIGPIPE), which made this check flaky.
images=$("${ctr_k8s[@]}" images ls -q 2>/dev/null || true)
if grep -qxF "$image" <<<"$images"; then
  pass "image $image imported from $(basename "$archive") ($(du -h "$archive" | cut -f1)) into containerd's k8s.io namespace"
else
  fatal "image $image not in containerd after the import: $("${ctr_k8s[@]}" images ls -q 2>/dev/null | tr '\n' ' ')"
fi
