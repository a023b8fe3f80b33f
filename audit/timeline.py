"""A complaint's story from the log alone, for a person: when (local time, business days since intake), who,
what happened in plain words, the conversation verbatim, the deadlines and whether each was met, and the
hash of every step with a verified or broken badge.

Personal fields are opened with the customers' keys; where a key was destroyed they read "[erased]", and
the story still renders and still verifies (the hashes cover the sealed text). A sealed field that does not
open (altered, moved, or naming a key that was never issued) reads "[unreadable]" and breaks the story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from domain import events as ev
from domain.chain import Break, Recorded, check_chain
from domain.complaint import Complaint, DeadlineState, FoldError, fold
from domain.intake import Jurisdiction
from domain.personal import Opener, SealedFieldError, open_payload
from domain.policies.deadlines import Calendar, business_days_between
from domain.principals import RecordedActor
from domain.summary import when


@dataclass(frozen=True)
class Entry:
    sequence: int
    type: str
    occurred_at: datetime
    local_time: str
    business_days: int
    actor: str
    text: str
    said: str | None
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class DeadlineRow:
    kind: str
    due: str
    rule: str
    status: str


@dataclass
class Timeline:
    complaint_id: str
    entries: list[Entry] = field(default_factory=list)
    deadlines: list[DeadlineRow] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    state: Complaint | None = None
    subject: str = ""
    calendar: str = ""
    #: What checked the log besides its own chain: None when nothing did (the log alone, no Temporal), else
    #: what `complaints verify` compared it with ("history", "archive", or "" for no second witness), its breaks
    #: then being the story's too, so a timeline and verify never disagree.
    witnessed_by: str | None = None

    @property
    def verified(self) -> bool:
        return not self.breaks and bool(self.entries)


@lru_cache(maxsize=64)
def _calendar(jurisdiction: Jurisdiction, year: int) -> Calendar:
    from activities.calendar import calendar

    return calendar(jurisdiction, year - 1, year + 1)


def deadline_status(d: DeadlineState) -> str:
    if d.breached:
        status = "breached"
    elif d.met_at is None:
        status = "open (warned)" if d.warned else "open"
    else:
        status = "met in time" if d.met_at <= d.due_at else "met late"
    return status + (", extended once" if d.extended else "")


def describe(record: Recorded, payload: dict[str, Any], zone: tzinfo | None = None) -> tuple[str, str | None]:
    """Plain words for one event (its times on the jurisdiction's clock), and what was said verbatim if it
    is a message."""
    try:
        event = ev.parse_event(record.type, record.schema_version, payload)
    except ValueError:
        return f"{record.type} (its payload does not read as one)", None
    # The whole conversation: what the customer (or an agent) said, and every message we sent, verbatim.
    said = (event.text if isinstance(event, ev.MessageLogged)
            else event.body if isinstance(event, ev.MessageSent | ev.MessageHandedToAgent) else None)
    return event.describe(lambda moment: when(moment.astimezone(zone) if zone else moment)), said


def _report_broken(story: Timeline, record: Recorded) -> Callable[[str, SealedFieldError], None]:
    """A personal field that does not open is a break (tampered, a key never issued, a key that cannot be
    unwrapped here), never a lawful ``[erased]``: that reading is kept for keys really destroyed."""

    def broken(field: str, error: SealedFieldError) -> None:
        story.breaks.append(Break(complaint_id=story.complaint_id, sequence=record.sequence, kind=error.kind,
                                  detail=f"{record.type}.{field}: {error}"))

    return broken


def timeline_from_records(complaint_id: str, records: Iterable[Recorded], opener: Opener) -> Timeline:
    records = list(records)
    story = Timeline(complaint_id)
    _, story.breaks = check_chain(complaint_id, records)
    try:
        story.state = fold(records)
    except (FoldError, ValueError) as error:
        story.breaks.append(Break(complaint_id=complaint_id, sequence=0, kind="unfoldable", detail=str(error)))
    start = records[0].occurred_at if records else None
    jurisdiction = story.state.jurisdiction if story.state else None
    if story.state is not None:
        start = story.state.received_at
        story.subject = story.state.subject_title
    calendar = _calendar(jurisdiction, start.year) if jurisdiction and start else None
    story.calendar = calendar.name if calendar else ""
    for record in records:
        payload = open_payload(record.type, record.payload, complaint_id, record.sequence, opener,
                               _report_broken(story, record))
        if record.sequence == 1 and record.type == "ComplaintReceived":
            story.subject = str(payload.get("subject_title") or story.subject)  # the state holds it sealed
        text, said = describe(record, payload, calendar.zone if calendar else None)
        local = record.occurred_at.astimezone(calendar.zone) if calendar else record.occurred_at
        offset = business_days_between(start, record.occurred_at, calendar) if calendar and start else 0
        story.entries.append(Entry(
            sequence=record.sequence, type=record.type, occurred_at=record.occurred_at, local_time=when(local),
            business_days=offset, actor=RecordedActor.parse(record.actor).describe(), text=text, said=said,
            hash=record.hash,
            prev_hash=record.prev_hash,
        ))
    if story.state is not None:
        zone = calendar.zone if calendar else None
        story.deadlines = [DeadlineRow(ev.words(d.kind), when(d.due_at.astimezone(zone) if zone else d.due_at), d.rule,
                                       deadline_status(d)) for d in story.state.deadlines]
    return story


async def build_timeline(store: Any, opener: Opener, complaint_id: str, *, verifier: Any | None = None) -> Timeline:
    """The story from the log; with a ``verifier`` (audit.verify.Verifier, with Temporal), verify's own verdict
    on the complaint too (both witnesses, replay), so the badge says what `complaints verify` says."""
    story = timeline_from_records(complaint_id, await store.read(complaint_id), opener)
    if verifier is not None:
        checked = (await verifier.verify([complaint_id])).complaint(complaint_id)
        story.witnessed_by = checked.witnessed_by
        story.breaks += [b for b in checked.breaks if b not in story.breaks]
    return story


def render_json(story: Timeline) -> dict[str, Any]:
    return {
        "complaint_id": story.complaint_id,
        "verified": story.verified,
        "witnessed_by": story.witnessed_by,
        "breaks": [b.model_dump() for b in story.breaks],
        "subject": story.subject,
        "calendar": story.calendar,
        "stage": story.state.stage.value if story.state else None,
        "outcome": story.state.outcome.value if story.state and story.state.outcome else None,
        "deadlines": [d.__dict__ for d in story.deadlines],
        "entries": [{**e.__dict__, "occurred_at": e.occurred_at.isoformat()} for e in story.entries],
    }


def render_html(story: Timeline) -> str:
    from audit import html

    return html.timeline(story)


def render_text(story: Timeline, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    badge = Text("VERIFIED", style="bold green") if story.verified else Text("BROKEN", style="bold red")
    if story.witnessed_by is None:
        badge += Text(" (the log's chain only: `complaints verify` checks the second witness)")
    elif story.witnessed_by:
        badge += Text(f" (log and {'Temporal history' if story.witnessed_by == 'history' else 'archived witness'})")
    console.print(badge + Text(f" {story.complaint_id} · {story.subject} · {story.calendar}"))
    for b in story.breaks:
        console.print(Text(f"  {b}", style="red"))
    table = Table(show_lines=True)
    for column in ("#", "when", "bd", "who", "what happened", "hash"):
        table.add_column(column, overflow="fold")
    for e in story.entries:
        what = Text(e.text)  # Text, not markup: what customers wrote is shown as they wrote it
        if e.said is not None:
            what.append(f"\n“{e.said}”", style="italic")
        table.add_row(str(e.sequence), e.local_time, f"+{e.business_days}", Text(e.actor), what, e.hash[:12])
    console.print(table)
    if story.deadlines:
        deadlines = Table(title="Deadlines")
        for column in ("deadline", "due", "rule", "status"):
            deadlines.add_column(column)
        for d in story.deadlines:
            deadlines.add_row(d.kind, d.due, d.rule, d.status)
        console.print(deadlines)
