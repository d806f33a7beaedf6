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
USAGE_LINES=2,12
USERS=1000000
SEED=3
RUNS=3
source "$HERE/../common.sh"
parse_options "$@"
prepare
generate experiment --experiment

results=()
for run in $(seq "$RUNS"); do
  results+=("$(measure presage "$OUT/presage.json" "$BIN/presage-train" experiment --config "$REPO/datasets/configs/experiment.toml" \
    --users "$DATA/users.parquet" --events "$DATA/events" --assignments "$DATA/assignments.parquet" --json)")
  results+=("$(measure reference "$OUT/reference.log" "$VENV/bin/python" "$HERE/reference.py" "$DATA" "$OUT/reference.json" "$(nproc)")")
done
printf '%s\n' "${results[@]}"
"$VENV/bin/python" "$HERE/compare.py" "$OUT/presage.json" "$OUT/reference.json"
printf '%s\n' "${results[@]}" | summarize presage Presage reference "DuckDB + scipy"
