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


async def migrate(admin_dsn: str, *, app_role: str | None = None, app_password: str | None = None) -> list[str]:
    """Apply pending migrations as the schema owner and grant ``app_role`` INSERT and SELECT only.
    Returns the names of the migrations applied now (empty when the schema was already current)."""
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
            if app_role:
                await _grant(conn, _ident(app_role), app_password)
        return applied_now
    finally:
        await conn.close()


async def _grant(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    """The application role may read and append; it owns nothing, so it can neither alter nor drop."""
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
        await conn.execute(f"REVOKE ALL ON {row['tablename']} FROM {role}")
        await conn.execute(f"GRANT SELECT, INSERT ON {row['tablename']} TO {role}")
    for statement in _extra_grants(role):
        await conn.execute(statement)


def _extra_grants(role: str) -> list[str]:
    """Grants beyond INSERT and SELECT, each with its reason."""
    return [
        # Erasure (right to be forgotten) destroys a customer's key: the trigger allows nothing else.
        f"GRANT UPDATE (wrapped_key, erased_at) ON complaint_customer_keys TO {role}",
    ]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
