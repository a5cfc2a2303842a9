#!/bin/sh
# Sourced by the postgres image's entrypoint on the first start only (empty
# data volume): one role and one database per service, passwords from the
# environment. SQL goes to psql on stdin, so no password is on a command line.
# No `set` here: the entrypoint that sources this file owns the shell options.

init_db_check_password() {
  case $2 in
    '' | *[!A-Za-z0-9_-]*)
      echo "init-databases: $1 must be set and hold only A-Z a-z 0-9 _ -" >&2
      exit 1 ;;
  esac
  if [ "${#2}" -lt 24 ]; then
    echo "init-databases: $1 must be at least 24 characters" >&2
    exit 1
  fi
}

# $1 = role and database name (a constant below), $2 = variable holding the password.
init_db_create() {
  password=$(printenv "$2" || true)
  init_db_check_password "$2" "$password"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL || exit 1
SELECT 'CREATE ROLE $1 LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$1')\gexec
ALTER ROLE $1 WITH LOGIN PASSWORD '$password';
SELECT 'CREATE DATABASE $1 OWNER $1' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$1')\gexec
REVOKE ALL ON DATABASE $1 FROM PUBLIC;
SQL
  echo "init-databases: role and database $1 ready"
}

init_db_create n8n N8N_DB_PASSWORD
init_db_create sim SIM_DB_PASSWORD

# Sim stores embeddings with pgvector; only the superuser may create the extension.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname sim <<'SQL' || exit 1
CREATE EXTENSION IF NOT EXISTS vector;
SQL
