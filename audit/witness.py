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

And after retention: the archived witness (``audit.archive.ArchivedWitness``), a signed note of what the
history witnessed (every event's hash), recorded for each closed complaint before Temporal's retention removes
its history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHistory, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from activities import messages as msg
from domain.chain import ChainHead, Recorded
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


def history_sha256(histories: Sequence[WorkflowHistory]) -> str:
    """SHA-256 over the runs' histories as Temporal returned them (protobuf, deterministic serialisation)."""
    digest = hashlib.sha256()
    for history in histories:
        digest.update(History(events=list(history.events)).SerializeToString(deterministic=True))
    return digest.hexdigest()
