#!/bin/sh
# Temporal's schema on PostgreSQL, as Temporal's own compose files do it (temporal-sql-tool; the
# auto-setup image is deprecated). Idempotent: "create" tolerates an existing database, and
# update-schema only applies what is missing.
set -eu
until nc -z postgresql 5432; do echo "waiting for PostgreSQL"; sleep 1; done
for db in temporal temporal_visibility; do
  dir=temporal
  [ "$db" = temporal_visibility ] && dir=visibility
  temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal --db "$db" create || true
  temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal --db "$db" setup-schema -v 0.0 || true
  temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal --db "$db" \
    update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
done
echo "Temporal schema ready"
