"""What every EventStore must do. Subclass with ``create_store`` (PostgreSQL today; any other store later
passes the same class)."""

from __future__ import annotations

import abc
import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from domain.chain import ChainHead, Draft, Recorded, chain
from eventlog import BrokenChain, DivergentHistory, EventStore

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def drafts(*labels: str) -> list[Draft]:
    return [Draft(type="MessageLogged", schema_version=1, actor="agent:test",
                  payload={"sender": "agent", "channel": "email", "text": label, "at": "2026-11-24T09:00:00Z"})
            for label in labels]


def records(complaint_id: str, *labels: str, head: ChainHead | None = None) -> list[Recorded]:
    return chain(head or ChainHead(), complaint_id, NOW, drafts(*labels))


def new_id() -> str:
    return f"S-{uuid.uuid4().hex[:10]}"


class EventStoreContract(abc.ABC):
    @abc.abstractmethod
    async def create_store(self) -> EventStore: ...

    async def test_an_empty_append_writes_nothing(self) -> None:
        store = await self.create_store()
        assert await store.append([]) == 0

    async def test_appended_events_read_back_in_order_with_their_hashes(self) -> None:
        store = await self.create_store()
        cid = new_id()
        first = records(cid, "one", "two")
        second = records(cid, "three", head=first[-1].head)
        assert await store.append(first) == 2
        assert await store.append(second) == 1
        # Check the records come back as written, in sequence order.
        stored = await store.read(cid)
        assert [r.sequence for r in stored] == [1, 2, 3]
        assert [r.payload["text"] for r in stored] == ["one", "two", "three"]
        assert [r.hash for r in stored] == [r.hash for r in first + second]
        assert all(r.computed_hash() == r.hash for r in stored)
        assert await store.head(cid) == second[-1].head

    async def test_a_retried_append_writes_nothing_twice(self) -> None:
        store = await self.create_store()
        cid = new_id()
        batch = records(cid, "one", "two")
        assert await store.append(batch) == 2
        assert await store.append(batch) == 0
        assert len(await store.read(cid)) == 2

    async def test_a_different_event_at_a_stored_sequence_is_divergent_history(self) -> None:
        store = await self.create_store()
        cid = new_id()
        await store.append(records(cid, "what happened"))
        with pytest.raises(DivergentHistory):
            await store.append(records(cid, "another story"))
        assert [r.payload["text"] for r in await store.read(cid)] == ["what happened"]

    async def test_a_batch_is_atomic(self) -> None:
        store = await self.create_store()
        cid = new_id()
        stored = records(cid, "one", "two")
        await store.append(stored)
        # Check a batch whose #2 diverges and whose #3 is new keeps nothing of itself, not even #3.
        diverging = records(cid, "deux", "trois", head=stored[0].head)
        with pytest.raises(DivergentHistory):
            await store.append(diverging)
        assert [r.payload["text"] for r in await store.read(cid)] == ["one", "two"]

    async def test_a_gap_is_refused(self) -> None:
        store = await self.create_store()
        cid = new_id()
        first = records(cid, "one", "two")
        with pytest.raises(BrokenChain):
            await store.append(first[1:])
        assert await store.read(cid) == []

    async def test_a_batch_that_does_not_follow_the_stored_head_is_refused(self) -> None:
        store = await self.create_store()
        cid = new_id()
        await store.append(records(cid, "one"))
        forged_head = ChainHead(sequence=1, hash="f" * 64)
        with pytest.raises(BrokenChain):
            await store.append(records(cid, "two", head=forged_head))

    async def test_a_record_whose_hash_does_not_match_its_content_is_refused(self) -> None:
        store = await self.create_store()
        cid = new_id()
        [record] = records(cid, "one")
        tampered = record.model_copy(update={"payload": {**record.payload, "text": "edited"}})
        with pytest.raises(BrokenChain):
            await store.append([tampered])

    async def test_reads_by_complaint_honour_after_upto_and_limit(self) -> None:
        store = await self.create_store()
        cid = new_id()
        await store.append(records(cid, "a", "b", "c", "d"))
        assert [r.sequence for r in await store.read(cid, after=1)] == [2, 3, 4]
        assert [r.sequence for r in await store.read(cid, upto=2)] == [1, 2]
        assert [r.sequence for r in await store.read(cid, after=1, limit=2)] == [2, 3]

    async def test_the_global_order_pages_through_every_complaint(self) -> None:
        store = await self.create_store()
        start = await store.end()
        a, b = new_id(), new_id()
        ra = records(a, "a1", "a2")
        await store.append(ra)
        await store.append(records(b, "b1"))
        await store.append(records(a, "a3", head=ra[-1].head))
        page = await store.read_all(start, limit=2)
        rest = await store.read_all(page[-1].cursor, limit=10)
        seen = [(p.record.complaint_id, p.record.sequence) for p in page + rest]
        assert seen == [(a, 1), (a, 2), (b, 1), (a, 3)]
        assert [p.cursor for p in page + rest] == sorted(p.cursor for p in page + rest)
        assert await store.end() == rest[-1].cursor
        assert await store.max_position() == rest[-1].position

    async def test_concurrent_appends_are_read_in_one_global_order(self) -> None:
        store = await self.create_store()
        start = await store.end()
        ids = [new_id() for _ in range(20)]
        await asyncio.gather(*(store.append(records(cid, "x", "y")) for cid in ids))
        seen = [p async for p in store.scan(start, page=7)]
        assert len(seen) == 40
        assert [p.cursor for p in seen] == sorted(p.cursor for p in seen)
        assert {p.record.complaint_id for p in seen} == set(ids)
