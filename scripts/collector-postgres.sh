#!/usr/bin/env bash
# Runs a command against a PostgreSQL server of its own: a fresh cluster (initdb) in a temporary
# directory, on its own port and socket, as the `postgres` user when run as root, stopped and
# deleted on exit. The command gets the server's URL in STINT_TEST_POSTGRES_URL.
#
#   scripts/collector-postgres.sh cargo test -p stint-collector --test postgres
#
# Needs Debian's `postgresql` (scripts/install-deps.sh installs it).
set -euo pipefail

bin=""
for dir in /usr/lib/postgresql/*/bin; do
  [ -x "$dir/initdb" ] && bin="$dir"
done
if [ -z "$bin" ]; then
  echo "collector-postgres.sh: no PostgreSQL server (initdb) found under /usr/lib/postgresql;" \
    "install Debian's postgresql (scripts/install-deps.sh does)" >&2
  exit 1
fi

# The first free port from 55432 (another cluster, or a second run, may hold one).
port="${STINT_TEST_POSTGRES_PORT:-}"
if [ -z "$port" ]; then
  for candidate in $(seq 55432 55531); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      port=$candidate
      break
    fi
  done
fi
[ -n "$port" ] || { echo "collector-postgres.sh: no free port in 55432-55531" >&2; exit 1; }
dir="$(mktemp -d /tmp/stint-postgres.XXXXXX)"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi

stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# The server's defaults (durable commits), so that the benchmark measures what a deployment gets.
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export STINT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $STINT_TEST_POSTGRES_URL"
"$@"
