"""``complaints verify``: prove each complaint's history from the log, against Temporal as a second witness.

For each complaint:
  a. the chain: gapless from 1, every hash recomputed from the stored row, every prev_hash linked;
  b. the log against the workflow: every record the workflow saw appended (its history) is in the log,
     unchanged, and the log holds nothing the workflow never appended; fold(log) equals the state the
     workflow reports, field for field, head included;
  c. the workflow's history replays deterministically with today's code;
  d. complaints in Temporal but not in the log, or in the log but not in Temporal.
Then every checkpoint (stored, or published and given to us) must still hold against the log.
Each break names the complaint, the sequence and the kind of break.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client
from temporalio.common import HeaderCodecBehavior
from temporalio.worker import Replayer

from audit import checkpoints as cp
from audit.witness import Witness, witness
from domain.chain import Break, ChainWalker, Recorded
from domain.complaint import FoldError, fold
from eventlog import PostgresEventStore
from settings import TASK_QUEUE, complaint_id_of


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
    checkpoint_breaks: list[Break] = field(default_factory=list)
    checkpoints: int = 0
    #: Checkpoints whose signature was not checked: no trusted public key was given. Nothing broke, and
    #: nothing about who signed them is proven either.
    unchecked_signatures: int = 0
    seconds: float = 0.0

    def complaint(self, complaint_id: str) -> ComplaintCheck:
        return self.by_complaint.setdefault(complaint_id, ComplaintCheck(complaint_id))

    @property
    def breaks(self) -> list[Break]:
        return [b for c in self.by_complaint.values() for b in c.breaks] + self.checkpoint_breaks

    @property
    def events(self) -> int:
        return sum(c.events for c in self.by_complaint.values())

    @property
    def ok(self) -> bool:
        return not self.breaks

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "complaints": len(self.by_complaint),
            "events": self.events,
            "checkpoints": self.checkpoints,
            "unchecked_signatures": self.unchecked_signatures,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds else None,
            "breaks": [b.model_dump() for b in self.breaks],
        }


Progress = Callable[[int], None]


def _break(cid: str, sequence: int, kind: str, detail: str) -> Break:
    return Break(complaint_id=cid, sequence=sequence, kind=kind, detail=detail)


def differences(logged: dict[str, Any], reported: dict[str, Any]) -> list[str]:
    """Top-level fields whose values differ between two dumps of a Complaint."""
    return sorted(k for k in set(logged) | set(reported) if logged.get(k) != reported.get(k))


def compare_with_witness(cid: str, logged: list[Recorded], seen: Witness) -> list[Break]:
    """b: record by record, then fold(log) against the reported state."""
    found: list[Break] = []
    in_log = {r.sequence: r for r in logged}
    for sequence in sorted(set(in_log) | set(seen.records)):
        mine, theirs = in_log.get(sequence), seen.records.get(sequence)
        if mine is None:
            found.append(_break(cid, sequence, "missing_in_log",
                                f"the workflow appended {theirs.type if theirs else '?'} #{sequence}; the log has no such event"))
        elif theirs is None:
            found.append(_break(cid, sequence, "unwitnessed_event",
                                f"the log has {mine.type} #{sequence}, which the workflow never appended"))
        elif mine.hash != theirs.hash or mine.body() != theirs.body():
            found.append(_break(cid, sequence, "rewritten_event",
                                f"the log's #{sequence} ({mine.type}) differs from what the workflow appended "
                                f"({theirs.type}, {theirs.hash[:12]})"))
    if seen.state is not None and logged:
        try:
            state = fold(logged)
        except (FoldError, ValueError) as error:
            return found + [_break(cid, 0, "unfoldable", str(error))]
        assert state is not None
        if state.head != seen.state.head:
            found.append(_break(cid, state.head.sequence, "head_mismatch",
                                f"log head #{state.head.sequence} {state.head.hash[:12]}, workflow head "
                                f"#{seen.state.head.sequence} {seen.state.head.hash[:12]}"))
        fields = [f for f in differences(state.model_dump(mode="json"), seen.state.model_dump(mode="json"))
                  if f != "head"]
        if fields:
            found.append(_break(cid, state.head.sequence, "state_mismatch",
                                "fold(log) differs from the workflow's state in: " + ", ".join(fields)))
    return found


async def replay(cid: str, seen: Witness, client: Client) -> list[Break]:
    """c: every run's history replays with the workflow code of today."""
    from workflows.complaint import ComplaintWorkflow
    from workflows.forget import ForgetRefusedRun
    from workflows.perimeter import for_replay, sandbox_runner

    replayer = Replayer(workflows=[ComplaintWorkflow, ForgetRefusedRun], data_converter=client.data_converter,
                        interceptors=for_replay(), workflow_runner=sandbox_runner(),
                        header_codec_behavior=HeaderCodecBehavior.CODEC)
    found = []
    for history in seen.histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            found.append(_break(cid, 0, "replay_failed", f"run {history.run_id}: {result.replay_failure}"))
    return found


class Verifier:
    def __init__(self, store: PostgresEventStore, client: Client | None,
                 published: Iterable[cp.Checkpoint] = (), trusted_public_key: str | None = None,
                 task_queue: str = TASK_QUEUE) -> None:
        self.store = store
        self.client = client
        self.task_queue = task_queue
        self.published = list(published)
        self.trusted_public_key = trusted_public_key

    async def chains(self, result: Verification, ids: list[str] | None, progress: Progress | None) -> None:
        """a: walk the chains, by global position for the whole log or complaint by complaint."""
        walkers: dict[str, ChainWalker] = {}
        if ids is None:
            unreported = 0
            async for item in self.store.scan():
                record = item.record
                walker = walkers.get(record.complaint_id)
                if walker is None:
                    walker = walkers[record.complaint_id] = ChainWalker(record.complaint_id)
                walker.step(record)
                unreported += 1
                if progress and unreported == 5000:  # a progress bar per event cost a third of the time
                    progress(unreported)
                    unreported = 0
            if progress and unreported:
                progress(unreported)
        else:
            for cid in ids:
                walker = walkers[cid] = ChainWalker(cid)
                for record in await self.store.read(cid):
                    walker.step(record)
                if progress:
                    progress(walker.events)
        for cid, walker in walkers.items():
            check = result.complaint(cid)
            check.events, check.breaks = walker.events, list(walker.breaks)

    async def witnesses(self, result: Verification, ids: list[str], progress: Progress | None) -> None:
        """b and c for each complaint, and d over both sets."""
        assert self.client is not None
        for cid in ids:
            check = result.complaint(cid)
            seen = await witness(self.client, cid)
            logged = await self.store.read(cid)
            if not seen.exists:
                if logged:
                    check.breaks.append(_break(cid, 0, "missing_in_temporal",
                                               "the log has events but Temporal has no workflow for them"))
            elif not logged and not seen.records:
                pass  # refused at intake (invalid input): nothing was ever recorded, rightly
            else:
                if not logged:
                    check.breaks.append(_break(cid, 0, "missing_in_log",
                                               "Temporal has the complaint; the log has no event of it"))
                check.breaks += compare_with_witness(cid, logged, seen)
                check.breaks += await replay(cid, seen, self.client)
            if progress:
                progress(1)

    async def temporal_ids(self) -> list[str]:
        assert self.client is not None
        ids = set()
        query = f'WorkflowType = "ComplaintWorkflow" AND TaskQueue = "{self.task_queue}"'
        async for execution in self.client.list_workflows(query):
            cid = complaint_id_of(execution.id)
            if cid:
                ids.add(cid)
        return sorted(ids)

    async def checkpoints(self, result: Verification) -> None:
        stored, malformed = await cp.stored_checkpoints(self.store.pool)
        result.checkpoint_breaks += malformed
        known = {c.position: c for c in stored}
        for published in self.published:
            mine = known.get(published.position)
            if mine is None or mine != published:
                result.checkpoint_breaks.append(_break(
                    f"checkpoint @{published.position}", 0, "checkpoint_withdrawn",
                    "a published checkpoint is missing from, or differs in, the checkpoints table"))
            known[published.position] = published
        for checkpoint in known.values():
            result.checkpoint_breaks += await cp.check(self.store.pool, checkpoint, self.trusted_public_key)
            if checkpoint.signature_status(self.trusted_public_key) is cp.Signature.unchecked:
                result.unchecked_signatures += 1
        result.checkpoints = len(known) + len(malformed)

    async def verify(self, ids: list[str] | None = None, *, progress_events: Progress | None = None,
                     progress_complaints: Progress | None = None,
                     on_total: Callable[[str, int], None] | None = None) -> Verification:
        """``ids`` None: every complaint in the log or in Temporal, and every checkpoint."""
        started = time.perf_counter()
        result = Verification()
        if on_total and ids is None:
            on_total("events", await self.store.count())
        await self.chains(result, ids, progress_events)
        if ids is None:
            await self.checkpoints(result)
        if self.client is not None:
            targets = ids if ids is not None else sorted(set(result.by_complaint) | set(await self.temporal_ids()))
            if on_total:
                on_total("complaints", len(targets))
            await self.witnesses(result, targets, progress_complaints)
        result.seconds = time.perf_counter() - started
        return result


async def verify_complaints(client: Client, dsn: str, complaint_ids: Iterable[str]) -> Verification:
    """Verify some complaints against their workflows (the demo's final check)."""
    from eventlog.connect import create_pool

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        return await Verifier(PostgresEventStore(pool), client).verify(list(complaint_ids))
    finally:
        await pool.close()
