#!/usr/bin/env bash
# Online store benchmark: ingest over HTTP and scoring by user id, on the
# presage-datagen extract (see bench/online/README.md).
#
#   bench/online/run.sh                      # 1M users, ~55M events
#   bench/online/run.sh --users 100000 --duration 5s
#
# Steps: generate the extract (once, under bench/data/), train the churn
# model from it, export it as NDJSON (presage-train export-online), start
# presage-serve with an empty online store, send the users then every event
# in batches of 1,000 over 4 keep-alive connections (each batch answered
# only once durable), read RSS, disk and the store's memory gauge, score by
# id and with features sent (wrk, 1 and 32 connections), then restart and
# time recovery.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
USERS=1000000
SEED=7
DURATION=10s
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"
if ! command -v wrk >/dev/null 2>&1; then apt-get install -y wrk >/dev/null; fi
(cd "$REPO" && cargo build --release --workspace --bins)
BIN="$CARGO_TARGET_DIR/release"
DATA="$REPO/bench/data/onboarding_${USERS}_seed${SEED}"
if [ ! -f "$DATA/truth.parquet" ]; then
  rm -rf "$DATA"
  "$BIN/presage-datagen" --users "$USERS" --seed "$SEED" --out "$DATA"
fi
OUT="$HERE/out/${USERS}_seed${SEED}"
mkdir -p "$OUT"
CONFIG="$REPO/datasets/configs/churn.toml"
if [ ! -d "$OUT/registry/churn" ]; then
  "$BIN/presage-train" --registry "$OUT/registry" fit --config "$CONFIG" \
    --users "$DATA/users.parquet" --events "$DATA/events" > "$OUT/fit.txt"
fi
if [ ! -f "$OUT/events.ndjson" ]; then
  "$BIN/presage-train" export-online --config "$CONFIG" --users "$DATA/users.parquet" \
    --events "$DATA/events" --users-out "$OUT/users.ndjson" --events-out "$OUT/events.ndjson"
fi
rm -rf "$OUT/store"
cat > "$OUT/serve.toml" <<TOML
[online]
dir = "store"
retain_days_after_signup = 7
retain_last_days = 7
TOML
TOKEN=bench-online-admin-token
PID=
start() {
  PRESAGE_ADMIN_TOKEN=$TOKEN PRESAGE_LOG=warn "$BIN/presage-serve" --registry "$OUT/registry" \
    --config "$OUT/serve.toml" --listen 127.0.0.1:0 > "$OUT/serve.out" 2> "$OUT/serve.err" &
  PID=$!
  for _ in $(seq 200); do grep -q listening "$OUT/serve.out" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(sed -n 's#listening on http://##p' "$OUT/serve.out")
  STARTED=$(date +%s.%N)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/readyz")" = 200 ]; do sleep 0.01; done
  READY=$(date +%s.%N)
}
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null || true' EXIT
metric() { curl -s "http://$ADDR/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $USERS users, $(wc -l < "$OUT/events.ndjson") events exported ($DATA)"
start
users=$(python3 "$HERE/ingest.py" "$ADDR" /users "$OUT/users.ndjson")
events=$(python3 "$HERE/ingest.py" "$ADDR" /events "$OUT/events.ndjson")
echo "ingest users:  $users"
echo "ingest events: $events"
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
memory=$(metric presage_online_store_memory_bytes)
stored_users=$(metric presage_online_users)
disk=$(du -sb "$OUT/store" | cut -f1)
python3 - "$rss_kib" "$memory" "$stored_users" "$disk" <<'PY'
import sys
rss, memory, users, disk = (float(x) for x in sys.argv[1:])
print(f"after ingest: RSS {rss / 1024:.0f} MiB; store memory {memory / 2**20:.0f} MiB "
      f"({memory / users:.0f} bytes per user, {users:.0f} users); disk {disk / 2**20:.0f} MiB")
PY

# Scoring: by id (features computed online) and with features sent.
python3 - "$OUT/users.ndjson" > "$OUT/ids.txt" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    for i, line in enumerate(f):
        if i % 10 == 0:
            print(json.loads(line)["user_id"])
PY
first=$(head -1 "$OUT/ids.txt")
curl -s "http://$ADDR/users/$first/features?model=churn" -H "authorization: Bearer $TOKEN" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"user_id": "'"$first"'", "features": d["features"]}))' \
  > "$OUT/features_body.json"
run_wrk() {
  local label="$1" conns="$2" threads="$3"; shift 3
  local line
  line=$(wrk -t"$threads" -c"$conns" -d"$DURATION" "$@" | sed -n 's/^WRK_JSON //p')
  echo "$label: $line"
  echo "$label $line" >> "$OUT/wrk.txt"
}
: > "$OUT/wrk.txt"
wrk -t1 -c1 -d2s -s "$HERE/ids.lua" "http://$ADDR/predict/churn" -- "$OUT/ids.txt" > /dev/null
run_wrk "by id, 1 conn" 1 1 -s "$HERE/ids.lua" "http://$ADDR/predict/churn" -- "$OUT/ids.txt"
run_wrk "by id, 32 conns" 32 2 -s "$HERE/ids.lua" "http://$ADDR/predict/churn" -- "$OUT/ids.txt"
run_wrk "features sent, 1 conn" 1 1 -s "$REPO/bench/serve/post.lua" "http://$ADDR/predict/churn" -- "$OUT/features_body.json"
run_wrk "features sent, 32 conns" 32 2 -s "$REPO/bench/serve/post.lua" "http://$ADDR/predict/churn" -- "$OUT/features_body.json"

# Recovery: restart on the same store.
kill -TERM "$PID"; wait "$PID" || true
start
echo "recovery: readyz 200 after $(python3 -c "print(round($READY - $STARTED, 2))") s from listening; presage_online_recovery_seconds $(metric presage_online_recovery_seconds); $(metric presage_online_users) users"
python3 - "$OUT/wrk.txt" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    label, _, js = line.partition(" {")
    rows[label] = json.loads("{" + js)
print(f"{'POST /predict/churn':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
for label, r in rows.items():
    e = r["errors"]
    errors = e["connect"] + e["read"] + e["write"] + e["status"] + e["timeout"]
    rate = r["requests"] / (r["duration_us"] / 1e6)
    lat = r["latency_us"]
    print(f"{label:<26} {rate:>9.0f} {lat['p50'] / 1000:>8.3f} {lat['p99'] / 1000:>8.3f} {errors:>7}")
rate = lambda l: rows[l]["requests"] / rows[l]["duration_us"]
print(f"ratio by id / features sent at 32 connections: {rate('by id, 32 conns') / rate('features sent, 32 conns'):.2f}")
PY
