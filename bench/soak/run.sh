#!/usr/bin/env bash
# Soak benchmark: presage-serve under steady mixed load, hostile clients and
# champion swaps for a long time, on this machine. See bench/soak/README.md.
#
#   bench/soak/run.sh --smoke            # 1 minute: a check of the harness
#   bench/soak/run.sh                    # 20 minutes (idle machine!)
#   bench/soak/run.sh --minutes 60 --out /tmp/soak
#
# Options: --minutes N (default 20), --smoke (1 minute, 10 s warm-up),
# --out DIR (default bench/soak/out), --workers N (8), --rate R (requests/s
# per worker, 40), --warmup S (seconds before the RSS start sample, 60),
# --skip CLASS,... (leave classes out, e.g. slow_body_trickle),
# --rss-tolerance-mb M (8), --swap-every S (10), --scrape-every S (also
# GET /metrics every S seconds as Prometheus would; default 0 = never).
#
# Trains churn v1 and v2 into a fresh OUT/registry with the real
# presage-train, starts presage-serve on 127.0.0.1:0 with OUT/serve.toml,
# runs soak.py (Python standard library only), then stops the server with
# SIGTERM (SIGKILL after 15 s) and checks that it exited 0. Exit code 0 only
# if everything passed. The EXIT trap stops the server whatever happens.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"
BIN="$CARGO_TARGET_DIR/release"

MINUTES=20
WARMUP=60
OUT="$HERE/out"
LOAD_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --smoke) MINUTES=1; WARMUP=10; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --workers|--rate|--skip|--rss-tolerance-mb|--swap-every|--scrape-every) LOAD_ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$MINUTES" in ''|*[!0-9.]*) echo "run.sh: --minutes takes a number" >&2; exit 2 ;; esac
SECONDS_TOTAL="$("$PYTHON" -c "import sys; print(float(sys.argv[1]) * 60)" "$MINUTES")"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
REG="$OUT/registry"
LOGS="$OUT/logs"
# Only a registry this script made is deleted.
if [ -e "$REG" ] && [ ! -f "$OUT/.soak-out" ]; then
  echo "run.sh: $REG exists and was not made by this script; choose another --out" >&2
  exit 2
fi
touch "$OUT/.soak-out"
rm -rf "$REG" "$LOGS" "$OUT/results.json"
mkdir -p "$LOGS"

SERVER_PID=""
alive() {  # running and not a zombie
  [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}
STOP_RC=""; STOP_SECONDS=""; STOP_KILLED=0
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid="$SERVER_PID" start end
  SERVER_PID=""
  start=$(date +%s.%N)
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "run.sh: presage-serve still running 15 s after SIGTERM; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      STOP_KILLED=1
    fi
  fi
  STOP_RC=0
  wait "$pid" 2>/dev/null || STOP_RC=$?
  end=$(date +%s.%N)
  STOP_SECONDS="$("$PYTHON" -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$start" "$end")"
}
LOAD_PID=""
on_signal() {  # stop the load generator first (it still writes its results)
  if [ -n "$LOAD_PID" ]; then kill -TERM "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; fi
  exit "$1"
}
trap stop_server EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# --- binaries (built only if missing, as bench/serve/run.sh does) -----------
if [ ! -x "$BIN/presage-serve" ] || [ ! -x "$BIN/presage-train" ]; then
  echo "run.sh: building presage-serve and presage-train (release); cargo waits if another build holds the lock" >&2
  (cd "$REPO" && cargo build --release --workspace --bins)
fi
echo "binaries: $BIN/presage-serve ($(date -u -r "$BIN/presage-serve" '+%Y-%m-%d %H:%M UTC')), $BIN/presage-train"
echo "machine: $(nproc) cores, $(free -m | awk '/Mem:/{print $2}') MiB; load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- registry: churn v1 and v2 ---------------------------------------------
fit() {
  local log="$1"; shift
  if ! "$BIN/presage-train" --registry "$REG" fit \
      --data "$REPO/datasets/telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv" \
      --label Churn --positive Yes --id customerID --model churn \
      --config "$REPO/datasets/configs/churn_telco.toml" "$@" > "$log" 2>&1; then
    echo "run.sh: presage-train fit failed:" >&2; cat "$log" >&2; exit 1
  fi
}
echo "training churn v1 and v2 into $REG"
fit "$LOGS/train-v1.log"
fit "$LOGS/train-v2.log" --seed 7
for v in 1 2; do
  [ -f "$REG/churn/v$v.presage" ] || { echo "run.sh: $REG/churn/v$v.presage missing after training" >&2; ls -la "$REG/churn" >&2; exit 1; }
done
cp "$REPO/datasets/policies/churn.toml" "$REG/churn/policy.toml"

# --- server --------------------------------------------------------------------
cat > "$OUT/serve.toml" <<'EOF'
# presage-serve config of the soak run: the defaults but for these two.
header_read_timeout_ms = 2000
body_read_timeout_ms = 2000
EOF
PRESAGE_ADMIN_TOKEN="soak-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export PRESAGE_ADMIN_TOKEN
# No PRESAGE_* setting from the caller's environment may change the config.
env -u PRESAGE_REGISTRY -u PRESAGE_LISTEN -u PRESAGE_CONFIG -u PRESAGE_MAX_BODY_BYTES \
    -u PRESAGE_MAX_BATCH_ROWS -u PRESAGE_STRICT -u PRESAGE_POLL_INTERVAL_MS -u PRESAGE_LOG \
  "$BIN/presage-serve" --registry "$REG" --listen 127.0.0.1:0 --config "$OUT/serve.toml" \
  > "$LOGS/server.stdout" 2> "$LOGS/server.stderr" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 600); do
  ADDR="$(sed -n 's#^listening on http://##p' "$LOGS/server.stdout" | head -n1)"
  [ -n "$ADDR" ] && break
  if ! alive "$SERVER_PID"; then
    echo "run.sh: presage-serve exited during start-up:" >&2; cat "$LOGS/server.stderr" >&2; exit 1
  fi
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "run.sh: presage-serve printed no 'listening on' line within 60 s" >&2; exit 1; }
echo "presage-serve pid $SERVER_PID listening on $ADDR"

# --- load ------------------------------------------------------------------------
# In the background, so that a signal to run.sh reaches the trap at once.
LOAD_RC=0
"$PYTHON" "$HERE/soak.py" load --addr "$ADDR" --pid "$SERVER_PID" --out "$OUT" \
  --seconds "$SECONDS_TOTAL" --warmup "$WARMUP" ${LOAD_ARGS[@]+"${LOAD_ARGS[@]}"} &
LOAD_PID=$!
wait "$LOAD_PID" || LOAD_RC=$?
LOAD_PID=""

# --- shutdown: SIGTERM must give exit code 0 ---------------------------------------
stop_server
FINISH_RC=0
"$PYTHON" "$HERE/soak.py" finish --out "$OUT" --exit-code "$STOP_RC" --seconds "$STOP_SECONDS" \
  --killed "$STOP_KILLED" --load-exit "$LOAD_RC" --server-log "$LOGS/server.stderr" || FINISH_RC=$?
exit "$FINISH_RC"
