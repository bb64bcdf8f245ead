#!/usr/bin/env bash
# The main job: install, build, then run `polyglot reproduce` (arguments are passed through).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node packages/cli/dist/index.js reproduce "$@"
