#!/usr/bin/env bash
# Serving benchmark: presage-serve vs. FastAPI + uvicorn + LightGBM, loaded
# with wrk from this machine. See bench/serve/README.md.
#
#   bench/serve/run.sh --quick              # smoke test: 2 s per measurement (~1.5 minutes)
#   bench/serve/run.sh                      # 10 s per measurement (~5 minutes; idle machine!)
#   bench/serve/run.sh --duration 30s
#   bench/serve/run.sh --quick --only presage,fastapi-tuned-2w
#
# Prepares what the run needs, then hands over to bench.py:
#  - bench/.venv (created if absent) with bench/serve/requirements.txt
#    installed (again only when that file changed);
#  - wrk (apt-get install -y wrk when it is missing);
#  - the Presage binaries under $CARGO_TARGET_DIR/release (default
#    /root/.cache/presage-target), built with cargo only if missing.
# Whatever happens, the EXIT trap stops any server bench.py left running
# (their process-group ids are in bench/serve/out/run/servers.pids).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/bench/.venv"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"
PIDFILE="$HERE/out/run/servers.pids"
export SERVE_BENCH_PIDFILE="$PIDFILE"

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$HERE/out/run"
stop_servers   # from an earlier run that was killed hard

# --- Python side -----------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  echo "run.sh: creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.serve-requirements.sha256"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "run.sh: installing bench/serve/requirements.txt into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
  echo "$want" > "$stamp"
fi

# --- wrk -------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  echo "run.sh: installing wrk" >&2
  if ! apt-get install -y wrk >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y wrk
  fi
fi

# --- Presage binaries ---------------------------------------------------------
if [ ! -x "$CARGO_TARGET_DIR/release/presage-serve" ] || [ ! -x "$CARGO_TARGET_DIR/release/presage-train" ] \
   || [ ! -x "$CARGO_TARGET_DIR/release/examples/http_ceiling" ]; then
  echo "run.sh: building presage-serve, presage-train and the http_ceiling example (release); cargo waits if another build holds the lock" >&2
  (cd "$REPO" && cargo build --release --workspace --bins --example http_ceiling)
fi

# Not exec: the EXIT trap must outlive bench.py.
"$VENV/bin/python" "$HERE/bench.py" "$@"
