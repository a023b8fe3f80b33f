"""What happened to a complaint: immutable facts, named in the past tense. Each event is defined here whole:
its payload, how it changes the complaint (``apply``: the fold in domain/complaint.py only calls it) and how
it reads in a case file (``describe``: the timeline only calls it). tests/unit/test_completeness.py names an
event that lacks either.

An event's payload is what the log stores (as JSON) and what its hash covers. Fields named in
``personal`` hold personal data: at rest they are sealed with the customer's own key (crypto-shredding),
so they are typed loosely as ``str`` here: after erasure they hold a sealed token, and the fold never
reads them. Validation of their content happened on the way in (intake and commands).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

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
    Stage,
    Verdict,
)

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__

if TYPE_CHECKING:
    from domain.complaint import Complaint

#: What an event changes in a complaint: field name -> new value (the fold refuses a name it does not have).
Changes = dict[str, Any]
#: How a time reads in a case file (on the jurisdiction's clock).
When = Callable[[datetime], str]


class FoldError(ValueError):
    """A record that cannot follow the state it is applied to: wrong complaint, gap, or broken link."""


def words(value: str | Enum) -> str:
    """A vocabulary value as words: ``final_response`` -> ``final response``."""
    return str(value.value if isinstance(value, Enum) else value).replace("_", " ")


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

    def apply(self, state: Complaint, at: datetime) -> Changes:
        """How this event, recorded ``at``, changes ``state``: the fields it sets (pure; no I/O, no clock)."""
        raise NotImplementedError(f"{type(self).__name__} does not say how it changes a complaint: define its "
                                  "apply in domain/events.py")

    def describe(self, at: When) -> str:
        """Plain words for a case file: what a person would write. Personal fields may read [erased]."""
        raise NotImplementedError(f"{type(self).__name__} has no words for a timeline: define its describe in "
                                  "domain/events.py")


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

    def apply(self, state: Complaint | None, at: datetime) -> Changes:
        """The first event: the complaint's fields (its id and chain head come from the record)."""
        if state is not None:
            raise FoldError(f"{state.complaint_id}: ComplaintReceived cannot follow the first event")
        return {"customer_id": self.customer_id, "channel": self.channel, "severity": self.severity,
                "jurisdiction": self.jurisdiction, "subject_kind": self.subject_kind,
                "subject_title": self.subject_title, "subject_reference": self.subject_reference,
                "subject_value": self.subject_value, "received_at": self.received_at, "rung": Rung.of(self.channel)}

    def describe(self, at: When) -> str:
        about = f" ({self.subject_kind} {self.subject_reference})" if self.subject_reference else ""
        return (f"Complaint received by {words(self.channel)} from customer {self.customer_id} ({self.customer_name}), "
                f"about '{self.subject_title}'{about}; severity {self.severity}, {self.jurisdiction} rules. "
                f"They wrote: {self.description}")


class ConversationOpened(Event):
    """From here on, every message the process owes the customer is rendered in their language from the
    message templates and delivered (MessageSent), or handed to an agent where no channel can carry it. Runs
    from before the customer channel have no such event, and their messages stay texts in events."""

    language: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"language": self.language}

    def describe(self, at: When) -> str:
        return f"Messages to the customer are written in their language ({self.language})"


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

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"policy": self.policy, "deadlines": [DeadlineState.of(d) for d in self.deadlines]}

    def describe(self, at: When) -> str:
        return f"Deadlines set under the {self.policy} policy ({self.calendar}): " + "; ".join(
            f"{words(d.kind)} by {at(d.due_at)}" for d in self.deadlines)


class SlaDeadlinesReset(Event):
    """A reopened complaint's assessment and final-response deadlines, computed in an activity from the
    policy and the calendar of the day; each deadline's rule says whether it counts from the reopening or
    (where the regulator's clock keeps running) from the first receipt."""

    reopen_count: int
    policy: str
    calendar: str
    deadlines: list[Deadline]

    def apply(self, state: Complaint, at: datetime) -> Changes:
        """The reopened complaint's deadlines replace those of their kinds; the others stay as they were met."""
        fresh = {d.kind: DeadlineState.of(d) for d in self.deadlines}
        kept = [d for d in state.deadlines if d.kind not in fresh]
        return {"deadlines": kept + list(fresh.values()), "deadlines_round": self.reopen_count}

    def describe(self, at: When) -> str:
        return f"Reopened complaint's deadlines under the {self.policy} policy: " + "; ".join(
            f"{words(d.kind)} by {at(d.due_at)} ({d.rule})" for d in self.deadlines)


class ComplaintAcknowledged(Event):
    personal = ("text",)  # names the subject

    channel: Channel
    text: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        if state.language is not None and not state.channel.is_verbal:
            # Met when the acknowledgement reaches the customer (MessageSent, or an agent delivering it), not
            # when it is decided. A complaint made by phone or in person was acknowledged in the conversation
            # itself; its written acknowledgement follows all the same.
            return {"stage": Stage.awaiting_assessment, "acknowledged_at": at, **owe(state, "acknowledgement", at)}
        if state.language is not None:
            return {"stage": Stage.awaiting_assessment, "acknowledged_at": at, **owe(state, "acknowledgement", at),
                    "deadlines": meet(state.deadlines, DeadlineKind.acknowledgement, at)}
        return {"stage": Stage.awaiting_assessment, "acknowledged_at": at,
                "deadlines": meet(state.deadlines, DeadlineKind.acknowledgement, at)}

    def describe(self, at: When) -> str:
        return f"Acknowledged to the customer by {words(self.channel)}: {self.text}"


# --- moving to a private channel, and the conversation ----------------------------------------------------


class ContactMoveRequested(Event):
    from_rung: Rung
    to_rung: Rung
    text: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"requested_rung": self.to_rung, **owe(state, "move_request", at, about=self.to_rung.value)}

    def describe(self, at: When) -> str:
        return f"Asked the customer to move from {self.from_rung} to {self.to_rung}: {self.text}"


class ContactMovedOffline(Event):
    personal = ("detail",)

    rung: Rung
    detail: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"rung": self.rung, "requested_rung": None}

    def describe(self, at: When) -> str:
        return f"Conversation moved to {self.rung} ({self.detail})"


class MeetingScheduled(Event):
    personal = ("location",)

    at: datetime
    location: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"meeting_at": self.at}

    def describe(self, at: When) -> str:
        return f"Meeting booked for {at(self.at)} at {self.location}"


class MessageLogged(Event):
    personal = ("text",)

    sender: Sender
    channel: Channel
    text: str
    at: datetime
    #: An email's own Message-ID, and the one of ours it answers (a reply read back from the mailbox). Left
    #: out of the payload when absent, so a message logged by hand is recorded as it always was.
    message_id: str | None = Field(default=None, exclude_if=lambda v: v is None)
    in_reply_to: str | None = Field(default=None, exclude_if=lambda v: v is None)

    def apply(self, state: Complaint, at: datetime) -> Changes:
        changes: Changes = {"messages": state.messages + 1}
        if self.message_id is not None:  # the thread goes on from the customer's reply
            changes["thread"] = [*state.thread, self.message_id]
        if self.sender is Sender.agent and state.agent_tasks:  # the agent delivered the oldest message handed over
            done, *rest = state.agent_tasks
            changes["agent_tasks"] = rest
            if done.startswith("acknowledgement"):
                changes["deadlines"] = meet(state.deadlines, DeadlineKind.acknowledgement, self.at)
        return changes

    def describe(self, at: When) -> str:
        text = f"Message from the {self.sender} by {words(self.channel)} at {at(self.at)}"
        if self.message_id is not None:
            text += f" ({self.message_id}" + (f", a reply to {self.in_reply_to})" if self.in_reply_to else ")")
        return text


# --- validation and the response ------------------------------------------------------------------------


class ComplaintAssessed(Event):
    personal = ("findings", "clause")

    verdict: Verdict
    root_cause: RootCause
    findings: str
    clause: str | None

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"verdict": self.verdict, "root_cause": self.root_cause, "assessed_at": at,
                "assessments": state.assessments + 1,
                "deadlines": meet(state.deadlines, DeadlineKind.assessment, at)}

    def describe(self, at: When) -> str:
        clause = f"; clause at stake: {self.clause}" if self.clause else ""
        return f"Assessed {words(self.verdict)}, root cause {words(self.root_cause)}{clause}. Findings: {self.findings}"


class ApologyIssued(Event):
    personal = ("text",)

    text: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"apologised": True}

    def describe(self, at: When) -> str:
        return f"Apologised: {self.text}"


class ConductApologyIssued(Event):
    """An apology for how we spoke or behaved: not an admission that the complaint is valid."""

    personal = ("text",)

    text: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"conduct_apologies": state.conduct_apologies + 1}

    def describe(self, at: When) -> str:
        return f"Apologised for conduct (not an admission): {self.text}"


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

    def apply(self, state: Complaint, at: datetime) -> Changes:
        offer = Offer(options=self.options, default_option=self.default_option, expires_at=self.expires_at)
        return {"offer": offer, "stage": Stage.awaiting_remedy_choice, **responded(state, at),
                **owe(state, "apology", at)}

    def describe(self, at: When) -> str:
        options = "; ".join(f"{o.id}) {o.description}" for o in self.options)
        return (f"Remedies offered until {at(self.expires_at)}: {options}. Option {self.default_option} applies "
                "if none is chosen")


class RemedyChosen(Event):
    option_id: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"remedy_option": self.option_id, "stage": Stage.fulfilling_remedy}

    def describe(self, at: When) -> str:
        return f"The customer chose remedy {self.option_id}"


class RemedyDefaulted(Event):
    option_id: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"remedy_option": self.option_id, "remedy_defaulted": True, "stage": Stage.fulfilling_remedy}

    def describe(self, at: When) -> str:
        return f"The offer expired: remedy {self.option_id} applies by default"


class RemedyFulfilled(Event):
    option_id: str
    reference: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"remedy_reference": self.reference}

    def describe(self, at: When) -> str:
        return f"Remedy {self.option_id} fulfilled (reference {self.reference})"


class RemedyFulfilmentFailed(Event):
    personal = ("reason",)

    option_id: str
    reason: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"remedy_failed": True}

    def describe(self, at: When) -> str:
        return f"Remedy {self.option_id} could not be fulfilled: {self.reason}"


class ExplanationGiven(Event):
    personal = ("text",)

    sop_reference: str
    text: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"explained": True, **responded(state, at)}

    def describe(self, at: When) -> str:
        return f"Explained the agreed procedure ({self.sop_reference}): {self.text}"


class OptionsOffered(Event):
    options: list[CustomerChoice]
    default_option: CustomerChoice
    expires_at: datetime

    def apply(self, state: Complaint, at: datetime) -> Changes:
        offer = ChoiceOffer(options=self.options, default_option=self.default_option, expires_at=self.expires_at)
        return {"choice_offer": offer, "stage": Stage.awaiting_option_choice, **owe(state, "explanation", at)}

    def describe(self, at: When) -> str:
        return (f"Offered the customer to {' or '.join(self.options)} until {at(self.expires_at)} "
                f"({self.default_option} otherwise)")


class OptionChosen(Event):
    option: CustomerChoice

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"choice": self.option}

    def describe(self, at: When) -> str:
        return f"The customer chose to {self.option}"


class OptionDefaulted(Event):
    option: CustomerChoice

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"choice": self.option}

    def describe(self, at: When) -> str:
        return f"No answer: the customer {self.option}s under the rules by default"


# --- follow-up, closure, churn --------------------------------------------------------------------------


class FollowUpScheduled(Event):
    at: datetime
    answer_by: datetime

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"follow_up": FollowUp(at=self.at, answer_by=self.answer_by), "stage": Stage.awaiting_follow_up,
                **owe(state, "follow_up", self.at)}

    def describe(self, at: When) -> str:
        return f"Follow-up set for {at(self.at)}, answer by {at(self.answer_by)}"


class FollowUpRecorded(Event):
    personal = ("comment",)

    satisfaction: int
    comment: str | None

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"satisfaction": self.satisfaction}

    def describe(self, at: When) -> str:
        return f"Customer satisfaction {self.satisfaction}/5{': ' + self.comment if self.comment else ''}"


class ComplaintReopened(Event):
    reopen_count: int
    reason: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        """Back to validation: the previous response stays in the log; the new one starts clean."""
        return {"stage": Stage.awaiting_assessment, "reopen_count": self.reopen_count, "offer": None,
                "remedy_option": None, "remedy_defaulted": False, "remedy_reference": None, "remedy_failed": False,
                "explained": False, "choice_offer": None, "choice": None, "follow_up": None}

    def describe(self, at: When) -> str:
        return f"Reopened ({self.reopen_count} of 2): {self.reason}"


class ComplaintEscalated(Event):
    personal = ("to", "reason")

    to: str
    reason: str
    awaits_supervisor: bool

    def apply(self, state: Complaint, at: datetime) -> Changes:
        changes: Changes = {"escalations": [*state.escalations, Escalation(to=self.to, reason=self.reason, at=at)]}
        if self.awaits_supervisor:
            changes["stage"] = Stage.escalated
        return changes

    def describe(self, at: When) -> str:
        return f"Escalated to {self.to}: {self.reason}{' (awaiting their decision)' if self.awaits_supervisor else ''}"


class ComplaintWithdrawn(Event):
    personal = ("reason",)

    reason: str | None

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {}  # the ComplaintClosed that follows it closes the complaint

    def describe(self, at: When) -> str:
        return f"Withdrawn by the customer{': ' + self.reason if self.reason else ''}"


class CustomerChurned(Event):
    personal = ("reason",)

    reason: str
    root_cause: RootCause | None
    category: ChurnCategory

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"churn": self.category}

    def describe(self, at: When) -> str:
        return f"The customer left ({self.category} cause): {self.reason}"


class ComplaintClosed(Event):
    personal = ("note",)

    outcome: Outcome
    root_cause: RootCause | None
    satisfaction: int | None
    note: str | None = None

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"stage": Stage.closed, "outcome": self.outcome, "closed_at": at,
                "satisfaction": self.satisfaction if self.satisfaction is not None else state.satisfaction}

    def describe(self, at: When) -> str:
        satisfaction = f", satisfaction {self.satisfaction}/5" if self.satisfaction else ""
        return f"Closed: {words(self.outcome)}{satisfaction}{'. ' + self.note if self.note else ''}"


# --- messages to the customer ---------------------------------------------------------------------------


class MessageSent(Event):
    """A message the process owed the customer, rendered from its template in their language and accepted by
    the channel's provider. ``message_id`` is deterministic per message, so a retried send is the same mail."""

    personal = ("recipient", "subject", "body")

    key: str
    template: str
    channel: str
    language: str
    recipient: str
    subject: str
    body: str
    message_id: str
    provider_id: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        changes: Changes = {"outbox": settled(state, self.key), "thread": [*state.thread, self.message_id]}
        if self.template == "acknowledgement":
            changes["deadlines"] = meet(state.deadlines, DeadlineKind.acknowledgement, at)
        return changes

    def describe(self, at: When) -> str:
        return (f"Sent the {words(self.template)} by {self.channel} in {self.language} to {self.recipient}: "
                f"'{self.subject}' ({self.message_id})")


class MessageDeliveryFailed(Event):
    """A message that could not be delivered: refused by the provider, or not accepted within the retry budget."""

    personal = ("reason",)

    key: str
    template: str
    channel: str
    reason: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"outbox": settled(state, self.key)}

    def describe(self, at: When) -> str:
        return f"The {words(self.template)} could not be delivered by {self.channel}: {self.reason}"


class MessageHandedToAgent(Event):
    """A message no adapter can carry (no email address: a phone, social or in-person complaint): rendered in the
    customer's language for an agent to deliver, who then logs it (LogMessage from the agent)."""

    personal = ("subject", "body")

    key: str
    template: str
    channel: str
    language: str
    subject: str
    body: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"outbox": settled(state, self.key), "agent_tasks": [*state.agent_tasks, self.key]}

    def describe(self, at: When) -> str:
        return (f"No channel carries the {words(self.template)} ({self.channel}): handed to an agent to deliver, in "
                f"{self.language}: '{self.subject}'")


# --- deadlines ------------------------------------------------------------------------------------------


class SlaWarningRaised(Event):
    kind: DeadlineKind
    due_at: datetime

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"deadlines": with_deadline(state.deadlines, self.kind, warned=True)}

    def describe(self, at: When) -> str:
        return f"Warning: the {words(self.kind)} deadline ({at(self.due_at)}) is near"


class SlaBreached(Event):
    kind: DeadlineKind
    due_at: datetime

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"deadlines": with_deadline(state.deadlines, self.kind, breached=True)}

    def describe(self, at: When) -> str:
        return f"Deadline breached: {words(self.kind)} was due {at(self.due_at)}"


class SlaExtended(Event):
    personal = ("reason", "notice")

    kind: DeadlineKind
    previous_due_at: datetime
    due_at: datetime
    warn_at: datetime
    reason: str
    notice: str

    def apply(self, state: Complaint, at: datetime) -> Changes:
        return {"deadlines": with_deadline(state.deadlines, self.kind, due_at=self.due_at, warn_at=self.warn_at,
                                           extended=True, warned=False), **owe(state, "extension_notice", at)}

    def describe(self, at: When) -> str:
        return (f"The {words(self.kind)} deadline was extended from {at(self.previous_due_at)} to {at(self.due_at)}: "
                f"{self.reason}. The customer was told: {self.notice}")


# --- what events leave in a complaint's state -------------------------------------------------------------


class DeadlineState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DeadlineKind
    due_at: datetime
    warn_at: datetime
    rule: str
    extension: Extension | None = None
    extended: bool = False
    met_at: datetime | None = None
    warned: bool = False
    breached: bool = False

    @classmethod
    def of(cls, deadline: Deadline) -> DeadlineState:
        return cls(kind=deadline.kind, due_at=deadline.due_at, warn_at=deadline.warn_at, rule=deadline.rule,
                   extension=deadline.extension)

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

    options: list[RemedyOption]
    default_option: str
    expires_at: datetime

    def option(self, option_id: str) -> RemedyOption | None:
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


class Outgoing(BaseModel):
    """A message the process owes the customer: which template, from when (a follow-up waits for its day)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    template: str
    due_at: datetime
    #: What the message is about when its template needs it: the rung a move request asks for.
    about: str | None = None


def owe(state: Complaint, template: str, due_at: datetime, about: str | None = None) -> Changes:
    """A message owed, once the conversation is open (runs from before it owe nothing: they replay as they ran)."""
    if state.language is None:
        return {}
    number = state.messages_owed + 1
    owed = Outgoing(key=f"{template}-{number}", template=template, due_at=due_at, about=about)
    return {"outbox": [*state.outbox, owed],
            "messages_owed": number}


def settled(state: Complaint, key: str) -> list[Outgoing]:
    return [o for o in state.outbox if o.key != key]


def replaced(model: M, changes: Mapping[str, Any]) -> M:
    """``model.model_copy(update=changes)`` for the domain's frozen models (no private or extra attributes), done
    as pydantic does it (the fields copied with the changes over them, the changed ones marked set) without its
    generic copying, which cost more than the rest of a fold step: the report folds every event of the log.
    Like model_copy, it validates nothing."""
    copy = type(model).__new__(type(model))
    _set(copy, "__dict__", {**model.__dict__, **changes})
    _set(copy, "__pydantic_fields_set__", _marked(model, changes))
    _set(copy, "__pydantic_extra__", None)
    _set(copy, "__pydantic_private__", None)
    return copy


def replace_in_place(model: BaseModel, changes: Mapping[str, Any]) -> None:
    """What :func:`replaced` gives, made to ``model`` itself: only for a model nobody else holds (the report's
    fold, domain.complaint.Folding). Its fields are replaced, never changed within."""
    model.__dict__.update(changes)
    _set(model, "__pydantic_fields_set__", _marked(model, changes))


def _marked(model: BaseModel, changes: Mapping[str, Any]) -> set[str]:
    """The fields set once ``changes`` are made, as pydantic marks them."""
    fields_set = model.__pydantic_fields_set__  # shared while no new field is set: a frozen model's never changes
    return fields_set if changes.keys() <= fields_set else fields_set | changes.keys()


def meet(deadlines: list[DeadlineState], kind: DeadlineKind, at: datetime) -> list[DeadlineState]:
    """The deadlines with ``kind`` met ``at`` (unless it already was)."""
    return [replaced(d, {"met_at": at}) if d.kind is kind and d.met_at is None else d for d in deadlines]


def with_deadline(deadlines: list[DeadlineState], kind: DeadlineKind, **changes: Any) -> list[DeadlineState]:
    return [replaced(d, changes) if d.kind is kind else d for d in deadlines]


def responded(state: Complaint, at: datetime) -> Changes:
    """The first response (an offer or an explanation) meets the final-response deadline."""
    return {"responded_at": state.responded_at or at,
            "deadlines": meet(state.deadlines, DeadlineKind.final_response, at)}


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


def parse_event(type_name: str, version: int, payload: dict[str, Any] | str) -> Event:
    """A stored payload back into its event, upcast to the current schema version. The payload is a mapping, or
    its JSON text as the log stores it: pydantic reads a current version's text into the event in one pass
    (a bulk reader's fold then parses no JSON of its own: together a third less than parsing, then validating)."""
    try:
        cls = EVENT_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown event type {type_name!r}") from None
    if isinstance(payload, str) and version == cls.version:
        event: Event = cls.__pydantic_validator__.validate_json(payload)  # model_validate_json's
        return event
    mapping = orjson.loads(payload) if isinstance(payload, str) else payload
    event = cls.__pydantic_validator__.validate_python(cls.upcast(mapping, version))  # model_validate's
    return event
