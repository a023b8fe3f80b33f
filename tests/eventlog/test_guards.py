"""The database itself keeps the log append-only: for everyone through the trigger, and for the
application role through its grants."""

from __future__ import annotations

import asyncpg
import pytest

from dev.stack import Postgres
from eventlog import PostgresEventStore
from eventlog.migrate import migrate
from tests.eventlog.contract import new_id, records


@pytest.fixture
async def stored(store: PostgresEventStore) -> str:
    cid = new_id()
    await store.append(records(cid, "one", "two"))
    return cid


@pytest.mark.parametrize("statement", [
    "UPDATE complaint_events SET actor = 'someone else' WHERE complaint_id = $1",
    "DELETE FROM complaint_events WHERE complaint_id = $1",
])
async def test_even_the_owner_cannot_update_or_delete_an_event(admin: asyncpg.Connection, stored: str,
                                                               statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute(statement, stored)
    assert await admin.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = $1", stored) == 2


async def test_even_the_owner_cannot_truncate_the_log(admin: asyncpg.Connection, stored: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute("TRUNCATE complaint_events")
    assert await admin.fetchval("SELECT count(*) FROM complaint_events") == 2


@pytest.mark.parametrize("statement", [
    "UPDATE complaint_events SET actor = 'x'",
    "DELETE FROM complaint_events",
    "TRUNCATE complaint_events",
    "ALTER TABLE complaint_events DISABLE TRIGGER complaint_events_append_only",
    "ALTER TABLE complaint_events ADD COLUMN note text",
    "DROP TABLE complaint_events",
    "DROP TRIGGER complaint_events_append_only ON complaint_events",
])
async def test_the_application_role_can_only_insert_and_select(database: Postgres, stored: str,
                                                               statement: str) -> None:
    conn = await asyncpg.connect(database.app_url)
    try:
        assert await conn.fetchval("SELECT current_user") == "complaints_app"
        with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.exceptions.InsufficientPrivilegeError)):
            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM complaint_events") == 2
    finally:
        await conn.close()


async def test_migrating_again_changes_nothing(database: Postgres, stored: str) -> None:
    assert await migrate(database.admin_url, app_role="complaints_app") == []
    conn = await asyncpg.connect(database.admin_url)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM complaint_schema_migrations")]
        assert versions == sorted(set(versions)) and 1 in versions
        assert await conn.fetchval("SELECT count(*) FROM complaint_events") == 2
    finally:
        await conn.close()
