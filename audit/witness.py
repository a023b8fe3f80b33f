"""The second witness: what Temporal's history says was appended, and the state the workflow reports.

Every ``append_events`` result in a complaint's history (an activity's, or a local activity's marker)
holds the records exactly as the log stored them, hashes included. So the history can name the very
sequence where the log was edited, deleted or forged, not only that its head moved. Runs chained by
continue-as-new are walked back to the first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from activities import messages as msg
from domain.chain import Recorded
from domain.complaint import Complaint
from settings import workflow_id

#: sdk-core's name for the marker that records a local activity's result (its "data" is JSON, with the
#: activity type; its "result", the payload the activity returned).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class Witness:
    complaint_id: str
    histories: list[WorkflowHistory] = field(default_factory=list)
    records: dict[int, Recorded] = field(default_factory=dict)
    state: Complaint | None = None
    running: bool = False

    @property
    def exists(self) -> bool:
        return bool(self.histories)


async def _runs(client: Client, wid: str) -> list[WorkflowHistory]:
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return list(reversed(histories))
        run_id = started.continued_execution_run_id


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


async def witness(client: Client, complaint_id: str) -> Witness:
    """Read the complaint's histories (every run), the appended records and the reported state."""
    found = Witness(complaint_id)
    try:
        found.histories = await _runs(client, workflow_id(complaint_id))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return found
        raise
    converter = client.data_converter
    for history in found.histories:
        scheduled: dict[int, str] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
            result = _append_result(event, scheduled)
            if result is not None:
                [appended] = await converter.decode(result, [msg.Appended])
                for record in appended.records:
                    found.records[record.sequence] = record
    last = found.histories[-1].events[-1]
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        [found.state] = await converter.decode(
            last.workflow_execution_completed_event_attributes.result.payloads, [Complaint])
    elif last.event_type in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
                             EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                             EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
                             EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED):
        found.state = None
    else:
        found.running = True
        found.state = await client.get_workflow_handle(workflow_id(complaint_id)).query(
            "state", result_type=Complaint | None)  # type: ignore[arg-type]
    return found
