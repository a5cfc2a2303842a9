#!/bin/sh
# db-init (a one-shot container of the postgres image, run on every deploy):
# ensures one role and one database per service and the extensions Sim needs.
# Every statement is idempotent, so a run that failed part-way is finished by
# the next one, and role passwords follow .env. The connection comes from
# PGHOST, PGUSER and PGPASSWORD; SQL goes to psql on stdin, so no password is
# on a command line.
set -eu

check_password() {
  case $2 in
    '' | *[!A-Za-z0-9_-]*)
      echo "ensure-databases: $1 must be set and hold only A-Z a-z 0-9 _ -" >&2
      exit 1 ;;
  esac
  if [ "${#2}" -lt 24 ]; then
    echo "ensure-databases: $1 must be at least 24 characters" >&2
    exit 1
  fi
}

# $1 = role and database name (a constant below), $2 = variable holding the password.
ensure_role_and_database() {
  password=$(printenv "$2" || true)
  check_password "$2" "$password"
  # The server must not log a statement holding the password, whatever fails.
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --dbname postgres <<SQL
SET log_statement = 'none';
SET log_min_error_statement = panic;
SELECT 'CREATE ROLE $1 LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$1')\gexec
ALTER ROLE $1 WITH LOGIN PASSWORD '$password';
SELECT 'CREATE DATABASE $1 OWNER $1' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$1')\gexec
ALTER DATABASE $1 OWNER TO $1;
REVOKE ALL ON DATABASE $1 FROM PUBLIC;
SQL
  echo "ensure-databases: role and database $1 ready"
}

ensure_role_and_database n8n N8N_DB_PASSWORD
ensure_role_and_database sim SIM_DB_PASSWORD

# Sim stores embeddings with pgvector; only the superuser may create the extension.
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --dbname sim <<'SQL'
SET client_min_messages = warning; -- no "already exists, skipping" on every deploy
CREATE EXTENSION IF NOT EXISTS vector;
SQL
echo "ensure-databases: extension vector ready in sim"
