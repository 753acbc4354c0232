#!/usr/bin/env bash
# npm run bench: every benchmark, figures into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/index.js ] || npm run build
exec npx tsx bench/rotation.ts "$@"
