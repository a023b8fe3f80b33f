"""The event store contract against a real PostgreSQL, as the application role."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.chain import CANONICAL_AT, ChainHead, Chains, canonical_time, chain
from eventlog import EventStore, PostgresEventStore
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
    parts = [row async for page in store.part(0, 1, await store.end()) for row in page if row[0] == cid]
    assert [row[CANONICAL_AT] for row in rows + parts] == [canonical_time(at)] * 4
    chains = Chains()
    chains.feed(rows)
    assert chains.head(cid) == stored[-1].head and chains.breaks(cid) == [] and chains.events[cid] == 2
