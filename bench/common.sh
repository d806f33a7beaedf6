# Shared by bench/features/run.sh and bench/experiment/run.sh, which source
# it after setting HERE (their folder), USAGE_LINES (the range of their
# header to print for --help) and the defaults USERS, SEED and RUNS.
#
# - parse_options "$@": --users N, --seed N, --runs N, -h.
# - prepare: the Python environment (bench/.venv, the caller's
#   requirements.txt), /usr/bin/time, and a release build of presage-train
#   and presage-datagen; sets BIN and OUT.
# - generate NAME [datagen flags]: the extract under bench/data/ (once);
#   sets DATA and prints the machine and data lines.
# - measure LABEL FILE COMMAND...: runs COMMAND with stdout to FILE and
#   prints "LABEL seconds peak_kib"; a failure shows its stderr and exits.
# - summarize A NAME_A B NAME_B [TIME_RATIO_TARGET PEAK_GIB_TARGET]: medians
#   of the lines printed by measure (on stdin) and the time ratio A/B.

REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/bench/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/presage-target}"

parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --users) USERS="$2"; shift 2 ;;
      --seed) SEED="$2"; shift 2 ;;
      --runs) RUNS="$2"; shift 2 ;;
      -h|--help) sed -n "${USAGE_LINES}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
  done
}

prepare() {
  if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
  "$VENV/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
  if ! command -v /usr/bin/time >/dev/null; then apt-get install -y time >/dev/null; fi
  (cd "$REPO" && cargo build --release --workspace --bins)
  BIN="$CARGO_TARGET_DIR/release"
  OUT="$HERE/out"; mkdir -p "$OUT"
}

generate() {
  local name="$1"; shift
  DATA="$REPO/bench/data/${name}_${USERS}_seed${SEED}"
  # The generator writes experiment_truth.json last, truth.parquet otherwise.
  local last=truth.parquet
  case " $* " in *" --experiment "*) last=experiment_truth.json ;; esac
  if [ ! -f "$DATA/$last" ]; then
    rm -rf "$DATA"
    "$BIN/presage-datagen" --users "$USERS" --seed "$SEED" --out "$DATA" "$@"
  fi
  local events_n
  events_n=$("$VENV/bin/python" -c "import pyarrow.parquet as pq, glob; print(sum(pq.ParquetFile(f).metadata.num_rows for f in glob.glob('$DATA/events/*.parquet')))")
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "data: $USERS users, $events_n events ($DATA)"
}

measure() {
  local label="$1" out="$2"; shift 2
  /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$@" > "$out" 2> "$OUT/$label.err" || {
    echo "$label failed:" >&2; cat "$OUT/$label.err" >&2; exit 1; }
  echo "$label $(cat "$OUT/time.txt")"
}

summarize() {
  "$VENV/bin/python" -c "
import sys, statistics
a, name_a, b, name_b = sys.argv[1:5]
targets = [float(t) for t in sys.argv[5:7]]
rows = [l.split() for l in sys.stdin if l.strip()]
def summary(label):
    t = [float(r[1]) for r in rows if r[0] == label]; m = [int(r[2]) for r in rows if r[0] == label]
    return statistics.median(t), max(m) / 1024 / 1024, len(t)
at, am, n = summary(a); bt, bm, _ = summary(b)
print(f'median of {n} runs: {name_a} {at:.2f} s, peak {am:.2f} GiB | {name_b} {bt:.2f} s, peak {bm:.2f} GiB')
line = f'time ratio {name_a}/{name_b}: {at/bt:.2f}'
if targets:
    line += f' (target <= {targets[0]}: {\"PASS\" if at/bt <= targets[0] else \"FAIL\"}); {name_a} peak < {targets[1]:g} GiB: {\"PASS\" if am < targets[1] else \"FAIL\"}'
print(line)
" "$@"
}
