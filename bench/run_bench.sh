#!/usr/bin/env bash
# Presage vs. peers benchmark: creates bench/.venv (once), installs the pinned
# peers from requirements.txt, then runs run_bench.py with the given flags
# (it builds the Presage example itself; CARGO_TARGET_DIR is respected).
#
#   bench/run_bench.sh --quick              # smoke run, about a minute
#   bench/run_bench.sh                      # full run: 1M rows (idle machine!)
#   bench/run_bench.sh --only gbm,score --rf-full
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when requirements.txt changed since the last complete install.
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  if "$VENV/bin/python" -m pip install -r "$HERE/requirements.txt"; then
    echo "$want" > "$stamp"
  else
    # One package failing must not stop the others: its contestant becomes "n/a".
    echo "warning: installing the requirements together failed; installing one by one" >&2
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$HERE/requirements.txt" | while read -r requirement; do
      if [ -n "$requirement" ] && ! "$VENV/bin/python" -m pip install "$requirement"; then
        echo "warning: could not install $requirement; its contestant will be reported as n/a" >&2
      fi
    done
  fi
fi

exec "$VENV/bin/python" "$HERE/run_bench.py" "$@"
