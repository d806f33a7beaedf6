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
USAGE_LINES=2,13
USERS=1000000
SEED=1
RUNS=3
source "$HERE/../common.sh"
parse_options "$@"
prepare
generate onboarding
CONFIG="$REPO/datasets/configs/churn.toml"

results=()
for run in $(seq "$RUNS"); do
  results+=("$(measure presage "$OUT/presage.log" "$BIN/presage-train" features --config "$CONFIG" --users "$DATA/users.parquet" --events "$DATA/events" --out "$OUT/presage.parquet")")
  results+=("$(measure duckdb "$OUT/duckdb.log" "$VENV/bin/python" "$HERE/duckdb_features.py" "$DATA/users.parquet" "$DATA/events" "$OUT/duckdb.parquet" "$(nproc)")")
done
printf '%s\n' "${results[@]}"
"$VENV/bin/python" "$HERE/compare.py" "$OUT/presage.parquet" "$OUT/duckdb.parquet"
fit="$(measure fit "$OUT/fit.log" "$BIN/presage-train" --registry "$OUT/registry" fit --config "$CONFIG" --users "$DATA/users.parquet" --events "$DATA/events" --json)"
rm -rf "$OUT/registry"
printf '%s\n' "${results[@]}" | summarize presage Presage duckdb DuckDB 1.5 4
echo "end-to-end fit from the extracts (features + split + GBM + calibration + registry): $(echo "$fit" | awk '{printf "%s s, peak %.2f GiB", $2, $3/1024/1024}')"
grep -o '"test":{[^}]*"auc":[0-9.]*' "$OUT/fit.log" | head -1 || true
