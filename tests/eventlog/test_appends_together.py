"""Appends that wait together go in one call (migrations/015_appends_together.sql, PostgresEventStore.append):
each caller still gets its own batch's answer, a refused batch never holds back the others, and the database
function refuses what the application role could send it wrongly, with nothing written."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from dev.stack import Postgres
from domain.chain import ChainHead, Recorded, check_chain
from eventlog import BrokenChain, DivergentHistory, PostgresEventStore
from eventlog.connect import connect
from eventlog.store import _event_columns
from tests.eventlog.contract import new_id, records


class CountingStore(PostgresEventStore):
    """The store as it is, counting the calls that took appends together and how many each took."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.together: list[int] = []

    async def append_together_on(self, conn: asyncpg.Connection,  # type: ignore[override]
                                 batches: Sequence[tuple[Sequence[Recorded], str, str, str | None]]) -> list[int]:
        self.together.append(len(batches))
        return await PostgresEventStore.append_together_on(conn, batches)


@pytest.fixture
def counting(app_pool: asyncpg.Pool) -> CountingStore:
    return CountingStore(app_pool)


async def stored(admin: asyncpg.Connection, complaint_id: str) -> list[tuple[int, str, str, str | None]]:
    rows = await admin.fetch("SELECT sequence, hash, run_id, update_id FROM complaint_events WHERE complaint_id = $1"
                             " ORDER BY sequence", complaint_id)
    return [(r["sequence"], r["hash"], r["run_id"], r["update_id"]) for r in rows]


async def test_appends_waiting_together_are_stored_in_one_call_each_with_its_own_answer(
        counting: CountingStore, admin: asyncpg.Connection) -> None:
    batches = [records(new_id(), "one", "two", "three")[: 1 + n % 3] for n in range(12)]
    answers = await asyncio.gather(*(counting.append(b, workflow_id=f"complaint-{b[0].complaint_id}",
                                                     run_id=f"run-{n}", update_id=f"u-{n}" if n % 2 else None)
                                     for n, b in enumerate(batches)))
    assert answers == [len(b) for b in batches]
    assert counting.together == [12]  # all arrived while the first was on its way: one call
    for n, batch in enumerate(batches):
        assert await stored(admin, batch[0].complaint_id) == [
            (r.sequence, r.hash, f"run-{n}", f"u-{n}" if n % 2 else None) for r in batch]
    again = await asyncio.gather(*(counting.append(b) for b in batches))
    assert again == [0] * len(batches)  # retried together: nothing written twice


async def test_one_complaints_batches_in_one_call_are_appended_in_their_order(
        counting: CountingStore, admin: asyncpg.Connection) -> None:
    cid, other = new_id(), new_id()
    first = records(cid, "one", "two")
    second = records(cid, "three", head=first[-1].head)
    third = records(cid, "four", "five", head=second[-1].head)
    answers = await asyncio.gather(counting.append(first), counting.append(records(other, "one")),
                                   counting.append(second), counting.append(third))
    assert answers == [2, 1, 1, 2]
    assert counting.together == [4]
    head, breaks = check_chain(cid, await counting.read(cid))
    assert (head.sequence, breaks) == (5, [])


async def test_a_refused_batch_is_refused_alone_and_the_others_of_its_call_are_stored(
        counting: CountingStore, admin: asyncpg.Connection) -> None:
    diverged, unlinked = new_id(), new_id()
    await counting.append(records(diverged, "one", "two"))
    fine = [records(new_id(), "one", "two") for _ in range(5)]
    divergent = records(diverged, "uno", "dos")  # another #1 and #2 than the stored ones
    broken = records(unlinked, "three", head=ChainHead(sequence=2, hash="ab" * 32))  # follows nothing stored
    answers = await asyncio.gather(*(counting.append(b) for b in [*fine[:2], divergent, broken, *fine[2:]]),
                                   return_exceptions=True)
    assert answers[:2] == [2, 2] and answers[4:] == [2, 2, 2]
    assert isinstance(answers[2], DivergentHistory) and "#1" in str(answers[2])
    assert isinstance(answers[3], BrokenChain)
    assert counting.together == [7]  # the call of seven was refused; each was then appended alone
    for batch in fine:
        assert [s for s, *_ in await stored(admin, batch[0].complaint_id)] == [1, 2]
    assert [h for _, h, _, _ in await stored(admin, diverged)] == [r.hash for r in records(diverged, "one", "two")]
    assert await stored(admin, unlinked) == []


async def test_a_caller_that_gives_up_waiting_does_not_hold_back_the_others(counting: CountingStore,
                                                                             admin: asyncpg.Connection) -> None:
    batches = [records(new_id(), "one") for _ in range(4)]
    tasks = [asyncio.ensure_future(counting.append(b)) for b in batches]
    await asyncio.sleep(0)  # each is waiting now
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [done[0], *done[2:]] == [1, 1, 1]
    assert await stored(admin, batches[1][0].complaint_id) == []  # given up before its call: not appended
    assert await counting.append(records(new_id(), "one")) == 1  # and the store still appends


def call(sizes: object, complaint_ids: object, events: Sequence[Recorded], *, runs: object = None,
         updates: object = None) -> tuple:
    batches = len(complaint_ids) if isinstance(complaint_ids, list) else 0
    return (sizes, complaint_ids, ["w"] * batches, runs if runs is not None else ["r"] * batches,
            updates if updates is not None else [None] * batches, *_event_columns(events))


A, B = records("S-forge-a", "one", "two"), records("S-forge-b", "one")
MANY = [records(f"S-forge-{n:04d}", "one")[0] for n in range(1001)]
FORGERIES = [
    ("more batches than a call takes (1001)", call([1] * 1001, [r.complaint_id for r in MANY], MANY),
     "1 to 1000 batches"),
    ("an oversized update id on one batch, beside a good one",
     call([2, 1], ["S-forge-a", "S-forge-b"], [*A, *B], updates=[None, "x" * 1001]), "update id"),
    ("an empty update id on one batch", call([2, 1], ["S-forge-a", "S-forge-b"], [*A, *B], updates=["", None]),
     "update id"),
    ("sizes that count fewer events than sent (the last event slipped in unchecked)",
     call([2], ["S-forge-a"], [*A, *B]), "p_sizes"),
    ("sizes that count more events than sent", call([2, 2], ["S-forge-a", "S-forge-b"], [*A, *B]), "p_sizes"),
    ("an empty batch", call([2, 0, 1], ["S-forge-a", "S-forge-c", "S-forge-b"], [*A, *B]), "p_sizes"),
    ("a batch of negative size", call([4, -1], ["S-forge-a", "S-forge-b"], [*A, *B]), "p_sizes"),
    ("a size left out", call([2, None], ["S-forge-a", "S-forge-b"], [*A, *B]), "p_sizes"),
    ("no batches at all", call([], [], []), "1 to 1000 batches"),
    ("more complaints than batches", call([2, 1], ["S-forge-a", "S-forge-b", "S-forge-c"], [*A, *B]),
     "one element per batch"),
    ("a run missing for a batch", call([2, 1], ["S-forge-a", "S-forge-b"], [*A, *B], runs=["r"]),
     "one element per batch"),
    ("an event array shorter than the others", (*call([2, 1], ["S-forge-a", "S-forge-b"], [*A, *B])[:12], ["f" * 64]),
     "one element per event"),
]


@pytest.mark.parametrize("what,arguments,reason", FORGERIES, ids=[f[0] for f in FORGERIES])
async def test_the_database_refuses_a_malformed_call_with_nothing_written(
        database: Postgres, admin: asyncpg.Connection, what: str, arguments: tuple, reason: str) -> None:
    before = await admin.fetchval("SELECT count(*) FROM complaint_events")
    conn = await connect(database.url("complaints_app"))
    try:
        with pytest.raises(asyncpg.InvalidParameterValueError, match=reason):
            await conn.fetchval("SELECT append_complaint_batches($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
                                " $13)", *arguments)
    finally:
        await conn.close()
    assert await admin.fetchval("SELECT count(*) FROM complaint_events") == before


async def test_a_call_with_one_refused_batch_writes_nothing_of_the_others(database: Postgres, app_pool: asyncpg.Pool,
                                                                           admin: asyncpg.Connection) -> None:
    good, bad = new_id(), new_id()
    orphan = records(bad, "two", head=ChainHead(sequence=1, hash="cd" * 32))
    async with app_pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError, match="has no event #1 to follow"):
            await PostgresEventStore.append_together_on(conn, [(records(good, "one", "two"), "w", "r", None),
                                                               (orphan, "w", "r", None)])
    assert await admin.fetchval("SELECT count(*) FROM complaint_events WHERE complaint_id = ANY($1)",
                                [good, bad]) == 0
