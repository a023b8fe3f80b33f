"""Schema migrations, applied idempotently (worker start, `complaints db migrate`, the compose job)."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from eventlog.connect import connect

_MIGRATION = re.compile(r"^(\d{3})_(\w+)\.sql$")
# Why: two workers starting together would otherwise race to apply the same migration.
_MIGRATION_LOCK = 8034511212


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("eventlog.migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"role name {name!r} is not a plain lower-case identifier")
    return name


#: What each role may do, and nothing more (the log, its migrations and its checkpoints are written only
#: through functions, see migrations/005_least_privilege.sql).
APP = "app"
SEALER = "sealer"
ERASER = "eraser"
_TABLES_READ = {
    # The workers read the log and customer keys, and write the remedy ledger (the provider's stand-in).
    APP: ["complaint_events", "complaint_customer_keys", "complaint_remedy_fulfilments", "complaint_checkpoints",
          "complaint_schema_migrations", "complaint_erasures", "complaint_witness_archive", "complaint_consumers",
          "complaint_report_figures", "complaint_report_open", "complaint_webhooks", "complaint_webhook_parked"],
    # The sealer also archives closed complaints' witnesses before retention (migrations/006_witness_archive.sql).
    SEALER: ["complaint_events", "complaint_checkpoints", "complaint_witness_archive"],
    ERASER: ["complaint_customer_keys", "complaint_erasures"],
}
_TABLES_INSERT = {APP: ["complaint_remedy_fulfilments"], SEALER: [], ERASER: []}
#: Derived data the role keeps up to date (the live report, migrations/011_live_report.sql).
_TABLES_WRITE = {APP: ["complaint_report_figures", "complaint_report_open", "complaint_webhooks",
                       "complaint_webhook_parked"], SEALER: [], ERASER: []}
_FUNCTIONS = {
    APP: ["append_complaint_events(text, integer[], text[], integer[], timestamptz[], text[], jsonb[], text[], "
          "text[], text, text, text)",
          # Appends that waited together, in one call (migrations/015_appends_together.sql).
          "append_complaint_batches(integer[], text[], text[], text[], text[], integer[], text[], integer[], "
          "timestamptz[], text[], jsonb[], text[], text[])",
          "complaint_customer_key(text, text, bytea)",
          # Consumers of the log move their positions (migrations/010_subscriptions.sql).
          "advance_complaint_consumer(text, bigint, bigint, bigint, bigint, bigint)",
          "restart_complaint_report()", "rewind_complaint_webhook(text, bigint, bigint)"],
    SEALER: ["record_complaint_checkpoint(bigint, bigint, integer, text, timestamptz, text, text, text, bigint)",
             "record_complaint_witness(text, text, text[], integer, text, text[], text, text, timestamptz, text, "
             "text)"],
    # The eraser is the custodian of customer keys: it destroys them, and re-wraps them under a new master key
    # (complaints rotate-master-key, migrations/007_erasure.sql).
    ERASER: ["erase_complaint_customer(text, text, text)", "rewrap_complaint_customer_key(text, bytea, bytea)"],
}


async def migrate(admin_dsn: str, *, app_role: str | None = None, app_password: str | None = None,
                  sealer_role: str | None = None, sealer_password: str | None = None,
                  eraser_role: str | None = None, eraser_password: str | None = None) -> list[str]:
    """Apply pending migrations as the schema owner and grant each role what it needs and nothing more:
    ``app_role`` (the workers) SELECT and EXECUTE on the append and key functions; ``sealer_role`` the
    checkpoint function; ``eraser_role`` the erasure function. Returns the names of the migrations applied
    now (empty when the schema was already current)."""
    conn = await connect(admin_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            applied_now = []
            steps = migrations()
            await conn.execute(steps[0][2])
            done = {r["version"] for r in await conn.fetch("SELECT version FROM complaint_schema_migrations")}
            for version, name, sql in steps:
                if version in done:
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO complaint_schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
                applied_now.append(f"{version:03d}_{name}")
            for kind, role, password in ((APP, app_role, app_password), (SEALER, sealer_role, sealer_password),
                                         (ERASER, eraser_role, eraser_password)):
                if role:
                    await _grant(conn, kind, _ident(role), password)
        return applied_now
    finally:
        await conn.close()


async def _grant(conn: asyncpg.Connection, kind: str, role: str, password: str | None) -> None:
    """The role owns nothing (so it can neither alter nor drop), reads what it must, and writes only through
    the functions of its kind."""
    if role == await conn.fetchval("SELECT current_user"):
        return  # the owner is its own application role: nothing to narrow (and never revoke the owner's rights)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
    if password:
        await conn.execute(f"ALTER ROLE {role} PASSWORD {_literal(password)}")
    await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'complaint%'"
    )
    for row in tables:
        # REVOKE ALL also takes back column privileges (an earlier version granted UPDATE on key columns).
        await conn.execute(f"REVOKE ALL ON {row['tablename']} FROM {role}")
    for table in _TABLES_READ[kind]:
        await conn.execute(f"GRANT SELECT ON {table} TO {role}")
    for table in _TABLES_INSERT[kind]:
        await conn.execute(f"GRANT INSERT ON {table} TO {role}")
    for table in _TABLES_WRITE[kind]:
        await conn.execute(f"GRANT INSERT, UPDATE, DELETE ON {table} TO {role}")
    for function in _FUNCTIONS[kind]:
        await conn.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
