"""The event store contract against a real PostgreSQL, as the application role."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.chain import CANONICAL_AT, ChainHead, Chains, canonical_time, chain
from eventlog import EventStore, PostgresEventStore
from eventlog.store import Part
from tests.eventlog.contract import EventStoreContract, drafts, new_id


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, store: PostgresEventStore) -> None:
        self._the_store = store

    async def create_store(self) -> EventStore:
        return self._the_store


@pytest.mark.parametrize("at", [
    datetime(2026, 11, 24, 9, 0, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2027, 3, 28, 2, 30, 0, 10, tzinfo=ZoneInfo("Europe/Berlin")),  # not UTC: spelled in UTC
    datetime(1999, 1, 1, 0, 0, 0, 500000, tzinfo=ZoneInfo("Asia/Jakarta")),
])
async def test_the_bulk_readers_spell_each_time_as_the_hash_covers_it(store: PostgresEventStore,
                                                                      at: datetime) -> None:
    """verify and the report read rows with occurred_at spelled by PostgreSQL (the chain check then formats no
    instant): that spelling must be canonical_time's, byte for byte, or every row would leave the quick path."""
    cid = new_id()
    stored = chain(ChainHead(), cid, at, drafts("one", "two"))
    start = await store.end()
    await store.append(stored)
    rows = [row async for page in store.pages(start) for row in page if row[0] == cid]
    parts = [row async for page in store.part(Part(), await store.end()) for row in page if row[0] == cid]
    assert [row[CANONICAL_AT] for row in rows + parts] == [canonical_time(at)] * 4
    chains = Chains()
    chains.feed(rows)
    assert chains.head(cid) == stored[-1].head and chains.breaks(cid) == [] and chains.events[cid] == 2


async def test_a_batch_is_found_by_where_its_append_began_with_its_run_and_update(store: PostgresEventStore) -> None:
    """What an append retried after a lost workflow task is answered with (activities/eventlog.py): the whole
    batch one append stored from a sequence on, with the run and the update that decided it; nothing from the
    middle of an append, nor past the head."""
    cid = new_id()
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    first = chain(ChainHead(), cid, at, drafts("ComplaintReceived", "ConversationOpened", "SlaDeadlinesSet"))
    second = chain(first[-1].head, cid, at, drafts("MessageLogged", "MessageLogged"))
    await store.append(first, workflow_id="complaint-x", run_id="run-1")
    await store.append(second, workflow_id="complaint-x", run_id="run-2", update_id="x/4")
    found = await store.stored_from(cid, 1)
    assert found is not None and (found.records, found.run_id, found.update_id) == (first, "run-1", None)
    found = await store.stored_from(cid, 4)
    assert found is not None and (found.records, found.run_id, found.update_id) == (second, "run-2", "x/4")
    assert await store.stored_from(cid, 2) is None  # inside the first append
    assert await store.stored_from(cid, 6) is None  # past the head


async def test_the_parts_of_the_log_hold_each_complaint_whole_and_once(store: PostgresEventStore) -> None:
    """verify --all and report read the log in parts side by side (audit/parts.py): ranges of complaint ids,
    so that every row is read once, and a complaint's rows all by the same reader, in sequence order."""
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    mine = {new_id(): n for n in range(1, 8)}
    for cid, n in mine.items():
        await store.append(chain(ChainHead(), cid, at, drafts(*(str(i) for i in range(n)))), run_id="r")
    upto = await store.end()
    for parts in (1, 2, 3):
        split = await store.split(parts)
        assert 1 <= len(split) <= parts
        read: dict[str, list[int]] = {}
        reader: dict[str, int] = {}
        for index, part in enumerate(split):
            async for page in store.part(part, upto):
                for row in (row for row in page if row[0] in mine):
                    assert reader.setdefault(row[0], index) == index, "a complaint read by two parts"
                    read.setdefault(row[0], []).append(row[1])
        assert read == {cid: list(range(1, n + 1)) for cid, n in mine.items()}
