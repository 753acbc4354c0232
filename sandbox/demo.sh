#!/usr/bin/env bash
# npm run demo: one command on a fresh Linux machine. Installs what the
# sandbox needs (as root, with apt), builds the action if needed, then runs a
# full rotation of the sandbox deployment. Pass --keep to leave it running.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v curl >/dev/null 2>&1 || need+=(curl)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "The sandbox needs these Debian packages: ${need[*]}. Run as root (it installs them with apt-get) or install them first." >&2
    exit 1
  fi
  echo "Installing ${need[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
  echo "The sandbox starts its own dockerd and sshd: run the demo as root." >&2
  exit 1
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -f dist/index.js ] || npm run build
exec npx tsx sandbox/demo.ts "$@"
