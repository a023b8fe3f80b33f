"""A complaint's state: nothing but a fold over its recorded events.

The workflow folds the records the log stored; an auditor folds the same rows read back from PostgreSQL.
Both must reach the same ``Complaint``, field for field. The state holds no personal data (names,
contacts, free text stay in the log, sealed), so it can travel through Temporal queries, search
attributes and continue-as-new without carrying any.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain import events as ev
from domain.chain import GENESIS, ChainHead, Recorded
from domain.events import ChoiceOffer, DeadlineState, Escalation, FoldError, FollowUp, Offer, Outgoing
from domain.intake import Channel, Jurisdiction, Severity, SubjectKind
from domain.values import Money
from domain.vocabulary import (
    ChurnCategory,
    CustomerChoice,
    DeadlineKind,
    Outcome,
    RootCause,
    Rung,
    Stage,
    Verdict,
)

# What events leave in the state is defined beside the events, and re-exported here, where readers look for it.
__all__ = ["ChoiceOffer", "Complaint", "DeadlineState", "Escalation", "FoldError", "FollowUp", "Offer", "Outgoing",
           "evolve", "evolve_row", "fold"]


class Complaint(BaseModel):
    """The folded state of one complaint, including the head of its hash chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint_id: str
    customer_id: str
    channel: Channel
    severity: Severity
    jurisdiction: Jurisdiction
    subject_kind: SubjectKind
    subject_title: str
    subject_reference: str | None
    subject_value: Money | None = None
    received_at: datetime
    stage: Stage = Stage.received
    acknowledged_at: datetime | None = None
    policy: str | None = None
    deadlines: list[DeadlineState] = Field(default_factory=list)
    rung: Rung
    requested_rung: Rung | None = None
    meeting_at: datetime | None = None
    messages: int = 0
    verdict: Verdict | None = None
    root_cause: RootCause | None = None
    assessed_at: datetime | None = None
    assessments: int = 0
    apologised: bool = False
    conduct_apologies: int = 0
    offer: Offer | None = None
    remedy_option: str | None = None
    remedy_defaulted: bool = False
    remedy_reference: str | None = None
    remedy_failed: bool = False
    explained: bool = False
    choice_offer: ChoiceOffer | None = None
    choice: CustomerChoice | None = None
    responded_at: datetime | None = None
    follow_up: FollowUp | None = None
    satisfaction: int | None = None
    reopen_count: int = 0
    #: The reopening whose deadlines are set (0: the intake's); below reopen_count, new ones are due.
    deadlines_round: int = 0
    escalations: list[Escalation] = Field(default_factory=list)
    churn: ChurnCategory | None = None
    outcome: Outcome | None = None
    closed_at: datetime | None = None
    #: The customer's language once the conversation is open (ConversationOpened); None in older runs.
    language: str | None = None
    #: Messages owed and not yet sent or handed over; how many were ever owed (their keys' numbers).
    outbox: list[Outgoing] = Field(default_factory=list)
    messages_owed: int = 0
    #: The Message-IDs sent, in order: the thread a reply refers to.
    thread: list[str] = Field(default_factory=list)
    #: Messages handed to an agent to deliver by hand, oldest first.
    agent_tasks: list[str] = Field(default_factory=list)
    head: ChainHead = ChainHead()

    @property
    def is_open(self) -> bool:
        return self.stage is not Stage.closed

    @property
    def local_zone(self) -> tzinfo:
        """The jurisdiction's clock as its recorded deadlines carry it (UTC before they are set)."""
        return self.deadlines[0].due_at.tzinfo or UTC if self.deadlines else UTC

    @property
    def sla_breached(self) -> bool:
        return any(d.breached for d in self.deadlines)

    def deadline(self, kind: DeadlineKind) -> DeadlineState | None:
        return next((d for d in self.deadlines if d.kind is kind), None)

    @property
    def next_deadline(self) -> DeadlineState | None:
        pending = [d for d in self.deadlines if d.pending and not d.breached]
        return min(pending, key=lambda d: d.due_at, default=None)


def evolve(state: Complaint | None, record: Recorded) -> Complaint:
    """Apply one recorded event (its own ``apply`` says how). Refuses a record for another complaint, out of
    sequence, or off-chain, and a change naming a field the complaint does not have."""
    return evolve_row(state, record.row())


def evolve_row(state: Complaint | None, row: Sequence[Any]) -> Complaint:
    """:func:`evolve` from a stored row's values in ROW_FIELDS order, as the log's bulk readers give them (the
    report folds a million without building a record for each)."""
    event = ev.parse_event(row[2], row[3], row[6])
    head = ChainHead.of(row[1], row[8])
    if state is None:
        return _received(row, event, head)
    _follows(state.complaint_id, state.head.sequence, state.head.hash, row)
    return _changed(state, {**_checked(event, event.apply(state, row[4])), "head": head})


def _received(row: Sequence[Any], event: ev.Event, head: ChainHead) -> Complaint:
    """The state a complaint's first row starts."""
    complaint_id, sequence, occurred_at, prev_hash = row[0], row[1], row[4], row[7]
    if sequence != 1 or not isinstance(event, ev.ComplaintReceived):
        raise FoldError(f"{complaint_id} #{sequence}: a complaint starts with ComplaintReceived #1")
    if prev_hash != GENESIS:
        raise FoldError(f"{complaint_id} #1: the first record must link to the genesis hash")
    return Complaint(complaint_id=complaint_id, head=head, **_checked(event, event.apply(None, occurred_at)))


def _follows(complaint_id: str, head_sequence: int, head_hash: str, row: Sequence[Any]) -> None:
    """A row must be the complaint's next, linked to its head."""
    if row[0] != complaint_id:
        raise FoldError(f"record for {row[0]} applied to {complaint_id}")
    if row[1] != head_sequence + 1:
        raise FoldError(f"{complaint_id}: expected #{head_sequence + 1}, got #{row[1]}")
    if row[7] != head_hash:
        raise FoldError(f"{complaint_id} #{row[1]}: prev_hash does not match the head")


class Folding:
    """Complaints folded in place, for a reader that owns the states it folds (the report, over millions of
    rows): the same checks and the same changes as :func:`evolve_row`, without a copy of the complaint and a new
    head for every row (together a third of a fold step). Each state lives here alone, changed in place (its
    fields replaced, never the lists and models they hold: ``apply`` builds new ones); what leaves is a copy
    with its head (:meth:`state`), and what comes in is copied (:meth:`adopt`)."""

    def __init__(self) -> None:
        self._states: dict[str, Complaint] = {}
        self._heads: dict[str, tuple[int, str]] = {}

    def __contains__(self, complaint_id: object) -> bool:
        return complaint_id in self._states

    def __len__(self) -> int:
        return len(self._states)

    def ids(self) -> list[str]:
        return list(self._states)

    def add(self, row: Sequence[Any]) -> tuple[Complaint, ev.Event]:
        """Fold one row (a complaint's first, or the next of one folded here); its payload may be a mapping or
        its JSON text (:func:`domain.events.parse_event`). Gives the state, only to be read before the next row
        is added, and the row's event."""
        event = ev.parse_event(row[2], row[3], row[6])
        complaint_id = row[0]
        state = self._states.get(complaint_id)
        if state is None:
            state = self._states[complaint_id] = _received(row, event, ChainHead.of(row[1], row[8]))
        else:
            _follows(complaint_id, *self._heads[complaint_id], row)
            ev.replace_in_place(state, _checked(event, event.apply(state, row[4])))
        self._heads[complaint_id] = (row[1], row[8])
        return state, event

    def state(self, complaint_id: str) -> Complaint:
        """A complaint's state as :func:`evolve_row` would have folded it: a copy, with its head."""
        return _changed(self._states[complaint_id], {"head": ChainHead.of(*self._heads[complaint_id])})

    def adopt(self, state: Complaint) -> None:
        """Go on folding a state folded elsewhere (a copy is kept)."""
        self._states[state.complaint_id] = _changed(state, {})
        self._heads[state.complaint_id] = (state.head.sequence, state.head.hash)

    def drop(self, complaint_id: str) -> None:
        self._states.pop(complaint_id, None)
        self._heads.pop(complaint_id, None)


_FIELDS = frozenset(Complaint.model_fields) - {"complaint_id", "head"}


def _changed(state: Complaint, changes: ev.Changes) -> Complaint:
    """``state.model_copy(update=changes)`` without pydantic's generic copying (:func:`domain.events.replaced`),
    which was half of what a fold costs. A Complaint has no private or extra attributes."""
    return ev.replaced(state, changes)


def _checked(event: ev.Event, changes: ev.Changes) -> ev.Changes:
    """``model_copy(update=)`` validates nothing: a misspelt field would vanish silently, so it is refused."""
    if changes.keys() <= _FIELDS:
        return changes
    unknown = changes.keys() - _FIELDS
    if unknown:
        raise FoldError(f"{type(event).__name__}.apply changes {', '.join(sorted(unknown))}, which a Complaint "
                        "does not have (or the fold sets itself)")
    return changes


def fold(records: Iterable[Recorded], state: Complaint | None = None) -> Complaint | None:
    """The state after ``records``, starting from ``state`` (None: from nothing)."""
    for record in records:
        state = evolve(state, record)
    return state
