"""Catch-up subscriptions over the log (eventlog/subscriptions.py), against a real PostgreSQL: a consumer killed
in the middle of a batch skips nothing and applies nothing twice (exactly once when it writes to the log's
database; at least once, with the same event ids, when it does not); it is woken by the appends' notification,
not by polling; it never skips an append whose transaction is still open; two instances of one consumer
apply a batch once; and its position moves only forward, only through the function."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from eventlog import PostgresEventStore
from eventlog.store import Positioned
from eventlog.subscriptions import ConsumerMovedOn, Subscription, advance, position
from tests.eventlog.contract import new_id, records

ROOT = Path(__file__).resolve().parent.parent.parent
PROJECTED = """
CREATE TABLE projected (position bigint PRIMARY KEY, complaint_id text NOT NULL, sequence integer NOT NULL);
GRANT SELECT, INSERT ON projected TO complaints_app;
"""


async def fill(store: PostgresEventStore, complaints: int = 7, each: int = 5) -> list[str]:
    ids = [new_id() for _ in range(complaints)]
    for cid in ids:
        await store.append(records(cid, *(f"e{n}" for n in range(each))))
    return ids


def consumer(database: Any, name: str, mode: str, die_after: int, out: Path) -> int:
    done = subprocess.run([sys.executable, "-m", "tests.eventlog.consumer_run", database.app_url, name, mode,
                           str(die_after), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode


async def test_a_consumer_killed_mid_batch_skips_nothing_and_applies_nothing_twice(
        database: Any, store: PostgresEventStore, admin: asyncpg.Connection, app_pool: asyncpg.Pool,
        tmp_path: Path) -> None:
    await admin.execute(PROJECTED)
    await fill(store)  # 35 events: batches of 10
    everything = [p.position for p in await store.read_all(limit=1000)]
    assert consumer(database, "projection", "exactly", 15, tmp_path / "x") == -9  # killed in its second batch
    assert (await position(app_pool, "projection")).events == 10
    assert await admin.fetchval("SELECT count(*) FROM projected") == 10  # the second batch rolled back whole
    assert consumer(database, "projection", "exactly", 0, tmp_path / "x") == 0
    projected = [r["position"] for r in await admin.fetch("SELECT position FROM projected ORDER BY position")]
    assert projected == sorted(everything)
    assert (await position(app_pool, "projection")).events == len(everything)


async def test_an_at_least_once_consumer_killed_after_its_handler_gets_the_batch_again_with_the_same_ids(
        database: Any, store: PostgresEventStore, app_pool: asyncpg.Pool, tmp_path: Path) -> None:
    await fill(store)
    everything = [p.position for p in await store.read_all(limit=1000)]
    out = tmp_path / "delivered"
    assert consumer(database, "webhook", "least", 20, out) == -9  # after its second batch, before the position
    assert consumer(database, "webhook", "least", 0, out) == 0
    delivered = Counter(int(line) for line in out.read_text().split())
    assert sorted(delivered) == sorted(everything)  # none lost
    assert sorted(p for p, n in delivered.items() if n > 1) == everything[10:20]  # only that batch, again


async def test_a_consumer_is_woken_by_the_append_not_by_its_poll(store: PostgresEventStore,
                                                                 app_pool: asyncpg.Pool) -> None:
    seen: list[Positioned] = []
    got = asyncio.Event()

    async def handle(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        seen.extend(events)
        got.set()

    stop = asyncio.Event()
    running = asyncio.create_task(Subscription(app_pool, "woken", handle, poll_seconds=3600).run(stop))
    try:
        await asyncio.sleep(0.5)  # it caught up (nothing) and waits: its poll is an hour away
        cid = new_id()
        await store.append(records(cid, "one"))
        await asyncio.wait_for(got.wait(), timeout=30)
        assert [(p.record.complaint_id, p.record.sequence) for p in seen] == [(cid, 1)]
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)


async def test_a_consumer_never_skips_an_append_whose_transaction_is_still_open(
        store: PostgresEventStore, app_pool: asyncpg.Pool) -> None:
    seen: list[tuple[str, int]] = []

    async def handle(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        seen.extend((p.record.complaint_id, p.record.sequence) for p in events)

    subscription = Subscription(app_pool, "ordered", handle)
    held, later = new_id(), new_id()
    async with app_pool.acquire() as conn:
        async with conn.transaction():
            await store.append_on(conn, records(held, "h1"))
            await store.append(records(later, "l1"))
            assert await subscription.catch_up() == 0  # the later append waits behind the open one
        assert await subscription.catch_up() == 2
    assert seen == [(held, 1), (later, 1)]


async def test_two_instances_of_one_consumer_apply_a_batch_once(
        store: PostgresEventStore, admin: asyncpg.Connection, app_pool: asyncpg.Pool) -> None:
    await admin.execute("CREATE TABLE applied (position bigint NOT NULL, complaint_id text NOT NULL,"
                        " sequence integer NOT NULL); GRANT SELECT, INSERT ON applied TO complaints_app")
    await fill(store, complaints=2)
    inside = asyncio.Event()
    release = asyncio.Event()

    async def slow(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        assert conn is not None
        await conn.executemany("INSERT INTO applied (position, complaint_id, sequence) VALUES ($1, $2, $3)",
                               [(p.position, p.record.complaint_id, p.record.sequence) for p in events])
        inside.set()
        await release.wait()

    async def quick(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        assert conn is not None
        await conn.executemany("INSERT INTO applied (position, complaint_id, sequence) VALUES ($1, $2, $3)",
                               [(p.position, p.record.complaint_id, p.record.sequence) for p in events])

    first = asyncio.create_task(Subscription(app_pool, "twice", slow, transactional=True).once())
    await inside.wait()
    # The second instance reads from the same position: it waits on the first's hold of the position...
    second = asyncio.create_task(Subscription(app_pool, "twice", quick, transactional=True).once())
    await asyncio.sleep(0.5)
    assert not second.done()
    release.set()
    assert await first == 10
    with pytest.raises(ConsumerMovedOn):
        await second  # ...and is refused once it commits, before its handler wrote anything
    assert await admin.fetchval("SELECT count(*) FROM applied") == 10  # one instance's writes, once
    assert (await position(app_pool, "twice")).events == 10


async def test_two_instances_catching_up_together_share_the_work_and_apply_each_event_once(
        store: PostgresEventStore, admin: asyncpg.Connection, app_pool: asyncpg.Pool) -> None:
    await admin.execute(PROJECTED)
    await fill(store)  # 35 events

    async def project(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        assert conn is not None
        await conn.executemany("INSERT INTO projected (position, complaint_id, sequence) VALUES ($1, $2, $3)",
                               [(p.position, p.record.complaint_id, p.record.sequence) for p in events])
        await asyncio.sleep(0.01)  # long enough for the other to read the same batch

    one, two = (Subscription(app_pool, "shared", project, transactional=True, batch=5) for _ in range(2))
    handled = await asyncio.gather(one.catch_up(), two.catch_up())
    assert sum(handled) == 35
    assert await admin.fetchval("SELECT count(*) FROM projected") == 35  # the primary key: none twice
    assert (await position(app_pool, "shared")).events == 35


async def test_the_application_role_moves_a_position_only_forward_and_only_through_the_function(
        store: PostgresEventStore, app_pool: asyncpg.Pool) -> None:
    await fill(store, complaints=1)
    events = await store.read_all(limit=10)

    async def nothing(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        pass

    assert await Subscription(app_pool, "forward", nothing).once() == 5
    at = (await position(app_pool, "forward")).cursor
    async with app_pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError, match="forward only"):
            await advance(conn, "forward", at, events[0].cursor, 1)
        with pytest.raises(ConsumerMovedOn):  # not where it stands: refused
            await advance(conn, "forward", events[0].cursor, events[1].cursor, 1)
        for statement in ("UPDATE complaint_consumers SET position = 0",
                          "DELETE FROM complaint_consumers",
                          "INSERT INTO complaint_consumers (name, tx, position) VALUES ('forged', 1, 1)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    assert (await position(app_pool, "forward")).cursor == at


def test_a_consumer_has_a_name() -> None:
    with pytest.raises(ValueError, match="name"):
        Subscription(None, "", lambda events, conn: asyncio.sleep(0))  # type: ignore[arg-type]
