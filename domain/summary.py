"""What an operator reads in the Temporal UI and in `complaints status`: a one-line summary, and details
that say where the complaint stands, what is awaited from whom, and the next deadline. No personal data:
the UI shows these as they are."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from domain.complaint import Complaint
from domain.events import When
from domain.intake import ComplaintIntake
from domain.personal import shown
from domain.vocabulary import Stage


def static_summary(intake: ComplaintIntake) -> str:
    """What an operator scans a list of workflows for, e.g. ``Late delivery · order 8812 · email · high · ID ·
    C-1042`` (ID: the jurisdiction, whose rules and clock apply). No personal data."""
    parts = [intake.subject.title]
    if intake.subject.reference:
        parts.append(f"{intake.subject.kind.value} {intake.subject.reference}")
    parts += [intake.channel.value, intake.severity.value, intake.jurisdiction.value, intake.complaint_id]
    return " · ".join(parts)


def when(moment: datetime) -> str:
    """An instant as the jurisdiction's clock shows it, with its offset: ``2026-12-02 23:59 +07:00``."""
    offset = moment.strftime("%z") or "+0000"
    return f"{moment:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def awaiting(state: Complaint) -> str:
    """Who must act next, and on what (times on the jurisdiction's clock)."""
    return AWAITING[state.stage](state, lambda moment: _local(moment, state))


def _assessment(s: Complaint, at: When) -> str:
    ask = f"; asked the customer to move to {s.requested_rung.value}" if s.requested_rung else ""
    return f"an agent: assess the complaint (valid, invalid or partially valid){ask}"


def _remedy_choice(s: Complaint, at: When) -> str:
    assert s.offer is not None
    ids = ", ".join(o.id for o in s.offer.options)
    return f"the customer: choose a remedy ({ids}) by {at(s.offer.expires_at)}; option {s.offer.default_option} " \
           "applies otherwise"


def _fulfilment(s: Complaint, at: When) -> str:
    if s.remedy_reference:
        return "the system: scheduling the follow-up"
    return f"the system: fulfilling remedy {s.remedy_option}"


def _option_choice(s: Complaint, at: When) -> str:
    if s.choice is not None:
        return "the system: scheduling the follow-up"
    assert s.choice_offer is not None
    return (f"the customer: stay under the rules or leave without penalty, by {at(s.choice_offer.expires_at)} "
            f"({s.choice_offer.default_option.value} otherwise)")


def _follow_up(s: Complaint, at: When) -> str:
    assert s.follow_up is not None
    return f"the customer: rate their satisfaction (1-5) from {at(s.follow_up.at)}, by {at(s.follow_up.answer_by)}"


#: For every stage, who must act and on what (tests/unit/test_completeness.py names a stage left out).
AWAITING: dict[Stage, Callable[[Complaint, When], str]] = {
    Stage.received: lambda s, at: "the system: recording the complaint",
    Stage.awaiting_assessment: _assessment,
    Stage.awaiting_remedy_choice: _remedy_choice,
    Stage.fulfilling_remedy: _fulfilment,
    Stage.awaiting_option_choice: _option_choice,
    Stage.awaiting_follow_up: _follow_up,
    Stage.escalated: lambda s, at: "a supervisor: decide and close the complaint",
    Stage.closed: lambda s, at: "nobody: the complaint is closed",
}


def _local(moment: datetime, state: Complaint) -> str:
    return when(moment.astimezone(state.local_zone))


def details(state: Complaint) -> str:
    """Markdown for the UI's current details."""
    lines = [
        f"**Stage:** {state.stage.value.replace('_', ' ')}",
        f"**Awaiting:** {awaiting(state)}",
    ]
    upcoming = state.next_deadline
    if upcoming is not None and state.is_open:
        lines.append(f"**Next deadline:** {upcoming.kind.value.replace('_', ' ')} by {_local(upcoming.due_at, state)} "
                     f"({upcoming.rule})")
    breached = [d.kind.value for d in state.deadlines if d.breached]
    if breached:
        lines.append(f"**SLA breached:** {', '.join(breached)}")
    if state.verdict:
        cause = state.root_cause.value if state.root_cause else "?"
        lines.append(f"**Verdict:** {state.verdict.value}, root cause {cause}")
    if state.escalations:
        last = state.escalations[-1]
        lines.append(f"**Escalated to:** {shown(last.to)} ({shown(last.reason)})")
    if state.outcome:
        lines.append(f"**Outcome:** {state.outcome.value}")
    lines.append(f"**Contact:** {state.rung.value}; {state.messages} message(s) logged")
    if state.agent_tasks:  # no channel reaches the customer: an agent delivers these and logs it
        owed = ", ".join(key.rsplit("-", 1)[0].replace("_", " ") for key in state.agent_tasks)
        lines.append(f"**Awaiting an agent:** deliver by {state.rung.value} and log it: {owed}")
    if state.language is not None:
        lines.append(f"**Messages:** in {state.language}; {len(state.thread)} sent, {len(state.outbox)} owed")
    lines.append(f"**Chain head:** #{state.head.sequence} `{state.head.hash[:16]}`")
    return "\n\n".join(lines)
