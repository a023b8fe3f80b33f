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

The witness is read from the runs that wrote the log (see audit.witness), so a run started later under a
closed complaint's id witnesses nothing. Once Temporal's retention has removed a closed complaint's history,
its archived witness (``archive_closed``, run by the sealer before retention) stands in for it, every
event's hash signed. A running complaint is compared at a consistent point: its state queried, then its
history read, then the log; what the log holds beyond the history's last record while an append is under
way is its moving tail, looked at again until the history records it (``settle_seconds``), never a break
by itself. A workflow that cannot be read (its task failing) is reported, and the others verified.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoints as cp
from audit import parts
from audit.archive import ArchivedWitness
from domain.chain import Break, ChainWalker, Recorded, check_chain
from domain.complaint import FoldError, fold
from eventlog import EventLogError, PostgresEventStore
from settings import TASK_QUEUE, complaint_id_of

if TYPE_CHECKING:  # the log alone (--log-only) is verified without importing Temporal's SDK
    from temporalio.client import Client

    from audit.witness import Witness


@dataclass
class ComplaintCheck:
    complaint_id: str
    events: int = 0
    breaks: list[Break] = field(default_factory=list)
    #: The second witness the log was compared with: "history" (Temporal's), "archive" (the archived witness,
    #: the history being gone), or "" (none: log only, or nothing recorded to witness).
    witnessed_by: str = ""

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
    #: Archived witnesses whose signature was not checked (no trusted public key).
    unchecked_archives: int = 0
    seconds: float = 0.0
    #: The newest checkpoint's position and every complaint's head at it, as the log has them (read to check
    #: it): what a run that broke nothing keeps for `verify --since-checkpoint`, without reading them again.
    newest_heads: tuple[int, list[cp.Head]] | None = field(default=None, repr=False)

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
            "unchecked_archives": self.unchecked_archives,
            "witnessed_by": {kind or "none": sum(1 for c in self.by_complaint.values() if c.witnessed_by == kind)
                             for kind in ("history", "archive", "")},
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
    return compare_at(cid, logged, seen)[0]


def compare_at(cid: str, logged: list[Recorded], seen: Witness) -> tuple[list[Break], set[int]]:
    """b at a consistent point: the breaks, and the moving tail (sequences to look at again).

    The log was read after the history, and a running workflow's state was queried before it, so every record
    the history or the state witnessed was in the log by then: one missing or different is a break. A running
    workflow's events in the log beyond the history's last record may be an append whose completion Temporal
    has not recorded yet: returned apart, not as breaks (``Verifier`` looks again). The state is compared with
    the log up to the state's own head (a running workflow's state is a moment behind its log)."""
    found: list[Break] = []
    pending: set[int] = set()
    in_log = {r.sequence: r for r in logged}
    carried = seen.carried
    upto = seen.witnessed_upto
    for sequence in sorted(set(in_log) | set(seen.records)):
        mine, theirs = in_log.get(sequence), seen.records.get(sequence)
        if mine is None:
            found.append(_break(cid, sequence, "missing_in_log", f"the workflow appended "
                                f"{theirs.type if theirs else '?'} #{sequence}; the log has no such event"))
        elif theirs is None:
            if carried is not None and sequence <= carried.sequence:
                if sequence == carried.sequence and mine.hash != carried.hash:
                    found.append(_break(cid, sequence, "rewritten_event",
                                        f"the log's #{sequence} ({mine.type}) is not the head carried into run "
                                        f"{seen.run_ids[0]} ({carried.hash[:12]})"))
                continue  # witnessed by the carried head, through the chain (the runs before are gone)
            if seen.running and sequence > upto:
                pending.add(sequence)
                continue
            found.append(_break(cid, sequence, "unwitnessed_event",
                                f"the log has {mine.type} #{sequence}, which the workflow never appended"))
        elif mine.hash != theirs.hash or mine.body() != theirs.body():
            found.append(_break(cid, sequence, "rewritten_event",
                                f"the log's #{sequence} ({mine.type}) differs from what the workflow appended "
                                f"({theirs.type}, {theirs.hash[:12]})"))
    if carried is not None and carried.sequence not in in_log and carried.sequence not in seen.records:
        found.append(_break(cid, carried.sequence, "missing_in_log",
                            f"the head carried into run {seen.run_ids[0]} is #{carried.sequence}; the log has no "
                            "such event"))
    if seen.state is not None and logged:
        upto_state = seen.state.head.sequence if seen.running else None
        prefix = [r for r in logged if upto_state is None or r.sequence <= upto_state]
        try:
            state = fold(prefix)
        except (FoldError, ValueError) as error:
            return found + [_break(cid, 0, "unfoldable", str(error))], pending
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
    return found, pending


def compare_with_archive(cid: str, logged: list[Recorded], archived: ArchivedWitness) -> list[Break]:
    """The log against the archived witness, hash by hash: a deleted tail, a rewritten event, an event added
    after the complaint's workflow closed. (The row's own consistency is its signature's to prove.)"""
    found: list[Break] = []
    in_log = {r.sequence: r for r in logged}
    last, held = max(in_log, default=0), len(archived.hashes)
    if held > last:
        found.append(_break(cid, last + 1, "deleted_tail",
                            f"the archived witness holds #{last + 1}..#{held} (head {archived.hashes[-1][:12]}); "
                            f"the log ends at #{last}"))
    for sequence in sorted(in_log):
        mine = in_log[sequence]
        if sequence > held:
            found.append(_break(cid, sequence, "unwitnessed_event",
                                f"the log has {mine.type} #{sequence}, after the head the archived witness holds "
                                f"(#{held}): the workflow never appended it"))
        elif mine.hash != archived.hashes[sequence - 1]:
            found.append(_break(cid, sequence, "rewritten_event",
                                f"the log's #{sequence} ({mine.type}) is not the event the archived witness holds "
                                f"({archived.hashes[sequence - 1][:12]})"))
    for sequence in range(1, min(last, held) + 1):
        if sequence not in in_log:
            found.append(_break(cid, sequence, "missing_in_log",
                                f"the archived witness holds #{sequence}; the log has no such event"))
    return found


async def replay(cid: str, seen: Witness, client: Client) -> list[Break]:
    """c: every run's history replays with the workflow code of today."""
    from temporalio.common import HeaderCodecBehavior
    from temporalio.worker import Replayer

    from workflows.complaint import ComplaintWorkflow
    from workflows.forget import ForgetRefusedRun
    from workflows.perimeter import for_replay, sandbox_runner

    replayer = Replayer(workflows=[ComplaintWorkflow, ForgetRefusedRun], data_converter=client.data_converter,
                        interceptors=for_replay(), workflow_runner=sandbox_runner(strict=True),
                        header_codec_behavior=HeaderCodecBehavior.CODEC)
    found = []
    for history in seen.histories:
        try:
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        except Exception as error:  # noqa: BLE001 - a payload that won't open, a history that won't parse: its break
            found.append(_break(cid, 0, "replay_failed", f"run {history.run_id}: {type(error).__name__}: {error}"))
            continue
        if result.replay_failure is not None:
            found.append(_break(cid, 0, "replay_failed", f"run {history.run_id}: {result.replay_failure}"))
    return found


#: How long a running complaint's moving tail is looked at again before its unrecorded events are breaks. An
#: append's completion reaches history milliseconds after its commit; a worker killed in between leaves it to
#: the activity's retry (its start-to-close timeout, 30 s), and then the tail is reported, rightly, as not
#: (yet) witnessed.
SETTLE_SECONDS = 10.0


class Verifier:
    def __init__(self, store: PostgresEventStore, client: Client | None,
                 published: Iterable[cp.Checkpoint] = (), trusted_public_key: str | None = None,
                 task_queue: str = TASK_QUEUE, settle_seconds: float = SETTLE_SECONDS, dsn: str | None = None) -> None:
        """``dsn``: where processes of their own may read parts of the log (audit/parts.py); without it, the
        whole log is read here."""
        self.store = store
        self.dsn = dsn
        self.client = client
        self.task_queue = task_queue
        self.published = list(published)
        self.trusted_public_key = trusted_public_key
        self.settle_seconds = settle_seconds

    async def chains(self, result: Verification, ids: list[str] | None, progress: Progress | None) -> None:
        """a: walk the chains, by global position for the whole log or complaint by complaint."""
        if ids is None:
            for events, breaks in await parts.across_parts("chains", self.store, self.dsn, progress):
                for cid, count in events.items():
                    check = result.complaint(cid)
                    check.events, check.breaks = count, breaks.get(cid, [])
            return
        for cid in ids:
            records = await self.store.read(cid)
            check = result.complaint(cid)
            check.events, (_, check.breaks) = len(records), check_chain(cid, records)
            if progress:
                progress(len(records))

    async def look(self, cid: str) -> tuple[Witness, list[Recorded]]:
        """The witness (from the runs the log names), then the log: all the witness vouches for was in the log
        by the time the log was read."""
        assert self.client is not None
        from audit.witness import witness

        seen = await witness(self.client, cid, await self.store.writer_runs(cid))
        return seen, await self.store.read(cid)

    async def against_history(self, cid: str) -> tuple[Witness, list[Recorded], list[Break]]:
        """b at a consistent point. A running complaint's events beyond what its history recorded are looked at
        again (a new witness, then the log) until the history records them; they are breaks only if it never
        does within ``settle_seconds``, or if a history read after them shows no append under way that could
        still record them."""
        started = time.monotonic()
        seen, logged = await self.look(cid)
        breaks, pending = compare_at(cid, logged, seen)
        pause = 0.05
        while pending and time.monotonic() - started < self.settle_seconds:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)
            seen, logged = await self.look(cid)
            breaks, still = compare_at(cid, logged, seen)
            pending &= still  # newer events at the tail are the tail moving on, not these
            if pending and not seen.appending:
                break  # this history was read after the log that held them: nothing under way will record them
        in_log = {r.sequence: r for r in logged}
        for sequence in sorted(s for s in pending if s in in_log):
            breaks.append(_break(cid, sequence, "unwitnessed_event",
                                 f"the log has {in_log[sequence].type} #{sequence}, which the running workflow's "
                                 f"history has not recorded as appended (looked again for "
                                 f"{time.monotonic() - started:.1f} s"
                                 f"{'; an append is still under way' if seen.appending else ''})"))
        return seen, logged, breaks

    def against_archive(self, result: Verification, cid: str, logged: list[Recorded],
                        archived: ArchivedWitness) -> list[Break]:
        """The log against the complaint's archived witness, whose signature holds with the trusted key."""
        found = []
        status = archived.signature_status(self.trusted_public_key)
        if status is cp.Signature.bad:
            found.append(_break(cid, 0, "archive_signature", "the archived witness's signature does not hold "
                                                              "with the trusted key over what it says"))
        elif status is cp.Signature.unchecked:
            result.unchecked_archives += 1
        if not logged:
            found.append(_break(cid, 0, "missing_in_log", "the archived witness holds the complaint; the log has no "
                                                           "event of it"))
        return found + compare_with_archive(cid, logged, archived)

    async def archived(self, ids: list[str] | None) -> tuple[dict[str, ArchivedWitness], list[Break]]:
        """The archived witnesses (of ``ids``, or all), and a break for each row that is not one."""
        found, malformed = {}, []
        for row in await self.store.archived_witnesses(ids):
            try:
                found[row["complaint_id"]] = ArchivedWitness.from_row(row)
            except (ValueError, TypeError) as error:
                malformed.append(_break(row["complaint_id"], 0, "archive_malformed",
                                        f"the stored row is not an archived witness: {str(error)[:200]}"))
        return found, malformed

    async def witness_one(self, result: Verification, check: ComplaintCheck,
                          archived: ArchivedWitness | None) -> list[Break]:
        """b and c for one complaint, against its history, or its archived witness once the history is gone."""
        assert self.client is not None
        cid = check.complaint_id
        seen, logged, compared = await self.against_history(cid)
        found = self.against_archive(result, cid, logged, archived) if archived is not None else []
        if not seen.exists:
            if archived is not None:
                check.witnessed_by = "archive"
            elif logged:
                found.append(_break(cid, 0, "missing_in_temporal",
                                    "the log has events but Temporal has no workflow for them, and there is no "
                                    "archived witness (`archive_closed` records one for each closed complaint "
                                    "before retention removes its history)"))
            return found
        if seen.unavailable:
            found.append(_break(cid, 0, "witness_failed", seen.unavailable))
        if not logged and not seen.records:
            return found  # refused at intake (invalid input): nothing was ever recorded, rightly
        check.witnessed_by = "history"
        if not logged and archived is None:
            found.append(_break(cid, 0, "missing_in_log", "Temporal has the complaint; the log has no event of it"))
        return found + compared + await replay(cid, seen, self.client)

    async def witnesses(self, result: Verification, ids: list[str], progress: Progress | None,
                        archives: dict[str, ArchivedWitness] | None = None) -> None:
        """b and c for each complaint, and d over both sets. A complaint whose witness cannot be read (Temporal
        refusing it, a payload that does not open) is that complaint's break; the others are still verified."""
        assert self.client is not None
        for cid in ids:
            check = result.complaint(cid)
            try:
                check.breaks += await self.witness_one(result, check, (archives or {}).get(cid))
            except EventLogError:
                raise  # the auditor's own database: without it nothing is verified
            except Exception as error:  # noqa: BLE001 - any other failure is this complaint's break, not the run's
                check.breaks.append(_break(cid, 0, "witness_failed",
                                           f"its witness could not be read: {type(error).__name__}: {error}"))
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
        found, result.newest_heads = await cp.check_all(self.store.pool, list(known.values()),
                                                        self.trusted_public_key)
        result.checkpoint_breaks += found
        result.unchecked_signatures += sum(1 for c in known.values()
                                           if c.signature_status(self.trusted_public_key) is cp.Signature.unchecked)
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
        archives, malformed = await self.archived(ids)
        for broken in malformed:
            result.complaint(broken.complaint_id).breaks.append(broken)
        if self.client is not None:
            targets = ids if ids is not None else sorted(set(result.by_complaint) | set(await self.temporal_ids())
                                                         | set(archives))
            if on_total:
                on_total("complaints", len(targets))
            await self.witnesses(result, targets, progress_complaints, archives)
        else:  # log only: the archived witnesses need no Temporal
            for cid, archived in archives.items():
                check = result.complaint(cid)
                check.breaks += self.against_archive(result, cid, await self.store.read(cid), archived)
                check.witnessed_by = "archive"
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


@dataclass
class Archiving:
    """What ``archive_closed`` did, complaint by complaint."""

    archived: list[str] = field(default_factory=list)
    #: Archived before (their rows are kept as they are).
    already: list[str] = field(default_factory=list)
    #: Still running: archived once closed.
    running: list[str] = field(default_factory=list)
    #: No history left to witness them (too late: verify reports them missing in Temporal).
    gone: list[str] = field(default_factory=list)
    #: Closed, but they do not verify against their history: not archived, for an archive would bless the break.
    refused: dict[str, list[Break]] = field(default_factory=dict)


async def archive_closed(store: PostgresEventStore, client: Client, key: Ed25519PrivateKey, origin: str | None = None,
                         *, ids: Sequence[str] | None = None, task_queue: str = TASK_QUEUE) -> Archiving:
    """Record the archived witness of each closed complaint not archived yet (``ids``, or every complaint in
    the log), so that verify still has a second witness once Temporal's retention has removed its history.

    Run under the sealer's role (``store`` on DATABASE_SEALER_URL, which may only call
    record_complaint_witness) with the seal key, more often than the namespace's retention period. Only a
    complaint that verifies whole against its history (chain, every record, the final state, replay) is
    archived: what is signed is what the history witnessed, never a log already changed."""
    name = cp.log_origin(origin)
    verifier = Verifier(store, client, task_queue=task_queue)
    done = {row["complaint_id"] for row in await store.archived_witnesses(ids)}
    out = Archiving()
    for cid in (list(ids) if ids is not None else await store.complaint_ids()):
        if cid in done:
            out.already.append(cid)
            continue
        seen, logged, breaks = await verifier.against_history(cid)
        if not seen.exists:
            out.gone.append(cid)
            continue
        if seen.running:
            out.running.append(cid)
            continue
        walker = ChainWalker(cid)
        for record in logged:
            walker.step(record)
        breaks = list(walker.breaks) + breaks + await replay(cid, seen, client)
        if not logged:
            breaks.append(_break(cid, 0, "missing_in_log", "Temporal has the complaint; the log has no event of it"))
        if seen.closed_as == "continued_as_new":
            breaks.append(_break(cid, 0, "missing_in_temporal", "the run it continued into is gone"))
        if breaks:
            out.refused[cid] = breaks
            continue
        signed = ArchivedWitness.sign(seen, logged, key, name, datetime.now(UTC).replace(microsecond=0))
        if await store.archive_witness(signed.row()):
            out.archived.append(cid)
            continue
        # Archived meanwhile (another archiver), or a row planted for it: ours only if this key signed the same.
        [row] = await store.archived_witnesses([cid])
        stored = ArchivedWitness.from_row(row)
        ours = cp.TrustedKey(key.public_key().public_bytes_raw(), name)
        if stored.signature_status(ours) is cp.Signature.verified and stored.hashes == signed.hashes:
            out.already.append(cid)
        else:
            out.refused[cid] = [_break(cid, 0, "archive_signature", "a different archived witness is already stored "
                                                                     "for it, not signed by this key for this log")]
    return out
