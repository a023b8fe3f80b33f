"""Verification: the log's chain holds, and the log and the workflow (two witnesses) tell the same story."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

import starter
from domain.chain import Break, check_chain
from domain.complaint import Complaint, FoldError, fold
from eventlog import PostgresEventStore
from eventlog.connect import create_pool


@dataclass
class ComplaintCheck:
    complaint_id: str
    events: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass
class Verification:
    by_complaint: dict[str, ComplaintCheck] = field(default_factory=dict)

    @property
    def breaks(self) -> list[Break]:
        return [b for c in self.by_complaint.values() for b in c.breaks]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.by_complaint.values())


def differences(logged: dict[str, Any], reported: dict[str, Any]) -> list[str]:
    """Top-level fields whose values differ between two dumps of a Complaint."""
    return sorted(k for k in set(logged) | set(reported) if logged.get(k) != reported.get(k))


def compare(complaint_id: str, logged: Complaint | None, reported: Complaint | None) -> list[Break]:
    """fold(log) against the workflow's state, field for field, and the heads (sequence, hash)."""
    if reported is None:
        return [Break(complaint_id=complaint_id, sequence=0, kind="missing_in_temporal",
                      detail="the log has events but Temporal has no workflow")]
    if logged is None:
        return [Break(complaint_id=complaint_id, sequence=reported.head.sequence, kind="missing_in_log",
                      detail="Temporal has a workflow but the log has no events")]
    found = []
    if logged.head != reported.head:
        found.append(Break(
            complaint_id=complaint_id, sequence=logged.head.sequence, kind="head_mismatch",
            detail=f"log head #{logged.head.sequence} {logged.head.hash[:12]}, workflow head "
                   f"#{reported.head.sequence} {reported.head.hash[:12]}",
        ))
    fields = [f for f in differences(logged.model_dump(mode="json"), reported.model_dump(mode="json")) if f != "head"]
    if fields:
        found.append(Break(complaint_id=complaint_id, sequence=logged.head.sequence, kind="state_mismatch",
                           detail="fold(log) differs from the workflow's state in: " + ", ".join(fields)))
    return found


def check_records(complaint_id: str, records: Iterable[Any]) -> tuple[Complaint | None, ComplaintCheck]:
    records = list(records)
    check = ComplaintCheck(complaint_id, events=len(records))
    _, check.breaks = check_chain(complaint_id, records)
    state = None
    if not check.breaks:
        try:
            state = fold(records)
        except (FoldError, ValueError) as error:
            check.breaks.append(Break(complaint_id=complaint_id, sequence=0, kind="unfoldable", detail=str(error)))
    return state, check


async def verify_complaints(client: Client, dsn: str, complaint_ids: Iterable[str]) -> Verification:
    result = Verification()
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        for cid in complaint_ids:
            state, check = check_records(cid, await store.read(cid))
            try:
                reported: Complaint | None = await starter.status(client, cid)
            except starter.NotFound:
                reported = None
            if not check.breaks or state is not None:
                check.breaks += compare(cid, state, reported)
            result.by_complaint[cid] = check
    finally:
        await pool.close()
    return result
