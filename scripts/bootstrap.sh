#!/usr/bin/env bash
# Install everything the repository needs on a machine with only Node 20 and npm: pnpm (pinned), the
# workspace's dependencies (from the lockfile), then build every package. Idempotent; fast when done before.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1

PNPM_VERSION=12.4.2
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error(`polyglot needs Node >= 20.19 (found ${process.versions.node})`); process.exit(1) }'

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  echo "bootstrap: installing pnpm@$PNPM_VERSION" >&2
  npm install -g "pnpm@$PNPM_VERSION" >&2 || {
    echo "bootstrap: 'npm install -g' failed (no permission?); using a local copy under .cache/pnpm" >&2
    npm install --prefix .cache/pnpm "pnpm@$PNPM_VERSION" >&2
    export PATH="$PWD/.cache/pnpm/node_modules/.bin:$PATH"
  }
fi

# Native addons (better-sqlite3) build from source here: prebuilt binaries cannot be downloaded. Point node-gyp at
# the Node headers that npm is configured with, since pnpm does not pass npm's config on.
if [ -z "${npm_config_nodedir:-}" ]; then
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  if [ -n "$nodedir" ] && [ "$nodedir" != "undefined" ] && [ "$nodedir" != "null" ]; then export npm_config_nodedir="$nodedir"; fi
fi

if [ "${CI:-}" = "true" ]; then
  pnpm install --frozen-lockfile >&2
else
  pnpm install --prefer-offline >&2
fi
pnpm build >&2
