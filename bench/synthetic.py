"""Synthetic logs for the benchmarks: a real complaint's events, as the workflow appended them (batch by
batch), cloned under new complaint ids and chained afresh, so that every clone verifies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from domain.chain import ChainHead, Draft, Recorded, chain
from eventlog.connect import connect
from eventlog.store import _COLUMNS, to_record

Batches = list[list[Recorded]]
ROW_COLUMNS = ["complaint_id", "sequence", "type", "schema_version", "occurred_at", "actor", "payload",
               "prev_hash", "hash", "workflow_id", "run_id"]


def insert_into(table: str) -> str:
    """One :func:`row` inserted into ``table`` (complaint_events, or a benchmark's raw table of the same columns)."""
    return f"INSERT INTO {table} ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join(f'${i}' for i in range(1, 12))})"


async def template(admin_url: str, complaint_id: str) -> Batches:
    """One complaint's records, grouped by the transaction (one append each) that wrote them."""
    conn = await connect(admin_url)
    try:
        rows = await conn.fetch(f"SELECT xmin::text AS tx, {_COLUMNS} FROM complaint_events"
                                " WHERE complaint_id = $1 ORDER BY sequence", complaint_id)
    finally:
        await conn.close()
    batches: Batches = []
    last = None
    for row in rows:
        if row["tx"] != last:
            batches.append([])
            last = row["tx"]
        batches[-1].append(to_record(row))
    return batches


def clone(batches: Batches, complaint_id: str, shift: timedelta = timedelta(0)) -> Batches:
    head, cloned = ChainHead(), []
    for batch in batches:
        drafts = [Draft.model_construct(type=r.type, schema_version=r.schema_version, actor=r.actor,
                                        payload=r.payload) for r in batch]
        records = chain(head, complaint_id, batch[0].occurred_at + shift, drafts)
        cloned.append(records)
        head = records[-1].head
    return cloned


def clones(batches: Batches, events: int, prefix: str = "S") -> Iterator[Batches]:
    """Clones until ``events`` events, each a minute after the one before (the last one cut short)."""
    per = sum(len(b) for b in batches)
    made = 0
    n = 0
    while made < events:
        one = clone(batches, f"{prefix}{n:07d}", timedelta(minutes=n))
        if made + per > events:
            flat = [r for b in one for r in b][: events - made]
            one = [flat]
        made += sum(len(b) for b in one)
        n += 1
        yield one


def row(record: Recorded) -> tuple[object, ...]:
    return (record.complaint_id, record.sequence, record.type, record.schema_version, record.occurred_at,
            record.actor, record.payload, record.prev_hash, record.hash, f"complaint-{record.complaint_id}",
            "bench")
