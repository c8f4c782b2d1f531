#!/usr/bin/env bash
# A throwaway PostgreSQL server for one test run, from Debian's postgresql package.
#   scripts/test-postgres.sh start DIR   initdb into DIR/data, start on a free port (Unix
#                                        socket in DIR, fsync off), print the libpq keywords
#                                        for STOREPLANE_TEST_POSTGRES
#   scripts/test-postgres.sh stop DIR    stop it (fast) and remove DIR
# STOREPLANE_PG_DURABLE=1: durability on instead (fsync, synchronous_commit and
# full_page_writes at their defaults), for benchmarks (bench/run.sh replicas); DIR must then
# be on a disk, not tmpfs, for the figures to mean anything.
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
set -euo pipefail
cmd=${1:?usage: test-postgres.sh start|stop DIR}
dir=${2:?usage: test-postgres.sh start|stop DIR}
bindir=${STOREPLANE_POSTGRES_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[[ -x $bindir/initdb && -x $bindir/pg_ctl ]] || { echo "test-postgres.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }
as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
  start)
    mkdir -p "$dir"
    chmod 755 "$dir"
    [[ $(id -u) == 0 ]] && chown postgres: "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    if [[ ${STOREPLANE_PG_DURABLE:-0} == 1 ]]; then
      durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
    else
      durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    # A random high port; another one when it is taken.
    for attempt in 1 2 3 4 5; do
      port=$((20000 + RANDOM % 40000))
      if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $durability -c max_connections=600 -c shared_buffers=256MB" \
        start >/dev/null; then
        break
      fi
      [[ $attempt == 5 ]] && { cat "$dir/postgres.log" >&2; exit 1; }
    done
    echo "host=127.0.0.1 port=$port user=postgres connect_timeout=10"
    ;;
  stop)
    if [[ -d $dir/data ]]; then as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    ;;
  *) echo "usage: test-postgres.sh start|stop DIR" >&2; exit 2 ;;
esac
