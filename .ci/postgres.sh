#!/usr/bin/env bash
# Makes sure a PostgreSQL server runs on loopback for the store and sync tests, and prints its
# URL. Installs PostgreSQL from Debian's packages when no server binaries are present; the
# cluster lives in a temporary directory, listens on 127.0.0.1 only, and trusts local users.
set -euo pipefail
if [ -n "${TICKETWARDEN_TEST_PG_URL:-}" ]; then
  echo "$TICKETWARDEN_TEST_PG_URL"
  exit 0
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/tw-pg.XXXXXX)
chown postgres "$data"
runuser -u postgres -- "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off" start >/dev/null
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
