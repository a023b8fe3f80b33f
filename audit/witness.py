"""The second witness: what Temporal's history says was appended, and the state the workflow reports.

Every ``append_events`` result in a complaint's history (an activity's, or a local activity's marker)
holds the records exactly as the log stored them, hashes included. So the history can name the very
sequence where the log was edited, deleted or forged, not only that its head moved.

Which runs: the log records the run that appended each event, so the witness reads those runs, with the runs
continue-as-new links them to (back to the first, forward to the newest). Another run started later under
the same workflow id (refused as ``ComplaintExists``, say) wrote nothing, and witnesses nothing. Where the
runs before a continued run are gone (retention), the head carried into it still witnesses the events up
to that head.

For a running workflow, its state is queried before its history is read for the last time, and the caller
reads the log after both: whatever the history or the state witnessed was in the log by then.

And after retention: the archived witness (``ArchivedWitness``), a signed note of what the history witnessed
(every event's hash), recorded for each closed complaint before Temporal's retention removes its history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHistory, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from activities import messages as msg
from audit import checkpoints as cp
from domain.chain import ChainHead, Recorded, canonical_time
from domain.complaint import Complaint
from settings import workflow_id
from starter import READ_TIMEOUT, read_safely
from workflows.start import ComplaintStart

#: sdk-core's name for the marker that records a local activity's result (its "data" is JSON, with the
#: activity type; its "result", the payload the activity returned).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


#: How long the witness waits for a running workflow to answer the state query (a workflow whose task keeps
#: failing is not answered at all; the default would hold verify for a minute per such complaint).
QUERY_TIMEOUT = timedelta(seconds=10)
_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}
_ACTIVITY_ENDED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_TASK_OPEN = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED}
_TASK_SHUT = {EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
              EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT}


@dataclass
class Witness:
    complaint_id: str
    histories: list[WorkflowHistory] = field(default_factory=list)
    records: dict[int, Recorded] = field(default_factory=dict)
    state: Complaint | None = None
    running: bool = False
    #: The runs read, first to last.
    run_ids: list[str] = field(default_factory=list)
    #: How the last run ended ("" while it runs): completed, failed, terminated, ...
    closed_as: str = ""
    #: The head carried into the earliest run read, when the runs before it are gone (retention): it witnesses
    #: every event up to it, through the chain.
    carried: ChainHead | None = None
    #: An append may be under way: an append activity scheduled and not ended, or a workflow task (which may
    #: run a local activity's append) not finished. Only then can the log hold an event the history has not
    #: recorded yet.
    appending: bool = False
    #: Why the running workflow's state could not be read (a task failing, a query timing out).
    unavailable: str | None = None

    @property
    def exists(self) -> bool:
        return bool(self.histories)

    @property
    def witnessed_upto(self) -> int:
        """The last sequence this witness vouches for (records, else the carried head)."""
        return max(max(self.records, default=0), self.carried.sequence if self.carried else 0)


async def _history(client: Client, wid: str, run_id: str | None) -> WorkflowHistory | None:
    """One run's history (the newest run's for None); None when Temporal has no such run: never had, or
    no longer has (retention)."""
    try:
        return await read_safely(lambda: client.get_workflow_handle(wid, run_id=run_id).fetch_history(
            rpc_timeout=READ_TIMEOUT))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def _continued_from(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id


def _continued_as(history: WorkflowHistory) -> str:
    last = history.events[-1]
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return ""


def task_failing(history: WorkflowHistory) -> str | None:
    """Why the run's workflow task keeps failing (its last workflow task failed, none completed since), with
    Temporal's cause and the failure's first line; None when it does not. Its retries are not written to
    history: one failure stands for them all."""
    failed: HistoryEvent | None = None
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failed = event
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            failed = None
    if failed is None:
        return None
    attributes = failed.workflow_task_failed_event_attributes
    cause = WorkflowTaskFailedCause.Name(attributes.cause).removeprefix("WORKFLOW_TASK_FAILED_CAUSE_").lower()
    message = (attributes.failure.message.splitlines() or [""])[0][:200]
    return (f"its workflow task keeps failing (Temporal answers queries with \"Workflow Task in failed state\"): "
            f"{cause}: {message}")


def closed_as(history: WorkflowHistory) -> str:
    """How the run ended, "" while it runs."""
    return _CLOSED.get(history.events[-1].event_type, "")


async def _runs(client: Client, wid: str, writers: Sequence[str]) -> tuple[list[tuple[str, WorkflowHistory]], set[str]]:
    """The complaint's runs, first to last, and the linked runs Temporal no longer has. From the runs that wrote
    the log, every run continue-as-new links them to, back and forward; without any (the log holds nothing of
    the complaint), the newest run and the runs it continued from."""
    found: dict[str, WorkflowHistory] = {}
    gone: set[str] = set()
    waiting: list[str | None] = list(writers) if writers else [None]
    while waiting:
        run_id = waiting.pop()
        if run_id is not None and (run_id in found or run_id in gone):
            continue
        history = await _history(client, wid, run_id)
        if history is None:
            if run_id is not None:
                gone.add(run_id)
            continue
        found[run_id or history.run_id] = history
        waiting += [linked for linked in (_continued_from(history), _continued_as(history)) if linked]
    ordered = sorted(found.items(), key=lambda run: (run[1].events[0].event_time.ToDatetime(), run[0]))
    return ordered, gone


def _append_result(event: HistoryEvent, scheduled: dict[int, str]) -> Sequence[Payload] | None:
    """The result payloads of a completed append: an activity's, or a local activity's marker."""
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        done = event.activity_task_completed_event_attributes
        return done.result.payloads if scheduled.get(done.scheduled_event_id) == msg.APPEND_EVENTS else None
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != LOCAL_ACTIVITY_MARKER or "result" not in marker.details:
            return None  # another marker, or a failed attempt (it carries a failure, no result)
        data = json.loads(marker.details["data"].payloads[0].data)
        return marker.details["result"].payloads if data.get("activity_type") == msg.APPEND_EVENTS else None
    return None


async def witness(client: Client, complaint_id: str, writers: Sequence[str] = ()) -> Witness:
    """Read the complaint's histories (the runs that wrote the log, ``writers``, and the runs continue-as-new
    links them to), the appended records and the reported state. A running workflow's state is queried first,
    then its history read again, so every record the state folded is among the records read."""
    found = Witness(complaint_id)
    wid = workflow_id(complaint_id)
    runs, gone = await _runs(client, wid, writers)
    if not runs:
        return found
    converter = client.data_converter
    queried: Complaint | None = None
    if not closed_as(runs[-1][1]):
        last_id = runs[-1][0]
        try:
            # temporalio's converter takes any type hint (a union too), its signature only a `type`.
            queried = await client.get_workflow_handle(wid, run_id=last_id).query(
                "state", result_type=Complaint | None, rpc_timeout=QUERY_TIMEOUT)  # type: ignore[arg-type]
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as error:
            # A failing task answers no query (Temporal refuses it, or it times out): say why it fails.
            why = task_failing(runs[-1][1])
            found.unavailable = (f"{why} (the query: {error})" if why
                                 else f"the running workflow's state could not be read: {error}")
        refreshed = await _history(client, wid, last_id)
        if refreshed is not None:
            runs[-1] = (last_id, refreshed)
        following = _continued_as(runs[-1][1])  # it may have continued as new meanwhile
        while following and (more := await _history(client, wid, following)) is not None:
            runs.append((following, more))
            following = _continued_as(more)
    found.histories = [history for _, history in runs]
    found.run_ids = [run_id for run_id, _ in runs]
    earliest = _continued_from(runs[0][1])
    if earliest and earliest in gone:
        started = runs[0][1].events[0].workflow_execution_started_event_attributes
        try:
            [start] = await converter.decode(started.input.payloads, [ComplaintStart])
            resume = start.as_run().options.resume
            found.carried = resume.head if resume is not None else None
        except ValueError:
            found.carried = None  # unreadable: the events before this run are then unwitnessed
    for history in found.histories:
        scheduled: dict[int, str] = {}
        open_appends: set[int] = set()
        task_open = False
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
                if scheduled[event.event_id] == msg.APPEND_EVENTS:
                    open_appends.add(event.event_id)
            elif kind in _ACTIVITY_ENDED:
                open_appends.discard(getattr(event, _ACTIVITY_ENDED[kind]).scheduled_event_id)
            if kind in _TASK_OPEN:
                task_open = True
            elif kind in _TASK_SHUT:
                task_open = False
            result = _append_result(event, scheduled)
            if result is not None:
                [appended] = await converter.decode(result, [msg.Appended])
                for record in appended.records:
                    found.records[record.sequence] = record
        found.appending = bool(open_appends) or task_open
    last = found.histories[-1]
    found.closed_as = closed_as(last)
    if found.closed_as == "completed":
        [found.state] = await converter.decode(
            last.events[-1].workflow_execution_completed_event_attributes.result.payloads, [Complaint])
    elif not found.closed_as:
        found.running = True
        found.state = queried
    found.appending = found.running and found.appending
    return found


# --- the witness that outlives retention ---------------------------------------------------------------------

#: The second line of an archived witness's signed note: it can never read as a checkpoint (whose second line
#: is a number).
ARCHIVE_NOTE = "complaint witness archive"


def history_sha256(histories: Sequence[WorkflowHistory]) -> str:
    """SHA-256 over the runs' histories as Temporal returned them (protobuf, deterministic serialisation)."""
    digest = hashlib.sha256()
    for history in histories:
        digest.update(History(events=list(history.events)).SerializeToString(deterministic=True))
    return digest.hexdigest()


def _digest(hashes: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


class ArchivedWitness(BaseModel):
    """What a closed complaint's history witnessed, kept once Temporal's retention has removed the history:
    every event's hash (the last is the head), the runs, a fingerprint of their histories, signed with the
    seal key as a signed note whose origin names the deployment::

        complaints.example.com/log
        complaint witness archive
        complaint "T-42"
        workflow "complaint-T-42"
        runs 0193a1... 0193b7...
        head 13 9f2c...
        hashes 51d0...                      <- SHA-256 of the hashes, one a line
        history 7e4a...                     <- history_sha256 of the runs
        closed completed
        archived 2026-12-02T01:50:00.000000Z

        — complaints.example.com/log AbCd...

    Recorded by ``archive_closed`` (audit/verify.py) through the sealer's role, only for a complaint that
    verified whole against its history; checked by verify against the key the auditor trusts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint_id: str
    workflow_id: str
    run_ids: list[str]
    final_sequence: int
    final_hash: str
    hashes: list[str]
    closed_as: str
    history_sha256: str
    archived_at: datetime
    public_key: str
    note: str
    #: The database user who stored it (set by the database, not signed).
    recorded_by: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ArchivedWitness:
        data = dict(row)
        data["final_hash"] = str(data["final_hash"]).strip()
        data["history_sha256"] = str(data["history_sha256"]).strip()
        return cls.model_validate(data)

    def row(self) -> dict[str, Any]:
        return self.model_dump(exclude={"recorded_by"})

    def text(self, origin: str) -> str:
        """The note's text as this row says it (under ``origin``)."""
        return (f"{origin}\n{ARCHIVE_NOTE}\ncomplaint {json.dumps(self.complaint_id)}\n"
                f"workflow {json.dumps(self.workflow_id)}\nruns {' '.join(self.run_ids)}\n"
                f"head {len(self.hashes)} {self.hashes[-1] if self.hashes else ''}\nhashes {_digest(self.hashes)}\n"
                f"history {self.history_sha256}\nclosed {self.closed_as}\n"
                f"archived {canonical_time(self.archived_at)}\n")

    @classmethod
    def sign(cls, seen: Witness, logged: Sequence[Recorded], key: Ed25519PrivateKey, origin: str,
             archived_at: datetime) -> ArchivedWitness:
        """Sign what ``seen`` witnessed of ``logged`` (the log, verified whole against it by the caller)."""
        origin = cp.log_origin(origin)
        hashes = [r.hash for r in logged]
        unsigned = cls(complaint_id=seen.complaint_id, workflow_id=workflow_id(seen.complaint_id),
                       run_ids=list(seen.run_ids), final_sequence=len(hashes), final_hash=hashes[-1], hashes=hashes,
                       closed_as=seen.closed_as, history_sha256=history_sha256(seen.histories),
                       archived_at=archived_at, public_key=cp.public_key_of(key), note="")
        return unsigned.model_copy(update={"note": cp.sign_note(unsigned.text(origin), origin, key)})

    def signature_status(self, trusted: cp.TrustedKey | str | None) -> cp.Signature:
        """Verified only by a key the auditor trusts, over exactly what the row says; unchecked without one."""
        if trusted is None:
            return cp.Signature.unchecked
        key = cp.TrustedKey.parse(trusted) if isinstance(trusted, str) else trusted
        if self.final_sequence != len(self.hashes) or not self.hashes or self.final_hash != self.hashes[-1]:
            return cp.Signature.bad
        try:
            note = cp.Note.parse(self.note)
            origin = note.lines[0]
            if note.text != self.text(origin) or (key.name is not None and key.name != origin):
                return cp.Signature.bad
            verifier = Ed25519PublicKey.from_public_bytes(key.public_key)
            for name, kid, signature in note.signatures:
                if key.name in (None, name) and kid == cp.key_id(name, key.public_key):
                    verifier.verify(signature, note.text.encode())
                    return cp.Signature.verified if self.public_key == key.raw else cp.Signature.bad
        except (InvalidSignature, ValueError, IndexError):
            return cp.Signature.bad
        return cp.Signature.bad
