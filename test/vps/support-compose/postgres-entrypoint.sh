#!/usr/bin/env bash
# Stand-in for the postgres image's entrypoint, written from
# docker-library/postgres 15/bookworm/docker-entrypoint.sh at commit 2c6fe8daca
# (2025-06-06; the base of pgvector/pgvector:0.8.1-pg15-bookworm). Mounted as
# /usr/local/bin/docker-entrypoint.sh by test/vps/real-postgres.test.ts.
# Modelled, as upstream does it:
# - a leading flag means `postgres FLAGS...`; only `postgres` gets the setup;
# - first start only (no $PGDATA/PG_VERSION): refuse an empty POSTGRES_PASSWORD,
#   initdb as POSTGRES_USER (default postgres) with that password (initdb's
#   own trust for local connections), then `host all all all` with the
#   server's password_encryption (scram-sha-256 in 15);
# - a temporary server on the unix socket only; CREATE DATABASE POSTGRES_DB
#   (default POSTGRES_USER) unless it exists; /docker-entrypoint-initdb.d/* in
#   glob order: *.sh run if executable, else sourced into this shell (so its
#   `exit` ends the entrypoint), *.sql through psql with ON_ERROR_STOP; then
#   the temporary server stops;
# - a later start prints "... Skipping initialization"; then exec the command.
# Not modelled (the test does not use them): the root-to-postgres re-exec via
# gosu (the test starts as postgres), the --help/--version pass-through,
# *_FILE secrets, POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR,
# POSTGRES_HOST_AUTH_METHOD, nss_wrapper, *.sql.gz/xz/zst.
# Upstream runs without -u (sourced init scripts may read unset variables).
set -Eeo pipefail

# psql against the temporary server as the superuser; SQL from stdin or -f.
init_psql() {
  PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

first_start() {
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo 'Error: Database is uninitialized and superuser password is not specified (POSTGRES_PASSWORD).' >&2
    exit 1
  fi
  ls /docker-entrypoint-initdb.d/ > /dev/null # unreadable scripts fail before initdb, not half-way
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
  printf '\nhost all all all %s\n' "$(postgres -C password_encryption "$@")" >> "$PGDATA/pg_hba.conf"

  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  NOTIFY_SOCKET='' PGUSER="${PGUSER:-$POSTGRES_USER}" \
    pg_ctl -D "$PGDATA" -w start -o "$(printf '%q ' "$@" -c listen_addresses='' -p "${PGPORT:-5432}")"

  init_psql --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
  local script
  for script in /docker-entrypoint-initdb.d/*; do
    [ -e "$script" ] || continue # an empty folder leaves the pattern itself
    case $script in
      *.sh)
        if [ -x "$script" ]; then
          echo "$0: running $script"
          "$script"
        else
          echo "$0: sourcing $script"
          # shellcheck disable=SC1090 # the image's init hook, known only at run time
          . "$script"
        fi ;;
      *.sql) echo "$0: running $script"; init_psql --dbname "$POSTGRES_DB" -f "$script" ;;
      *) echo "$0: ignoring $script" ;;
    esac
  done

  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  printf '\nPostgreSQL init process complete; ready for start up.\n\n'
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ]; then
  export POSTGRES_USER="${POSTGRES_USER:-postgres}"
  export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" || : # postgres itself reports a folder it cannot use
  if [ -s "$PGDATA/PG_VERSION" ]; then
    printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
  else
    first_start "${@:2}"
  fi
fi
exec "$@"
