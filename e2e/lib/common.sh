# shellcheck shell=bash
# Helpers shared by e2e/env.sh: logging, free ports, background processes
# recorded in STATE_DIR/pids, bounded waits, and stopping everything again.
# Sourced, never run; expects `set -euo pipefail` from the caller, and
# $state (the absolute STATE_DIR) set by it before use.
# shellcheck disable=SC2154

envsh_t0=${envsh_t0:-$SECONDS}

log() { printf 'env.sh [%3ss] %s\n' "$((SECONDS - envsh_t0))" "$*" >&2; }

# die MESSAGE [LOG_NAME...]: print the reason, the tail of the named logs
# (STATE_DIR/logs/NAME.log), and exit non-zero.
die() {
  local msg=$1
  shift
  printf 'env.sh: ERROR: %s\n' "$msg" >&2
  local name
  for name in "$@"; do
    show_log "$name"
  done
  exit 1
}

show_log() {
  local file="$state/logs/$1.log"
  if [ -s "$file" ]; then
    printf -- '--- last 40 lines of %s ---\n' "$file" >&2
    tail -n 40 "$file" >&2
    printf -- '--- end of %s ---\n' "$file" >&2
  fi
}

# abs_dir DIR: creates DIR and prints its absolute path.
abs_dir() {
  mkdir -p "$1"
  (cd "$1" && pwd -P)
}

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, one a line.
# All sockets are held open until every port is chosen, so the N differ.
# The last port is chosen such that port+1 is free as well (OpenBao's dev
# server listens for cluster traffic on its API port + 1).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
held, ports = [], []
def bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return s.getsockname()[1]
for i in range(n):
    for _ in range(200):
        p = bind(0)
        # The last two ports are OpenBao dev servers, which also listen on port + 1.
        if i < n - 2 or p >= 65535 or bind(p + 1) is not None:
            break
    ports.append(p)
print("\n".join(str(p) for p in ports))
for s in held:
    s.close()
PY
}

# port_is_free PORT: true if 127.0.0.1:PORT can be bound now.
port_is_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# start_bg NAME CMD...: runs CMD in a session of its own (so its whole process
# group can be signalled), stdin from /dev/null, output to
# STATE_DIR/logs/NAME.log, pid to STATE_DIR/pids/NAME.pid.
start_bg() {
  local name=$1
  shift
  # In a non-interactive shell the background child is not a process group
  # leader, so setsid(1) does not fork: $! is the pid of CMD itself and of its
  # new process group.
  setsid nohup "$@" </dev/null >"$state/logs/$name.log" 2>&1 &
  echo "$!" >"$state/pids/$name.pid"
  log "started $name (pid $!, log $state/logs/$name.log)"
}

pid_of() { cat "$state/pids/$1.pid" 2>/dev/null || true; }

# proc_field PID: "STATE PGID" of PID from /proc (no forks), empty if gone.
proc_field() {
  local stat st pgrp
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  read -r st _ pgrp _ <<<"$stat" || true
  echo "$st $pgrp"
}

# alive PID: the process exists and is not a zombie.
alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# live_groups: sets the array LIVE_GROUPS to the process groups that have a
# live (non-zombie) member. One pass over /proc, builtins only.
live_groups() {
  local f stat st pgrp
  LIVE_GROUPS=()
  for f in /proc/[0-9]*/stat; do
    { read -r stat <"$f"; } 2>/dev/null || continue
    stat=${stat##*) }
    read -r st _ pgrp _ <<<"$stat" || true
    [ "$st" = Z ] || LIVE_GROUPS+=("$pgrp")
  done
}

# group_alive PGID (after live_groups).
group_alive() {
  local g
  for g in "${LIVE_GROUPS[@]+"${LIVE_GROUPS[@]}"}"; do
    [ "$g" = "$1" ] && return 0
  done
  return 1
}

# pgid_of PID: the process group of PID, empty if it is gone.
pgid_of() {
  local f
  f=$(proc_field "$1")
  echo "${f#* }"
}

# wait_for NAME TIMEOUT WHAT CHECK...: runs CHECK every half second until it
# succeeds. Fails early if the process NAME (a pid file) has died, and on
# timeout; both print the tail of NAME's log. On timeout the shell command in
# WAIT_DIAG (if set) is run first, to say what is missing.
wait_for() {
  local name=$1 timeout=$2 what=$3
  shift 3
  local deadline=$((SECONDS + timeout)) pid
  pid=$(pid_of "$name")
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! alive "$pid"; then
      die "$name (pid $pid) exited while waiting for $what" "$name"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      if [ -n "${WAIT_DIAG:-}" ]; then
        echo "--- $WAIT_DIAG ---" >&2
        eval "$WAIT_DIAG" >&2 2>&1 || true
      fi
      die "timed out after ${timeout}s waiting for $what" "$name"
    fi
    sleep 0.5
  done
}

# stop_all: stops every process recorded in STATE_DIR/pids/*.pid (ours and
# those other scripts dropped there, e.g. operator.pid), with its process
# group: TERM, up to 10s of grace, then KILL. Removes the pid files, keeps the
# logs. Idempotent.
stop_all() {
  local dir="$state/pids" f
  [ -d "$dir" ] || return 0
  local first=() last=()
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    case ${f##*/} in
      etcd.pid) last+=("$f") ;;
      *) first+=("$f") ;;
    esac
  done
  # Clients first (operator, controller manager, OpenBao, API server), etcd
  # last, so the API server shuts down cleanly while its storage is there.
  stop_pidfiles "${first[@]+"${first[@]}"}"
  stop_pidfiles "${last[@]+"${last[@]}"}"
}

# stop_pidfiles FILE...: TERM the processes (and their groups) of the pid
# files, wait up to 10s, KILL what is left, remove the files.
stop_pidfiles() {
  [ $# -gt 0 ] || return 0
  local f pid pgid self_pgid i pids=() groups=() names=() left=()
  self_pgid=$(pgid_of "$$")
  for f in "$@"; do
    pid=$(head -n 1 "$f" 2>/dev/null | tr -d '[:space:]') || true
    case $pid in '' | *[!0-9]*) continue ;; esac
    [ "$pid" -gt 1 ] && [ "$pid" != "$$" ] || continue
    pgid=$(pgid_of "$pid")
    if alive "$pid"; then
      log "stopping $(basename "$f" .pid) (pid $pid)"
    fi
    names+=("$(basename "$f" .pid)")
    pids+=("$pid")
    # The process leads its own group (started with setsid): stop the group
    # too, also when the leader is already gone but children remain.
    if { [ "$pgid" = "$pid" ] || [ -z "$pgid" ]; } && [ "$pid" != "$self_pgid" ]; then
      groups+=("$pid")
    else
      groups+=("")
    fi
  done
  [ "${#pids[@]}" -gt 0 ] || { rm -f "$@"; return 0; }
  signal_all TERM "${pids[@]}" -- "${groups[@]}"
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -le "$deadline" ] && any_alive "${pids[@]}" -- "${groups[@]}"; do
    sleep 0.2
  done
  if any_alive "${pids[@]}" -- "${groups[@]}"; then
    live_groups
    for i in "${!pids[@]}"; do
      if alive "${pids[$i]}" || { [ -n "${groups[$i]}" ] && group_alive "${groups[$i]}"; }; then
        left+=("${names[$i]}")
      fi
    done
    log "still running 10s after SIGTERM: ${left[*]}; sending SIGKILL"
    signal_all KILL "${pids[@]}" -- "${groups[@]}"
    sleep 0.2
  fi
  rm -f "$@"
}

# signal_all SIG PID... -- PGID...
signal_all() {
  local sig=$1 p
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    kill "-$sig" "$1" 2>/dev/null || true
    shift
  done
  [ $# -gt 0 ] && shift
  live_groups
  for p in "$@"; do
    if [ -n "$p" ] && group_alive "$p"; then
      kill "-$sig" -- "-$p" 2>/dev/null || true
    fi
  done
}

# any_alive PID... -- PGID...
any_alive() {
  local p
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    alive "$1" && return 0
    shift
  done
  [ $# -gt 0 ] && shift
  [ $# -gt 0 ] || return 1
  live_groups
  for p in "$@"; do
    [ -n "$p" ] && group_alive "$p" && return 0
  done
  return 1
}
