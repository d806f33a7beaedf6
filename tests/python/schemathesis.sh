#!/usr/bin/env bash
# Runs Schemathesis against a running presage-serve:
#   tests/python/schemathesis.sh http://127.0.0.1:PORT TOKEN [more `schemathesis run` options]
# Environment: SCHEMATHESIS (the executable; default: schemathesis on PATH),
# PRESAGE_ST_MODEL (default churn), PRESAGE_ST_VERSION (default 1),
# PRESAGE_ST_SEED (default 42), PRESAGE_ST_MAX_EXAMPLES (default 100).
# Exits with Schemathesis's code: 0 only when every check passed.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BASE_URL TOKEN [schemathesis run options...]" >&2
  exit 2
fi
url="${1%/}"
token="$2"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
export PRESAGE_ST_MODEL="${PRESAGE_ST_MODEL:-churn}"
export PRESAGE_ST_VERSION="${PRESAGE_ST_VERSION:-1}"
exec "${SCHEMATHESIS:-schemathesis}" --config-file "$here/schemathesis.toml" run "$url/openapi.json" \
  --url "$url" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --mode all \
  --seed "${PRESAGE_ST_SEED:-42}" \
  --max-examples "${PRESAGE_ST_MAX_EXAMPLES:-100}" \
  --workers 1 \
  --generation-database none \
  --header "Authorization: Bearer $token" \
  --wait-for-schema 30 \
  --request-timeout 30 \
  --no-color \
  "$@"
