# shellcheck shell=bash
# PostgreSQL for the leased-credential tests, sourced by e2e/env.sh: Debian's
# postgresql-15, installed when missing, run as a throwaway local server
# (loopback only, its own port, no unix socket) by the unprivileged
# `postgres` user the package creates (initdb and postgres refuse root).
#
# The data directory lives in a private directory under /tmp, not in
# STATE_DIR: STATE_DIR may sit below a directory the postgres user cannot
# enter (e.g. a checkout in /root). Its path is kept in
# STATE_DIR/postgres-dir; `up` and `down` remove it.

PG_MAJOR=15
PG_ADMIN_USER=vaultsync_admin
PG_DATABASE=app
pg_bin=/usr/lib/postgresql/$PG_MAJOR/bin

# ensure_postgres: installs postgresql-15 from Debian's packages if needed.
ensure_postgres() {
  if ! "$pg_bin/postgres" --version 2>/dev/null | grep -q " $PG_MAJOR\."; then
    log "installing PostgreSQL $PG_MAJOR from Debian's packages"
    command -v apt-get >/dev/null || die "PostgreSQL $PG_MAJOR is missing and there is no apt-get to install it"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" >"$state/logs/apt-postgres.log" 2>&1 ||
      die "apt-get install postgresql-$PG_MAJOR failed: $(tail -5 "$state/logs/apt-postgres.log")"
  fi
  "$pg_bin/postgres" --version | grep -q " $PG_MAJOR\." ||
    die "$pg_bin/postgres is not PostgreSQL $PG_MAJOR: $("$pg_bin/postgres" --version)"
  id postgres >/dev/null 2>&1 || die "the postgres system user (created by Debian's package) is missing"
  if ! command -v openssl >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null 2>&1 ||
      die "apt-get install openssl failed"
  fi
}

# remove_postgres_dir: the previous run's data directory, if any.
remove_postgres_dir() {
  local dir
  dir=$(cat "$state/postgres-dir" 2>/dev/null || true)
  case "$dir" in
    /tmp/vaultsync-pg.*) rm -rf "$dir" ;;
  esac
  rm -f "$state/postgres-dir"
}

# json_data FIELD: .data.FIELD of the JSON on stdin (bao -format=json).
json_data() { python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][sys.argv[1]])' "$1"; }

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# start_postgres PORT: initdb into a new data directory and start the server.
# Sets pg_password.
start_postgres() {
  local port=$1 dir
  remove_postgres_dir
  dir=$(mktemp -d /tmp/vaultsync-pg.XXXXXX)
  echo "$dir" >"$state/postgres-dir"
  chown postgres:postgres "$dir"
  chmod 700 "$dir"
  pg_password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s\n' "$pg_password" >"$dir/pwfile"
  chown postgres:postgres "$dir/pwfile"
  as_postgres "$pg_bin/initdb" --pgdata="$dir/data" --username="$PG_ADMIN_USER" --pwfile="$dir/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --no-instructions >"$state/logs/postgres-initdb.log" 2>&1 ||
    die "initdb failed: $(tail -5 "$state/logs/postgres-initdb.log")"
  rm -f "$dir/pwfile"
  # fsync off: a throwaway server; a test never outlives it.
  start_bg postgres setpriv --reuid=postgres --regid=postgres --init-groups \
    "$pg_bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off
}

# pg_admin SQL: runs SQL as the admin user in the `postgres` database.
pg_admin() {
  PGPASSWORD=$pg_password "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=$pg_port user=$PG_ADMIN_USER dbname=${2:-postgres}" -c "$1"
}

# pg_login USER PASSWORD: whether USER logs in to the app database.
pg_login() {
  PGPASSWORD=$2 "$pg_bin/psql" -X -q -t -A "host=127.0.0.1 port=$pg_port user=$1 dbname=$PG_DATABASE" -c 'SELECT 1'
}

# configure_postgres: the app database, a user for the static role, and
# OpenBao's database engine (database/) against it, proven by a login with
# issued credentials.
configure_postgres() {
  wait_for postgres "$timeout" "PostgreSQL to accept connections (pg_isready)" \
    "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"
  pg_admin "CREATE DATABASE $PG_DATABASE" >/dev/null 2>"$state/logs/psql.log" ||
    die "CREATE DATABASE failed: $(cat "$state/logs/psql.log")" postgres
  pg_admin "CREATE ROLE static_app WITH LOGIN PASSWORD '$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')'" \
    >/dev/null 2>"$state/logs/psql.log" || die "CREATE ROLE static_app failed: $(cat "$state/logs/psql.log")" postgres

  bao_do secrets enable database
  # The admin password through stdin ("-"), not the command line.
  printf '%s' "$pg_password" | bao_do write database/config/postgres \
    plugin_name=postgresql-database-plugin \
    connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:$pg_port/$PG_DATABASE?sslmode=disable" \
    username="$PG_ADMIN_USER" password=- allowed_roles='*'
  bao_do write database/roles/app db_name=postgres default_ttl=1h max_ttl=24h \
    creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT CONNECT ON DATABASE $PG_DATABASE TO \"{{name}}\";"
  bao_do write database/static-roles/static-app db_name=postgres username=static_app rotation_period=24h

  local creds user password
  creds=$(bao read -format=json database/creds/app 2>"$state/logs/bao-cli.log") ||
    die "bao read database/creds/app failed: $(cat "$state/logs/bao-cli.log")" openbao postgres
  user=$(json_data username <<<"$creds")
  password=$(json_data password <<<"$creds")
  [ "$(pg_login "$user" "$password" 2>"$state/logs/psql.log")" = 1 ] ||
    die "credentials from database/creds/app do not log in: $(cat "$state/logs/psql.log")" postgres openbao
  bao_do lease revoke -prefix database/creds/app
}

# configure_pki: OpenBao's PKI engine at pki/ with an internal root CA and
# role example-dot-com, proven by a certificate openssl verifies.
configure_pki() {
  bao_do secrets enable pki
  bao_do secrets tune -max-lease-ttl=87600h pki
  bao_do write pki/root/generate/internal common_name=vaultsync-e2e-root ttl=87600h
  bao_do write pki/roles/example-dot-com allowed_domains=example.com allow_subdomains=true max_ttl=72h
  local issued
  issued=$(bao write -format=json pki/issue/example-dot-com common_name=env-check.example.com ttl=1h \
    2>"$state/logs/bao-cli.log") || die "bao write pki/issue/example-dot-com failed: $(cat "$state/logs/bao-cli.log")" openbao
  json_data issuing_ca <<<"$issued" >"$state/pki-ca.pem"
  json_data certificate <<<"$issued" >"$state/logs/pki-env-check.pem"
  openssl verify -CAfile "$state/pki-ca.pem" "$state/logs/pki-env-check.pem" >/dev/null 2>"$state/logs/openssl.log" ||
    die "a certificate from pki/issue/example-dot-com does not verify: $(cat "$state/logs/openssl.log")" openbao
}
