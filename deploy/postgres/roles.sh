#!/bin/sh
# One-shot, as the PostgreSQL superuser, on every `docker compose up` (idempotent): the database roles and the
# event log's database. Each role gets LOGIN and the password from its own variable, so a password changed in
# .env is applied by the next `up`, and a role added in a later release (the sealer, the eraser) reaches an
# existing deployment too: the image's /docker-entrypoint-initdb.d runs only on a fresh data volume.
#
#   temporal            Temporal's persistence; CREATEDB for its two databases (created by its schema job)
#   complaints_owner    owns the complaints database and its schema: migrations only (the setup job)
#   complaints_app      the workers: SELECT, and EXECUTE on the append and key functions (granted by migrate)
#   complaints_sealer   `complaints seal`: EXECUTE on the checkpoint function (granted by migrate)
#   complaints_eraser   `complaints erase-customer`: EXECUTE on the erasure function (granted by migrate)
#
# Table and function rights are the migration's to grant (eventlog/migrate.py), never this script's.
# Passwords travel in the environment and psql's \getenv, never on a command line.
set -eu
for name in PGPASSWORD TEMPORAL_DB_PASSWORD COMPLAINTS_OWNER_PASSWORD COMPLAINTS_APP_PASSWORD \
            COMPLAINTS_SEALER_PASSWORD COMPLAINTS_ERASER_PASSWORD; do
  eval "value=\${$name:-}"
  if [ -z "$value" ] || [ "$value" = change-me ]; then
    echo "$name is not set (still change-me?): generate it as .env.example says" >&2
    exit 1
  fi
done
until pg_isready --quiet; do echo "waiting for PostgreSQL"; sleep 1; done

psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --dbname postgres <<'SQL'
\getenv temporal_pw TEMPORAL_DB_PASSWORD
\getenv owner_pw COMPLAINTS_OWNER_PASSWORD
\getenv app_pw COMPLAINTS_APP_PASSWORD
\getenv sealer_pw COMPLAINTS_SEALER_PASSWORD
\getenv eraser_pw COMPLAINTS_ERASER_PASSWORD

SELECT format('CREATE ROLE %I', name)
  FROM unnest(ARRAY['temporal', 'complaints_owner', 'complaints_app', 'complaints_sealer',
                    'complaints_eraser']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec

ALTER ROLE temporal LOGIN CREATEDB NOCREATEROLE NOSUPERUSER PASSWORD :'temporal_pw';
ALTER ROLE complaints_owner LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD :'owner_pw';
ALTER ROLE complaints_app LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD :'app_pw';
ALTER ROLE complaints_sealer LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD :'sealer_pw';
ALTER ROLE complaints_eraser LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD :'eraser_pw';

SELECT 'CREATE DATABASE complaints OWNER complaints_owner'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'complaints') \gexec
REVOKE ALL ON DATABASE complaints FROM PUBLIC;
GRANT CONNECT ON DATABASE complaints TO complaints_app, complaints_sealer, complaints_eraser;
SQL
echo "PostgreSQL roles ready"
