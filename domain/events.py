"""What happened to a complaint: immutable facts, named in the past tense.

An event's payload is what the log stores (as JSON) and what its hash covers. Fields named in
``personal`` hold personal data: at rest they are sealed with the customer's own key (crypto-shredding),
so they are typed loosely as ``str`` here: after erasure they hold a sealed token, and the fold never
reads them. Validation of their content happened on the way in (intake and commands).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from domain.intake import Channel, Jurisdiction, Severity, SubjectKind
from domain.values import Money
from domain.vocabulary import (
    ChurnCategory,
    CustomerChoice,
    DeadlineKind,
    Outcome,
    RemedyKind,
    RootCause,
    Rung,
    Sender,
    Verdict,
)


class Event(BaseModel):
    """Base of every event. ``version`` is the payload schema's version; older payloads are upcast."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: ClassVar[int] = 1
    personal: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def upcast(cls, payload: dict[str, Any], version: int) -> dict[str, Any]:
        """Bring a stored payload of an older schema version up to this one."""
        if version != cls.version:
            raise ValueError(f"{cls.__name__} has no upcaster from version {version}")
        return payload


# --- intake -------------------------------------------------------------------------------------------


class ComplaintReceived(Event):
    personal = ("customer_name", "contact_email", "contact_phone", "contact_handle", "description", "subject_title",
                "subject_reference")

    customer_id: str
    customer_name: str
    contact_email: str | None
    contact_phone: str | None
    contact_handle: str | None
    channel: Channel
    subject_kind: SubjectKind
    subject_title: str
    subject_reference: str | None
    subject_value: Money | None
    description: str
    severity: Severity
    jurisdiction: Jurisdiction
    occurred_at: datetime
    received_at: datetime


class Extension(BaseModel):
    """How a deadline may be extended once, as the rule allows (e.g. OJK: +10 working days with notice)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    due_at: datetime
    warn_at: datetime
    rule: str


class Deadline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DeadlineKind
    due_at: datetime
    warn_at: datetime
    rule: str
    extension: Extension | None = None


class SlaDeadlinesSet(Event):
    """Deadlines computed once, in an activity, from the policy and the calendar of the day."""

    policy: str
    calendar: str
    deadlines: list[Deadline]


class SlaDeadlinesReset(Event):
    """A reopened complaint's assessment and final-response deadlines, computed in an activity from the
    policy and the calendar of the day; each deadline's rule says whether it counts from the reopening or
    (where the regulator's clock keeps running) from the first receipt."""

    reopen_count: int
    policy: str
    calendar: str
    deadlines: list[Deadline]


class ComplaintAcknowledged(Event):
    personal = ("text",)  # names the subject

    channel: Channel
    text: str


# --- moving to a private channel, and the conversation ----------------------------------------------------


class ContactMoveRequested(Event):
    from_rung: Rung
    to_rung: Rung
    text: str


class ContactMovedOffline(Event):
    personal = ("detail",)

    rung: Rung
    detail: str


class MeetingScheduled(Event):
    personal = ("location",)

    at: datetime
    location: str


class MessageLogged(Event):
    personal = ("text",)

    sender: Sender
    channel: Channel
    text: str
    at: datetime


# --- validation and the response ------------------------------------------------------------------------


class ComplaintAssessed(Event):
    personal = ("findings", "clause")

    verdict: Verdict
    root_cause: RootCause
    findings: str
    clause: str | None


class ApologyIssued(Event):
    personal = ("text",)

    text: str


class ConductApologyIssued(Event):
    """An apology for how we spoke or behaved: not an admission that the complaint is valid."""

    personal = ("text",)

    text: str


class RemedyOption(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: RemedyKind
    description: str
    value: Money


class RemedyOffered(Event):
    personal = ("options[].description",)  # names the subject

    options: list[RemedyOption]
    default_option: str
    expires_at: datetime


class RemedyChosen(Event):
    option_id: str


class RemedyDefaulted(Event):
    option_id: str


class RemedyFulfilled(Event):
    option_id: str
    reference: str


class RemedyFulfilmentFailed(Event):
    personal = ("reason",)

    option_id: str
    reason: str


class ExplanationGiven(Event):
    personal = ("text",)

    sop_reference: str
    text: str


class OptionsOffered(Event):
    options: list[CustomerChoice]
    default_option: CustomerChoice
    expires_at: datetime


class OptionChosen(Event):
    option: CustomerChoice


class OptionDefaulted(Event):
    option: CustomerChoice


# --- follow-up, closure, churn --------------------------------------------------------------------------


class FollowUpScheduled(Event):
    at: datetime
    answer_by: datetime


class FollowUpRecorded(Event):
    personal = ("comment",)

    satisfaction: int
    comment: str | None


class ComplaintReopened(Event):
    reopen_count: int
    reason: str


class ComplaintEscalated(Event):
    personal = ("to", "reason")

    to: str
    reason: str
    awaits_supervisor: bool


class ComplaintWithdrawn(Event):
    personal = ("reason",)

    reason: str | None


class CustomerChurned(Event):
    personal = ("reason",)

    reason: str
    root_cause: RootCause | None
    category: ChurnCategory


class ComplaintClosed(Event):
    personal = ("note",)

    outcome: Outcome
    root_cause: RootCause | None
    satisfaction: int | None
    note: str | None = None


# --- deadlines ------------------------------------------------------------------------------------------


class SlaWarningRaised(Event):
    kind: DeadlineKind
    due_at: datetime


class SlaBreached(Event):
    kind: DeadlineKind
    due_at: datetime


class SlaExtended(Event):
    personal = ("reason", "notice")

    kind: DeadlineKind
    previous_due_at: datetime
    due_at: datetime
    warn_at: datetime
    reason: str
    notice: str


def _registry() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    pending = list(Event.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


#: Every event type by name: the ``type`` column of the log.
EVENT_TYPES: dict[str, type[Event]] = _registry()


def parse_event(type_name: str, version: int, payload: dict[str, Any]) -> Event:
    """A stored payload back into its event, upcast to the current schema version."""
    try:
        cls = EVENT_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown event type {type_name!r}") from None
    return cls.model_validate(cls.upcast(payload, version))
