#!/usr/bin/env bash
# Experiment analysis: `presage-train experiment` vs the same analysis
# written as DuckDB SQL (per-user outcomes) + scipy (tests), on the same
# generated experiment with datasets/configs/experiment.toml's outcomes.
#
#   bench/experiment/run.sh                    # 1,000,000 users (~55M events), 3 runs each
#   bench/experiment/run.sh --users 100000 --runs 1
#
# Steps: generate the experiment with presage-datagen --experiment (once,
# under bench/data/), alternate Presage and reference runs (wall time and
# peak RSS from /usr/bin/time), then check that every count agrees exactly
# and every statistic to 1e-9 (compare.py). Idle machine please.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/bench/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"
USERS=1000000
SEED=3
RUNS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
if ! command -v /usr/bin/time >/dev/null; then apt-get install -y time >/dev/null; fi
BIN="$CARGO_TARGET_DIR/release"
(cd "$REPO" && cargo build --release -p presage-training -p presage-datasets --bin presage-train --bin presage-datagen)

DATA="$REPO/bench/data/experiment_${USERS}_seed${SEED}"
if [ ! -f "$DATA/experiment_truth.json" ]; then
  rm -rf "$DATA"
  "$BIN/presage-datagen" --users "$USERS" --seed "$SEED" --experiment --out "$DATA"
fi
OUT="$HERE/out"; mkdir -p "$OUT"
events_n=$("$VENV/bin/python" -c "import pyarrow.parquet as pq, glob; print(sum(pq.ParquetFile(f).metadata.num_rows for f in glob.glob('$DATA/events/*.parquet')))")

measure() { # label, output file, command...: prints "label seconds peak_kib"
  local label="$1" out="$2"; shift 2
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > "$out" 2> "$OUT/$label.err" || {
    echo "$label failed:" >&2; cat "$OUT/$label.err" >&2; exit 1; }
  echo "$label $(cat "$OUT/time.txt")"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $USERS users, $events_n events ($DATA)"
results=()
for run in $(seq "$RUNS"); do
  results+=("$(measure presage "$OUT/presage.json" "$BIN/presage-train" experiment --config "$REPO/datasets/configs/experiment.toml" \
    --users "$DATA/users.parquet" --events "$DATA/events" --assignments "$DATA/assignments.parquet" --json)")
  results+=("$(measure reference "$OUT/reference.log" "$VENV/bin/python" "$HERE/reference.py" "$DATA" "$OUT/reference.json" "$(nproc)")")
done
printf '%s\n' "${results[@]}"
"$VENV/bin/python" "$HERE/compare.py" "$OUT/presage.json" "$OUT/reference.json"
printf '%s\n' "${results[@]}" | "$VENV/bin/python" -c "
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
def summary(name):
    t = [float(r[1]) for r in rows if r[0] == name]; m = [int(r[2]) for r in rows if r[0] == name]
    return statistics.median(t), max(m) / 1024 / 1024
pt, pm = summary('presage'); rt, rm = summary('reference')
print(f'median of $RUNS runs: Presage {pt:.2f} s, peak {pm:.2f} GiB | DuckDB + scipy {rt:.2f} s, peak {rm:.2f} GiB')
print(f'time ratio Presage/reference: {pt/rt:.2f}')
"
