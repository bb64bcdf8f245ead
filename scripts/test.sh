#!/usr/bin/env bash
# The test command: install what is needed, build, run every package's tests, print "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || { echo "bootstrap failed (install or build)"; echo "0 passed, 1 failed"; exit 1; }
exec node scripts/run-tests.mjs "$@"
