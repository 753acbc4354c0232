#!/usr/bin/env bash
# npm run bench: every benchmark, figures into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/index.js ] || npm run build
# --swarm: target swarm's stop-first and start-first beside the compose path (bench/swarm.ts).
if [ "${1:-}" = --swarm ]; then
  shift
  exec npx tsx bench/swarm.ts "$@"
fi
exec npx tsx bench/rotation.ts "$@"
