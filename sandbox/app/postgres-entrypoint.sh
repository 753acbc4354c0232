#!/bin/sh
# Sandbox stand-in for the postgres image's entrypoint: the host's PostgreSQL
# 15 server (bind-mounted /usr), initdb on first start into the named volume,
# listening on 127.0.0.1:$PGPORT and on the unix socket in /var/run/postgresql
# (trust for local connections, scram-sha-256 over TCP).
set -eu
: "${PGDATA:=/var/lib/postgresql/data/pgdata}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "initdb: creating cluster in $PGDATA (user $POSTGRES_USER, db $POSTGRES_DB)"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null
  rm -f "$pwfile"
  if [ "$POSTGRES_DB" != postgres ]; then
    printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$POSTGRES_DB" "$POSTGRES_USER" |
      postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
fi

exec postgres -D "$PGDATA" \
  -c listen_addresses=127.0.0.1 -p "$PGPORT" \
  -c unix_socket_directories=/var/run/postgresql \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c shared_buffers=32MB -c max_connections=50
