#!/bin/sh
# Runs once, on PostgreSQL's first start: the roles and the event log's database. Temporal's own databases
# are created by its schema job. The application role gets its table rights from the migration
# (INSERT and SELECT on the log, nothing else).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v temporal_pw="$TEMPORAL_DB_PASSWORD" -v owner_pw="$COMPLAINTS_OWNER_PASSWORD" -v app_pw="$COMPLAINTS_APP_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_pw';
CREATE ROLE complaints_owner LOGIN PASSWORD :'owner_pw';
CREATE ROLE complaints_app LOGIN PASSWORD :'app_pw';
CREATE DATABASE complaints OWNER complaints_owner;
REVOKE ALL ON DATABASE complaints FROM PUBLIC;
GRANT CONNECT ON DATABASE complaints TO complaints_app;
SQL
