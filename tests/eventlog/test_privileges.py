"""Least privilege, tried by the statements an operator with the application's credentials (DATABASE_URL) would
run: every one refused by the database, nothing written. Sealing and erasure run under roles of their own, each
able to call its one function and nothing else; erasure is recorded; the superuser needs its password."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from dev.stack import ERASER_ROLE, SEALER_ROLE, SUPERUSER, Postgres
from eventlog import EventLogError, PostgresEventStore
from eventlog.keys import CustomerKeyring, erase_customer, master_key
from tests.eventlog.contract import new_id, records

REFUSED = (asyncpg.InsufficientPrivilegeError,)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def keyring(app_pool: asyncpg.Pool) -> CustomerKeyring:
    return CustomerKeyring(app_pool, master_key())


@pytest.fixture
async def stored(store: PostgresEventStore) -> str:
    cid = new_id()
    await store.append(records(cid, "one", "two"))
    return cid


async def connect_as(database: Postgres, role: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.url(role))
    try:
        yield conn
    finally:
        await conn.close()


async def counts(admin: asyncpg.Connection) -> dict[str, int]:
    tables = ("complaint_events", "complaint_schema_migrations", "complaint_checkpoints", "complaint_customer_keys",
              "complaint_erasures", "complaint_consumers", "complaint_report_figures", "complaint_report_open",
              "complaint_webhooks", "complaint_webhook_parked")
    return {t: int(await admin.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}


APP_FORGERIES = [
    ("an event with a bogus hash at position -5, around the append function",
     "INSERT INTO complaint_events (complaint_id, sequence, type, schema_version, occurred_at, actor, payload,"
     " prev_hash, hash, position, workflow_id, run_id) OVERRIDING SYSTEM VALUE VALUES ('X', 1, 'ComplaintReceived',"
     " 1, now(), 'system', '{}', repeat('0', 64), repeat('f', 64), -5, 'w', 'r')"),
    ("a planted migration row", "INSERT INTO complaint_schema_migrations (version, name) VALUES (999, 'never_run')"),
    ("a planted checkpoint", "INSERT INTO complaint_checkpoints (position, events, complaints, root, sealed_at,"
                             " public_key, signature) VALUES (999999, 1, 1, repeat('0', 64), now(), 'k', 's')"),
    ("every customer's key erased in one UPDATE",
     "UPDATE complaint_customer_keys SET wrapped_key = NULL, erased_at = now()"),
    ("customer keys deleted", "DELETE FROM complaint_customer_keys"),
    ("a key planted directly", "INSERT INTO complaint_customer_keys (key_id, customer_id, wrapped_key)"
                               " VALUES ('k1', 'c1', '\\x00')"),
    ("an erasure without its role", "SELECT erase_complaint_customer('c1', 'me', 'because')"),
    ("a checkpoint without the sealer's role",
     "SELECT record_complaint_checkpoint(999999, 1, 1, repeat('0', 64), now(), 'k', 's', NULL, 1)"),
    ("an erasure record forged", "INSERT INTO complaint_erasures (customer_id, requested_by, legal_basis,"
                                 " database_user, keys_destroyed) VALUES ('c1', 'x', 'y', 'z', 0)"),
    ("an object of its own in the schema, to shadow ours", "CREATE TABLE public.complaint_events_shadow (x int)"),
    ("the update id of a stored batch rewritten (an update answered as recorded that never was)",
     "UPDATE complaint_events SET update_id = 'forged'"),
]


@pytest.mark.parametrize("what,statement", APP_FORGERIES, ids=[f[0] for f in APP_FORGERIES])
async def test_the_application_role_cannot_write_around_the_functions(database: Postgres, admin: asyncpg.Connection,
                                                                       stored: str, keyring: CustomerKeyring,
                                                                       what: str, statement: str) -> None:
    await keyring.key_for(f"cust-{new_id()}")
    before = await counts(admin)
    async for conn in connect_as(database, "complaints_app"):
        with pytest.raises(REFUSED):
            await conn.execute(statement)
    assert await counts(admin) == before
    assert await admin.fetchval("SELECT count(*) FROM complaint_customer_keys WHERE erased_at IS NOT NULL") == 0


@pytest.mark.parametrize("update_id", ["", "x" * 1001], ids=["empty", "oversized"])
async def test_an_append_naming_an_update_id_no_temporal_update_has_is_refused_with_nothing_written(
        store: PostgresEventStore, admin: asyncpg.Connection, update_id: str) -> None:
    cid = new_id()
    with pytest.raises(EventLogError, match="update id"):
        await store.append(records(cid, "one"), run_id="r", update_id=update_id)
    assert await admin.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = $1", cid) == 0


async def test_the_application_role_still_appends_and_keys_through_its_functions(
        store: PostgresEventStore, keyring: CustomerKeyring) -> None:
    cid = new_id()
    assert await store.append(records(cid, "one")) == 1
    customer = f"cust-{new_id()}"
    first, again = await keyring.key_for(customer), await keyring.key_for(customer)
    assert first.key_id == again.key_id


@pytest.mark.parametrize("role,statement", [
    (SEALER_ROLE, "INSERT INTO complaint_events (complaint_id, sequence, type, schema_version, occurred_at, actor,"
                  " payload, prev_hash, hash, workflow_id, run_id) VALUES ('X', 1, 't', 1, now(), 'a', '{}',"
                  " repeat('0', 64), repeat('f', 64), 'w', 'r')"),
    (SEALER_ROLE, "SELECT erase_complaint_customer('c1', 'me', 'because')"),
    (SEALER_ROLE, "SELECT * FROM complaint_customer_keys"),
    (SEALER_ROLE, "INSERT INTO complaint_checkpoints (position, events, complaints, root, sealed_at, public_key,"
                  " signature) VALUES (999999, 1, 1, repeat('0', 64), now(), 'k', 's')"),
    (ERASER_ROLE, "SELECT append_complaint_events('X', ARRAY[1], ARRAY['t'], ARRAY[1], ARRAY[now()], ARRAY['a'],"
                  " ARRAY['{}'::jsonb], ARRAY[repeat('0', 64)], ARRAY[repeat('f', 64)], 'w', 'r')"),
    (SEALER_ROLE, "SELECT append_complaint_batches(ARRAY[1], ARRAY['X'], ARRAY['w'], ARRAY['r'], ARRAY[NULL],"
                  " ARRAY[1], ARRAY['t'], ARRAY[1], ARRAY[now()], ARRAY['a'], ARRAY['{}'::jsonb],"
                  " ARRAY[repeat('0', 64)], ARRAY[repeat('f', 64)])"),
    (ERASER_ROLE, "SELECT append_complaint_batches(ARRAY[1], ARRAY['X'], ARRAY['w'], ARRAY['r'], ARRAY[NULL],"
                  " ARRAY[1], ARRAY['t'], ARRAY[1], ARRAY[now()], ARRAY['a'], ARRAY['{}'::jsonb],"
                  " ARRAY[repeat('0', 64)], ARRAY[repeat('f', 64)])"),
    (ERASER_ROLE, "UPDATE complaint_customer_keys SET wrapped_key = NULL, erased_at = now()"),
    (ERASER_ROLE, "SELECT record_complaint_checkpoint(999999, 1, 1, repeat('0', 64), now(), 'k', 's', NULL, 1)"),
    (ERASER_ROLE, "SELECT * FROM complaint_events"),
    # The consumers' positions, the live report and the webhooks are the application role's alone.
    (SEALER_ROLE, "SELECT advance_complaint_consumer('report', 0, 0, 1, 1, 1)"),
    (SEALER_ROLE, "SELECT restart_complaint_report()"),
    (SEALER_ROLE, "INSERT INTO complaint_webhooks (id, url, secret) VALUES ('wh_x', 'https://evil.example', 's')"),
    (ERASER_ROLE, "SELECT rewind_complaint_webhook('wh_x', 0, 0)"),
    (ERASER_ROLE, "INSERT INTO complaint_consumers (name, tx, position) VALUES ('report', 9, 9)"),
    (ERASER_ROLE, "INSERT INTO complaint_report_figures (id, figures) VALUES (1, '{}')"),
])
async def test_the_sealer_and_the_eraser_can_do_their_one_thing_only(database: Postgres, admin: asyncpg.Connection,
                                                                      stored: str, role: str, statement: str) -> None:
    before = await counts(admin)
    async for conn in connect_as(database, role):
        with pytest.raises(REFUSED):
            await conn.execute(statement)
    assert await counts(admin) == before


async def test_an_erasure_is_one_customer_and_is_recorded_with_who_and_why(
        keyring: CustomerKeyring, eraser_pool: asyncpg.Pool, admin: asyncpg.Connection) -> None:
    customer, bystander = f"cust-{new_id()}", f"cust-{new_id()}"
    await keyring.key_for(customer)
    await keyring.key_for(bystander)
    for requested_by, basis in (("", "UU PDP"), ("dpo:rina", " "), ("dpo:rina", None)):
        with pytest.raises(asyncpg.InvalidParameterValueError, match="who asked for it and its legal basis"):
            await erase_customer(eraser_pool, customer, requested_by=requested_by, legal_basis=basis)  # type: ignore[arg-type]
    assert await admin.fetchval("SELECT count(*) FROM complaint_erasures") == 0
    assert await erase_customer(eraser_pool, customer, requested_by="dpo:rina",
                                legal_basis="UU PDP art. 8, request 2026-114") == 1
    row = await admin.fetchrow("SELECT * FROM complaint_erasures")
    assert (row["customer_id"], row["requested_by"], row["legal_basis"], row["database_user"],
            row["keys_destroyed"]) == (customer, "dpo:rina", "UU PDP art. 8, request 2026-114", ERASER_ROLE, 1)
    live = {r["customer_id"] for r in await admin.fetch("SELECT customer_id FROM complaint_customer_keys"
                                                        " WHERE erased_at IS NULL")}
    assert bystander in live and customer not in live
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute("DELETE FROM complaint_erasures")


async def test_every_write_function_runs_as_its_owner_with_a_fixed_search_path(admin: asyncpg.Connection) -> None:
    rows = await admin.fetch(
        "SELECT proname, prosecdef, proconfig, proacl::text AS acl FROM pg_proc WHERE proname IN"
        " ('append_complaint_events', 'append_complaint_batches', 'complaint_customer_key',"
        " 'erase_complaint_customer', 'record_complaint_checkpoint', 'advance_complaint_consumer',"
        " 'restart_complaint_report', 'rewind_complaint_webhook')")
    assert len(rows) == 8
    for row in rows:
        assert row["prosecdef"], row["proname"]
        assert any(c.startswith("search_path=") for c in row["proconfig"]), row["proname"]
        assert not re.search(r"[{,]=X", row["acl"]), f"{row['proname']} is executable by PUBLIC: {row['acl']}"


async def test_the_superuser_needs_its_password(postgres: Postgres) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://{SUPERUSER}@/postgres?host={postgres.socket_dir}")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://{SUPERUSER}:wrong@/postgres?host={postgres.socket_dir}")
    conn = await asyncpg.connect(postgres.url(database="postgres"))
    await conn.close()


async def test_the_application_role_rewinds_only_a_webhook_and_restarts_only_the_live_report(
        app_pool: asyncpg.Pool, admin: asyncpg.Connection, store: PostgresEventStore) -> None:
    """The two functions that move a position back: neither reaches another consumer's."""
    await store.append(records(new_id(), "one", "two"))
    async with app_pool.acquire() as conn:
        await conn.execute("SELECT advance_complaint_consumer('projection', 0, 0, 1, 1, 2)")
        await conn.execute("SELECT advance_complaint_consumer('report', 0, 0, 1, 1, 2)")
        # A forged webhook id (or another consumer's name) is refused, and nothing moves.
        for forged in ("wh_forged", "report", "../projection"):
            with pytest.raises(asyncpg.PostgresError, match="no webhook"):
                await conn.execute("SELECT rewind_complaint_webhook($1, 0, 0)", forged)
        await conn.execute("SELECT restart_complaint_report()")
    positions = {r["name"]: (r["tx"], r["position"]) for r in await admin.fetch("SELECT * FROM complaint_consumers")}
    assert positions == {"projection": (1, 1)}  # the report's position forgotten, the other consumer's kept
