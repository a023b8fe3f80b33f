"""Global order without a global lock, against a real PostgreSQL: an append's transaction held open does not
stop other appends; a reader in global order neither skips nor reorders it (it waits below the horizon, the
oldest transaction still running); a checkpoint sealed meanwhile seals only what is committed for good and
still verifies after the held append commits; checkpoints sealed before horizons verify as they did."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import asyncpg

from audit import checkpoints as cp
from eventlog import PostgresEventStore
from tests.eventlog.contract import new_id, records

ORIGIN = "complaints.test/log"


async def test_a_reader_neither_skips_nor_reorders_an_append_whose_transaction_is_held_open(
        store: PostgresEventStore, app_pool: asyncpg.Pool, sealer_pool: asyncpg.Pool) -> None:
    key = cp.signing_key(cp.new_seal_key())
    start = await store.end()
    before = await cp.seal(sealer_pool, key, ORIGIN)
    held, later = new_id(), new_id()
    seen = []
    async with app_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # Its positions are taken now; it commits last.
            await store.append_on(conn, records(held, "h1", "h2"))
            # No global lock: another complaint's append commits meanwhile (it would wait for ever behind one).
            await asyncio.wait_for(store.append(records(later, "l1", "l2")), timeout=10)
            # A reader by position alone would now read l1, l2 and move past h1, h2 for good. Below the
            # horizon, nothing of either is readable yet: the held transaction is older than the later one.
            seen += await store.read_all(start)
            assert [p.record.complaint_id for p in seen] == []
            # A checkpoint sealed meanwhile seals neither: what it seals can never change.
            during = await cp.seal(sealer_pool, key, ORIGIN)
            assert during.events == before.events and during.position == before.position
            await transaction.commit()
        except BaseException:
            await transaction.rollback()
            raise
    seen += await store.read_all(seen[-1].cursor if seen else start)
    order = [(p.record.complaint_id, p.record.sequence) for p in seen]
    assert order == [(held, 1), (held, 2), (later, 1), (later, 2)]  # commit order, each once
    assert [p.cursor for p in seen] == sorted(p.cursor for p in seen)
    assert await cp.check(sealer_pool, during, cp.public_key_of(key)) == []
    after = await cp.seal(sealer_pool, key, ORIGIN)
    assert after.events == before.events + 4
    assert await cp.check(sealer_pool, after, cp.public_key_of(key)) == []


async def test_concurrent_appends_to_different_complaints_do_not_wait_for_each_other(
        store: PostgresEventStore, app_pool: asyncpg.Pool) -> None:
    """Four appends each held open at once (the test's pool holds five): under a global lock the second would
    wait for the first."""
    ids = [new_id() for _ in range(4)]
    connections = [await app_pool.acquire() for _ in ids]
    try:
        transactions = [c.transaction() for c in connections]
        for t in transactions:
            await t.start()
        await asyncio.wait_for(asyncio.gather(*(store.append_on(c, records(cid, "x"))
                                                for c, cid in zip(connections, ids, strict=True))), timeout=10)
        for t in transactions:
            await t.commit()
    finally:
        for c in connections:
            await app_pool.release(c)
    assert [len(await store.read(cid)) for cid in ids] == [1] * len(ids)


async def test_a_checkpoint_sealed_before_horizons_verifies_as_it_was_signed(
        store: PostgresEventStore, admin: asyncpg.Connection, sealer_pool: asyncpg.Pool) -> None:
    key = cp.signing_key(cp.new_seal_key())
    for cid in (new_id(), new_id()):
        await store.append(records(cid, "a", "b"))
    position = int(await admin.fetchval("SELECT max(position) FROM complaint_events"))
    heads, events = await cp.heads_at(admin, ("position <= $1", [position]))
    root = cp.root_of(heads)
    sealed_at = datetime.now(UTC).replace(microsecond=0)
    note = cp.sign_note(cp._note_text(ORIGIN, len(heads), root, position, events, sealed_at), ORIGIN, key)

    legacy = cp.Checkpoint(position=position, events=events, complaints=len(heads), root=root, sealed_at=sealed_at,
                           public_key=cp.public_key_of(key),
                           signature=base64.b64encode(cp.Note.parse(note).signatures[0][2]).decode(), note=note)
    assert "horizon" not in legacy.model_dump(mode="json")  # serialised as checkpoints were then
    # Later appends (with larger positions, and transactions) do not touch what it sealed.
    await store.append(records(new_id(), "c"))
    assert await cp.check(sealer_pool, legacy, cp.public_key_of(key)) == []
