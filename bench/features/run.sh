#!/usr/bin/env bash
# Feature build from extracts: `presage-train features` vs the same
# aggregation written as SQL for DuckDB, on the same Parquet files.
#
#   bench/features/run.sh                    # 1,000,000 users (~55M events), 3 runs each
#   bench/features/run.sh --users 100000 --runs 1
#
# Steps: generate the extract with presage-datagen (once, under bench/data/),
# then alternate Presage and DuckDB runs (wall time and peak RSS from
# /usr/bin/time), check that the two tables agree cell for cell
# (compare.py), and time an end-to-end `presage-train fit` from the same
# extracts. Idle machine please: both sides use every core.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/bench/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"
USERS=1000000
SEED=1
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
if ! command -v /usr/bin/time >/dev/null; then apt-get install -y time >/dev/null; fi
BIN="$CARGO_TARGET_DIR/release"
if [ ! -x "$BIN/presage-train" ] || [ ! -x "$BIN/presage-datagen" ]; then
  (cd "$REPO" && cargo build --release -p presage-training -p presage-datasets --bin presage-train --bin presage-datagen)
fi

DATA="$REPO/bench/data/onboarding_${USERS}_seed${SEED}"
if [ ! -f "$DATA/truth.parquet" ]; then
  rm -rf "$DATA"
  "$BIN/presage-datagen" --users "$USERS" --seed "$SEED" --out "$DATA"
fi
OUT="$HERE/out"; mkdir -p "$OUT"
CONFIG="$REPO/datasets/configs/churn.toml"
events_n=$("$VENV/bin/python" -c "import pyarrow.parquet as pq, glob; print(sum(pq.ParquetFile(f).metadata.num_rows for f in glob.glob('$DATA/events/*.parquet')))")

measure() { # label, command...: prints "label seconds peak_kib"
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > "$OUT/$label.log" 2>&1
  echo "$label $(cat "$OUT/time.txt")"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $USERS users, $events_n events ($DATA)"
results=()
for run in $(seq "$RUNS"); do
  results+=("$(measure presage "$BIN/presage-train" features --config "$CONFIG" --users "$DATA/users.parquet" --events "$DATA/events" --out "$OUT/presage.parquet")")
  results+=("$(measure duckdb "$VENV/bin/python" "$HERE/duckdb_features.py" "$DATA/users.parquet" "$DATA/events" "$OUT/duckdb.parquet" "$(nproc)")")
done
printf '%s\n' "${results[@]}"
"$VENV/bin/python" "$HERE/compare.py" "$OUT/presage.parquet" "$OUT/duckdb.parquet"
fit="$(measure fit "$BIN/presage-train" --registry "$OUT/registry" fit --config "$CONFIG" --users "$DATA/users.parquet" --events "$DATA/events" --json)"
rm -rf "$OUT/registry"
printf '%s\n' "${results[@]}" | "$VENV/bin/python" -c "
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
def summary(name):
    t = [float(r[1]) for r in rows if r[0] == name]; m = [int(r[2]) for r in rows if r[0] == name]
    return statistics.median(t), max(m) / 1024 / 1024
pt, pm = summary('presage'); dt, dm = summary('duckdb')
print(f'median of $RUNS runs: Presage {pt:.2f} s, peak {pm:.2f} GiB | DuckDB {dt:.2f} s, peak {dm:.2f} GiB')
print(f'time ratio Presage/DuckDB: {pt/dt:.2f} (target <= 1.5: {\"PASS\" if pt/dt <= 1.5 else \"FAIL\"}); Presage peak < 4 GiB: {\"PASS\" if pm < 4 else \"FAIL\"}')
"
echo "end-to-end fit from the extracts (features + split + GBM + calibration + registry): $(echo "$fit" | awk '{printf "%s s, peak %.2f GiB", $2, $3/1024/1024}')"
grep -o '"test":{[^}]*"auc":[0-9.]*' "$OUT/fit.log" | head -1 || true
