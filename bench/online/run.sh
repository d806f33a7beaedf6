#!/usr/bin/env bash
# Online store benchmark: presage-serve's online store vs. Feast + Redis on
# the same users and events, side by side in one run. See bench/online/README.md.
#
#   bench/online/run.sh --quick                 # smoke test: 20,000 users, 2 s per measurement (~1.5 minutes)
#   bench/online/run.sh                         # 1,000,000 users (~55M events), 10 s per measurement (~18 minutes, +6 the first time; idle machine!)
#   bench/online/run.sh --users 200000 --duration 5s
#   bench/online/run.sh --quick --only presage  # one side only (also: --only feast)
#   bench/online/run.sh --no-build              # use the binaries already in $CARGO_TARGET_DIR/release
#
# Prepares what the run needs, then hands over to bench.py (bench.py --help
# lists its options):
#  - a virtualenv at $HOME/.cache/presage-bench/online-venv (created if
#    absent) with bench/online/requirements.txt installed (again only when
#    that file changed): Feast needs pandas < 3, bench/.venv has pandas 3;
#  - wrk and redis-server (apt-get install -y when missing);
#  - the Presage binaries: cargo build --release --workspace (CARGO_TARGET_DIR,
#    default /root/.cache/presage-target).
# Whatever happens, the EXIT trap stops any server bench.py left running
# (their process-group ids are in bench/online/out/servers.pids). Only one
# run at a time: a second one exits at once (lock bench/online/out/run.lock).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${ONLINE_BENCH_VENV:-$HOME/.cache/presage-bench/online-venv}"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"
PIDFILE="$HERE/out/servers.pids"
export ONLINE_BENCH_PIDFILE="$PIDFILE"

BUILD=1
ARGS=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; echo; echo "bench.py options:"; BUILD=0; ARGS=(--help) ;;
    --no-build) BUILD=0 ;;
    *) ARGS+=("$arg") ;;
  esac
done

stop_servers() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  for pid in $(cat "$PIDFILE"); do
    if kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: stopping leftover server process group $pid" >&2
      kill -TERM -- "-$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  : > "$PIDFILE"
}
# One run at a time: a second run would share the cores (meaningless numbers)
# and the pid file. The lock is held by this shell only (fd 9 is closed for
# bench.py and so for the servers), so a run killed hard releases it.
mkdir -p "$HERE/out"
exec 9> "$HERE/out/run.lock"
if ! flock -n 9; then
  echo "run.sh: another bench/online run is in progress (it holds $HERE/out/run.lock); wait for it to finish" >&2
  exit 1
fi
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
stop_servers   # from an earlier run that was killed hard

# --- Python side -----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "run.sh: creating $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.online-requirements.sha256"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "run.sh: installing bench/online/requirements.txt into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
  echo "$want" > "$stamp"
fi

# --- wrk and redis-server ----------------------------------------------------
for tool in wrk:wrk redis-server:redis-server; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "run.sh: installing ${tool#*:}" >&2
    if ! apt-get install -y "${tool#*:}" >/dev/null 2>&1; then
      apt-get update -qq
      apt-get install -y "${tool#*:}"
    fi
  fi
done

# --- Presage binaries ---------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  echo "run.sh: cargo build --release --workspace (cargo waits if another build holds the lock)" >&2
  (cd "$REPO" && cargo build --release --workspace)
fi

# Not exec: the EXIT trap must outlive bench.py.
"$VENV/bin/python" "$HERE/bench.py" "${ARGS[@]}" 9>&-
