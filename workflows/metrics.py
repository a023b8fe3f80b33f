"""The complaint workflow's own metrics, served for Prometheus with the SDK's (a worker with
COMPLAINTS_METRICS_LISTEN, see worker.py). Emitted through ``workflow.metric_meter()``, which the SDK silences
while a history replays: each is counted once, when it happened, and recording one changes no command."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow

from domain.chain import Recorded
from domain.complaint import Complaint

#: Events the workflow recorded in the log, by type.
EVENTS_RECORDED = "complaints_events_recorded"
#: Complaints entering a stage, by stage and channel (how many are in each stage now: `complaints list --status STAGE`).
STAGE_ENTERED = "complaints_stage_entered"
#: Deadlines warned of and breached, by jurisdiction and deadline.
SLA_WARNINGS = "complaints_sla_warnings"
SLA_BREACHES = "complaints_sla_breaches"

_SLA = {"SlaWarningRaised": (SLA_WARNINGS, "deadlines warned of"), "SlaBreached": (SLA_BREACHES, "deadlines breached")}


def recorded(records: Sequence[Recorded], before: Complaint | None, after: Complaint) -> None:
    """Count what one append recorded."""
    meter = workflow.metric_meter()
    events = meter.create_counter(EVENTS_RECORDED, "events recorded in the log, by type")
    for record in records:
        events.add(1, {"type": record.type})
        if record.type in _SLA:
            name, description = _SLA[record.type]
            meter.create_counter(name, description).add(
                1, {"jurisdiction": after.jurisdiction.value, "deadline": str(record.payload.get("kind"))})
    if before is None or before.stage is not after.stage:
        meter.create_counter(STAGE_ENTERED, "complaints entering a stage").add(
            1, {"stage": after.stage.value, "channel": after.channel.value})
