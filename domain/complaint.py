"""A complaint's state: nothing but a fold over its recorded events.

The workflow folds the records the log stored; an auditor folds the same rows read back from PostgreSQL.
Both must reach the same ``Complaint``, field for field. The state holds no personal data (names,
contacts, free text stay in the log, sealed), so it can travel through Temporal queries, search
attributes and continue-as-new without carrying any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain import events as ev
from domain.chain import GENESIS, ChainHead, Recorded
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


class DeadlineState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DeadlineKind
    due_at: datetime
    warn_at: datetime
    rule: str
    extension: ev.Extension | None = None
    extended: bool = False
    met_at: datetime | None = None
    warned: bool = False
    breached: bool = False

    @property
    def pending(self) -> bool:
        return self.met_at is None

    @property
    def met_in_time(self) -> bool | None:
        """True met by the deadline, False missed (or breached), None still open."""
        if self.breached:
            return False
        if self.met_at is None:
            return None
        return self.met_at <= self.due_at


class Offer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    options: list[ev.RemedyOption]
    default_option: str
    expires_at: datetime

    def option(self, option_id: str) -> ev.RemedyOption | None:
        return next((o for o in self.options if o.id == option_id), None)


class ChoiceOffer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    options: list[CustomerChoice]
    default_option: CustomerChoice
    expires_at: datetime


class FollowUp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    answer_by: datetime


class Escalation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str
    reason: str
    at: datetime


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
    deadlines: list[DeadlineState] = []
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
    escalations: list[Escalation] = []
    churn: ChurnCategory | None = None
    outcome: Outcome | None = None
    closed_at: datetime | None = None
    head: ChainHead = ChainHead()

    @property
    def is_open(self) -> bool:
        return self.stage is not Stage.closed

    @property
    def local_zone(self) -> tzinfo:
        """The jurisdiction's clock as its recorded deadlines carry it (UTC before they are set)."""
        return self.deadlines[0].due_at.tzinfo or timezone.utc if self.deadlines else timezone.utc

    @property
    def sla_breached(self) -> bool:
        return any(d.breached for d in self.deadlines)

    def deadline(self, kind: DeadlineKind) -> DeadlineState | None:
        return next((d for d in self.deadlines if d.kind is kind), None)

    @property
    def next_deadline(self) -> DeadlineState | None:
        pending = [d for d in self.deadlines if d.pending and not d.breached]
        return min(pending, key=lambda d: d.due_at, default=None)


class FoldError(ValueError):
    """A record that cannot follow the state it is applied to: wrong complaint, gap, or broken link."""


def _meet(deadlines: list[DeadlineState], kinds: Iterable[DeadlineKind], at: datetime) -> list[DeadlineState]:
    wanted = set(kinds)
    return [d.model_copy(update={"met_at": at}) if d.kind in wanted and d.met_at is None else d for d in deadlines]


def _with_deadline(state: Complaint, kind: DeadlineKind, **changes: Any) -> list[DeadlineState]:
    return [d.model_copy(update=changes) if d.kind is kind else d for d in state.deadlines]


Changes = dict[str, Any]
_Apply = Callable[[Complaint, Any, datetime], Changes]


def _acknowledged(s: Complaint, e: ev.ComplaintAcknowledged, at: datetime) -> Changes:
    return {"stage": Stage.awaiting_assessment, "acknowledged_at": at,
            "deadlines": _meet(s.deadlines, [DeadlineKind.acknowledgement], at)}


def _deadlines_set(s: Complaint, e: ev.SlaDeadlinesSet, at: datetime) -> Changes:
    return {"policy": e.policy, "deadlines": [
        DeadlineState(kind=d.kind, due_at=d.due_at, warn_at=d.warn_at, rule=d.rule, extension=d.extension)
        for d in e.deadlines
    ]}


def _deadlines_reset(s: Complaint, e: ev.SlaDeadlinesReset, at: datetime) -> Changes:
    """The reopened complaint's deadlines replace those of its kinds; the others stay as they were met."""
    fresh = {d.kind: DeadlineState(kind=d.kind, due_at=d.due_at, warn_at=d.warn_at, rule=d.rule, extension=d.extension)
             for d in e.deadlines}
    kept = [d for d in s.deadlines if d.kind not in fresh]
    return {"deadlines": kept + list(fresh.values()), "deadlines_round": e.reopen_count}


def _assessed(s: Complaint, e: ev.ComplaintAssessed, at: datetime) -> Changes:
    return {"verdict": e.verdict, "root_cause": e.root_cause, "assessed_at": at, "assessments": s.assessments + 1,
            "deadlines": _meet(s.deadlines, [DeadlineKind.assessment], at)}


def _responded(s: Complaint, at: datetime) -> Changes:
    return {"responded_at": s.responded_at or at, "deadlines": _meet(s.deadlines, [DeadlineKind.final_response], at)}


def _offered(s: Complaint, e: ev.RemedyOffered, at: datetime) -> Changes:
    offer = Offer(options=e.options, default_option=e.default_option, expires_at=e.expires_at)
    return {"offer": offer, "stage": Stage.awaiting_remedy_choice, **_responded(s, at)}


def _explained(s: Complaint, e: ev.ExplanationGiven, at: datetime) -> Changes:
    return {"explained": True, **_responded(s, at)}


def _options_offered(s: Complaint, e: ev.OptionsOffered, at: datetime) -> Changes:
    offer = ChoiceOffer(options=e.options, default_option=e.default_option, expires_at=e.expires_at)
    return {"choice_offer": offer, "stage": Stage.awaiting_option_choice}


def _escalated(s: Complaint, e: ev.ComplaintEscalated, at: datetime) -> Changes:
    changes: Changes = {"escalations": [*s.escalations, Escalation(to=e.to, reason=e.reason, at=at)]}
    if e.awaits_supervisor:
        changes["stage"] = Stage.escalated
    return changes


def _reopened(s: Complaint, e: ev.ComplaintReopened, at: datetime) -> Changes:
    """Back to validation: the previous response stays in the log; the new one starts clean."""
    return {"stage": Stage.awaiting_assessment, "reopen_count": e.reopen_count, "offer": None,
            "remedy_option": None, "remedy_defaulted": False, "remedy_reference": None, "remedy_failed": False,
            "explained": False, "choice_offer": None, "choice": None, "follow_up": None}


def _closed(s: Complaint, e: ev.ComplaintClosed, at: datetime) -> Changes:
    return {"stage": Stage.closed, "outcome": e.outcome, "closed_at": at,
            "satisfaction": e.satisfaction if e.satisfaction is not None else s.satisfaction}


def _extended(s: Complaint, e: ev.SlaExtended, at: datetime) -> Changes:
    return {"deadlines": _with_deadline(s, e.kind, due_at=e.due_at, warn_at=e.warn_at, extended=True,
                                        warned=False)}


_APPLY: dict[type[ev.Event], _Apply] = {
    ev.SlaDeadlinesSet: _deadlines_set,
    ev.SlaDeadlinesReset: _deadlines_reset,
    ev.ComplaintAcknowledged: _acknowledged,
    ev.ContactMoveRequested: lambda s, e, at: {"requested_rung": e.to_rung},
    ev.ContactMovedOffline: lambda s, e, at: {"rung": e.rung, "requested_rung": None},
    ev.MeetingScheduled: lambda s, e, at: {"meeting_at": e.at},
    ev.MessageLogged: lambda s, e, at: {"messages": s.messages + 1},
    ev.ComplaintAssessed: _assessed,
    ev.ApologyIssued: lambda s, e, at: {"apologised": True},
    ev.ConductApologyIssued: lambda s, e, at: {"conduct_apologies": s.conduct_apologies + 1},
    ev.RemedyOffered: _offered,
    ev.RemedyChosen: lambda s, e, at: {"remedy_option": e.option_id, "stage": Stage.fulfilling_remedy},
    ev.RemedyDefaulted: lambda s, e, at: {"remedy_option": e.option_id, "remedy_defaulted": True,
                                          "stage": Stage.fulfilling_remedy},
    ev.RemedyFulfilled: lambda s, e, at: {"remedy_reference": e.reference},
    ev.RemedyFulfilmentFailed: lambda s, e, at: {"remedy_failed": True},
    ev.ExplanationGiven: _explained,
    ev.OptionsOffered: _options_offered,
    ev.OptionChosen: lambda s, e, at: {"choice": e.option},
    ev.OptionDefaulted: lambda s, e, at: {"choice": e.option},
    ev.FollowUpScheduled: lambda s, e, at: {"follow_up": FollowUp(at=e.at, answer_by=e.answer_by),
                                            "stage": Stage.awaiting_follow_up},
    ev.FollowUpRecorded: lambda s, e, at: {"satisfaction": e.satisfaction},
    ev.ComplaintReopened: _reopened,
    ev.ComplaintEscalated: _escalated,
    ev.ComplaintWithdrawn: lambda s, e, at: {},
    ev.CustomerChurned: lambda s, e, at: {"churn": e.category},
    ev.ComplaintClosed: _closed,
    ev.SlaWarningRaised: lambda s, e, at: {"deadlines": _with_deadline(s, e.kind, warned=True)},
    ev.SlaBreached: lambda s, e, at: {"deadlines": _with_deadline(s, e.kind, breached=True)},
    ev.SlaExtended: _extended,
}


def _start(record: Recorded, e: ev.ComplaintReceived) -> Complaint:
    return Complaint(
        complaint_id=record.complaint_id,
        customer_id=e.customer_id,
        channel=e.channel,
        severity=e.severity,
        jurisdiction=e.jurisdiction,
        subject_kind=e.subject_kind,
        subject_title=e.subject_title,
        subject_reference=e.subject_reference,
        subject_value=e.subject_value,
        received_at=e.received_at,
        rung=Rung.of(e.channel),
        head=record.head,
    )


def evolve(state: Complaint | None, record: Recorded) -> Complaint:
    """Apply one recorded event. Refuses a record for another complaint, out of sequence, or off-chain."""
    event = ev.parse_event(record.type, record.schema_version, record.payload)
    if state is None:
        if record.sequence != 1 or not isinstance(event, ev.ComplaintReceived):
            raise FoldError(f"{record.complaint_id} #{record.sequence}: a complaint starts with ComplaintReceived #1")
        if record.prev_hash != GENESIS:
            raise FoldError(f"{record.complaint_id} #1: the first record must link to the genesis hash")
        return _start(record, event)
    if record.complaint_id != state.complaint_id:
        raise FoldError(f"record for {record.complaint_id} applied to {state.complaint_id}")
    if record.sequence != state.head.sequence + 1:
        raise FoldError(f"{state.complaint_id}: expected #{state.head.sequence + 1}, got #{record.sequence}")
    if record.prev_hash != state.head.hash:
        raise FoldError(f"{state.complaint_id} #{record.sequence}: prev_hash does not match the head")
    apply = _APPLY.get(type(event))
    if apply is None:
        raise FoldError(f"{state.complaint_id} #{record.sequence}: {record.type} cannot follow the first event")
    return state.model_copy(update={**apply(state, event, record.occurred_at), "head": record.head})


def fold(records: Iterable[Recorded], state: Complaint | None = None) -> Complaint | None:
    """The state after ``records``, starting from ``state`` (None: from nothing)."""
    for record in records:
        state = evolve(state, record)
    return state
