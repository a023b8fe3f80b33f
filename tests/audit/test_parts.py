"""The whole log read on every core (audit/parts.py), against a real PostgreSQL: the complaints split into parts
read by processes of their own give exactly what one reader gives, tampers included, and every complaint is
in exactly one part."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from audit import parts
from audit.verify import Verification, Verifier
from eventlog import PostgresEventStore
from tests.audit.test_verify import as_superuser
from tests.eventlog.contract import new_id, records


def verdict(result: Verification) -> dict[str, tuple[int, list[tuple[int, str]]]]:
    return {cid: (check.events, [(b.sequence, b.kind) for b in check.breaks])
            for cid, check in result.by_complaint.items()}


async def test_parts_read_by_processes_of_their_own_find_what_one_reader_finds(
        database: Any, store: PostgresEventStore, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [new_id() for _ in range(16)]
    for cid in ids:
        await store.append(records(cid, "one", "two", "three"))
    edited, cut = ids[3], ids[10]
    await as_superuser(
        admin,
        ("UPDATE complaint_events SET payload = '{\"label\": \"forged\"}' WHERE complaint_id = $1 AND sequence = 2",
         edited),
        ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = 2", cut))

    monkeypatch.setenv(parts.PROCESSES_ENV, "1")
    one = await Verifier(store, None, dsn=database.app_url).verify(None)
    monkeypatch.setenv(parts.PROCESSES_ENV, "3")
    seen: list[int] = []
    three = await Verifier(store, None, dsn=database.app_url).verify(None, progress_events=seen.append)

    assert verdict(three) == verdict(one)
    assert not three.ok and three.events == 16 * 3 - 1 == sum(seen)
    assert verdict(three)[edited] == (3, [(2, "hash_mismatch")])
    assert verdict(three)[cut] == (2, [(3, "gap"), (3, "broken_link")])
    assert all(verdict(three)[cid] == (3, []) for cid in ids if cid not in (edited, cut))

    # Each complaint was read by exactly one part, and more than one part had complaints to read.
    results = await parts.across_parts("chains", store, database.app_url, None)
    assert len(results) == 3
    by_part = [set(events) for events, _ in results]
    assert sum(len(p) for p in by_part) == len(set().union(*by_part)) == 16
    assert sum(1 for p in by_part if p) >= 2


async def test_an_empty_log_has_nothing_in_any_part(database: Any, store: PostgresEventStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parts.PROCESSES_ENV, "2")
    result = await Verifier(store, None, dsn=database.app_url).verify(None)
    assert result.ok and result.events == 0 and not result.by_complaint


def test_the_number_of_processes_is_a_whole_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parts.PROCESSES_ENV, "two")
    with pytest.raises(SystemExit, match=parts.PROCESSES_ENV):
        parts.processes()
    monkeypatch.setenv(parts.PROCESSES_ENV, "0")
    assert parts.processes() == 1
