"""What workflows and activities say to each other: pure models, and a typed stub of each activity,
importable from workflow code.

Workflows call the stubs at the end of this module (``workflow.execute_activity(msg.append_events, ...)``),
so the argument and the result are checked by the type checker and a renamed activity fails at import,
while workflow modules never import the I/O code behind them. The implementations in activities/ register
under the same names; tests/unit/test_completeness.py checks that each one's signature is its stub's."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from domain.chain import ChainHead, Draft, Recorded
from domain.events import Deadline, RemedyOption
from domain.intake import Channel, Jurisdiction, Severity, SubjectKind
from domain.values import Money
from domain.vocabulary import RemedyKind

APPEND_EVENTS = "append_events"
COMPUTE_DEADLINES = "compute_deadlines"
PLAN_FOLLOW_UP = "plan_follow_up"
QUOTE_REMEDIES = "quote_remedies"
FULFIL_REMEDY = "fulfil_remedy"
ADMIT = "admit"
FORGET_RUN = "forget_run"
DELIVER_MESSAGE = "deliver_message"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppendEvents(_Message):
    """Seal the personal fields of ``drafts`` with the customer's key, chain them after ``head`` at
    ``occurred_at``, and store them."""

    complaint_id: str
    customer_id: str
    head: ChainHead
    occurred_at: datetime
    drafts: list[Draft]
    #: The update whose handler decided these events (None: the workflow's own decision), stored with them.
    update_id: str | None = None


class Appended(_Message):
    """The records as stored (personal fields sealed): what the workflow folds."""

    records: list[Recorded]
    #: True when ``records`` are not the drafts asked for but another batch the same run appended at that place,
    #: from the same head, in a workflow task Temporal then lost: the run folds it and decides again.
    decided_before: bool = False
    #: The update that decided that batch (None: the workflow's own decision, or not ``decided_before``).
    decided_by_update: str | None = None


class DeadlineRequest(_Message):
    jurisdiction: Jurisdiction
    channel: Channel
    subject_kind: SubjectKind
    received_at: datetime
    #: For a reopened complaint: when it was reopened (its deadlines are counted as the policy says).
    reopened_at: datetime | None = None


class Schedule(_Message):
    policy: str
    calendar: str
    deadlines: list[Deadline]


class FollowUpRequest(_Message):
    jurisdiction: Jurisdiction
    responded_at: datetime


class FollowUpDates(_Message):
    at: datetime
    answer_by: datetime


class QuoteRequest(_Message):
    """The subject title may come sealed (it is personal data): the catalogue opens it with the customer's
    key, found through ``complaint_id``."""

    kinds: list[RemedyKind] | None
    default: RemedyKind | None
    subject_kind: SubjectKind
    subject_title: str
    value: Money | None
    severity: Severity
    jurisdiction: Jurisdiction
    complaint_id: str | None = None


class Quote(_Message):
    options: list[RemedyOption]
    default_option: str
    #: The subject title as the customer wrote it (opened), for the texts written to them.
    subject_title: str | None = None


class FulfilmentRequest(_Message):
    """Idempotent by (complaint_id, offer_round, option.id): asking twice fulfils once. Option ids restart at
    A on every offer, so the round (the reopen count when it was offered) tells two offers apart."""

    complaint_id: str
    option: RemedyOption
    offer_round: int = 0


class FulfilmentReceipt(_Message):
    reference: str


class RunOptions(_Message):
    """How a complaint's workflow runs: worker configuration (settings.py), never a caller's input. The
    workflow reads them through :data:`ADMIT` at the start of each run, so they are recorded in its history
    and a replay never depends on today's configuration."""

    max_history_events: int = Field(default=8_000, ge=100)
    # With backoff from 2 s to a minute, ten attempts span about five minutes: a provider (or our own
    # database) away for a while is waited out; one that keeps refusing escalates to a supervisor.
    fulfilment_attempts: int = Field(default=10, ge=1, le=100)
    # Appends as local activities (run in the workflow task, recorded as markers): faster (`make bench`). A
    # local activity's input is not in history before it runs, so a worker killed between the append and the
    # end of its workflow task runs it again with a new workflow.now(); the log then returns the batch the same
    # run stored there for the same decision, and the workflow folds that (activities/eventlog.py).
    local_appends: bool = True
    # The remedy quote as a local activity too, beside local appends. Set by the worker when its catalogue is
    # the built-in one (a read of the log and a computation: quick): a catalogue handed in may be slow, and a
    # local activity holds its workflow task, and the clock's timers, for as long as it runs. Histories
    # admitted before it (the field absent) ask for the quote as an activity, as they ran.
    local_quotes: bool = False
    # A message to the customer: with backoff from 2 s to a minute, eight attempts span about four minutes of a
    # mail relay away; then it is recorded undelivered and a supervisor is told.
    delivery_attempts: int = Field(default=8, ge=1, le=100)
    #: How long a run refused for plaintext personal data stays in Temporal (for its caller to read why)
    #: before it is deleted.
    refused_run_ttl_seconds: int = Field(default=60, ge=1, le=120)


class DeliveryRequest(_Message):
    """Render the message ``template`` owes the customer (in ``language``, or the nearest the templates have)
    from the complaint's log, opened with the customer's key, and deliver it. ``key`` names the message within
    the complaint (its Message-ID derives from it); ``thread`` is the Message-IDs sent before, oldest first."""

    complaint_id: str
    key: str
    template: str
    language: str
    thread: list[str] = []
    #: What the message is about, where its template needs it (the rung a move request asks for).
    about: str | None = None


class DeliveryReport(_Message):
    """``sent`` by a channel's provider, or ``handed_to_agent`` where no channel reaches the customer. Subject,
    body and recipient are personal data: the workflow records them in a sealed event, never in a log line."""

    outcome: Literal["sent", "handed_to_agent"]
    channel: str
    language: str
    subject: str
    body: str
    recipient: str = ""
    message_id: str = ""
    provider_id: str = ""


class AdmitRequest(_Message):
    """Everything the perimeter checks before a run acts: the start's credential (a fresh start) or the
    state carried over (a continuation), and whether its input came in plaintext."""

    complaint_id: str
    customer_id: str
    at: datetime
    credential: str | None = None
    carried_head: ChainHead | None = None
    plaintext: bool = False


class Refusal(_Message):
    type: str
    message: str


class Admission(_Message):
    """The run's options, and either the actor of the intake or why the run may not go on."""

    options: RunOptions
    actor: str | None = None
    refusal: Refusal | None = None


class ForgetRun(_Message):
    """Delete a refused run from Temporal after ``after_seconds`` (its input held plaintext personal data)."""

    workflow_id: str
    run_id: str
    after_seconds: int


# --- the activities, as workflows call them (stubs: the worker runs the implementations in activities/) ---


def _stub(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} is a stub for workflows to call; the worker runs its implementation")


@activity.defn(name=ADMIT)
async def admit(request: AdmitRequest) -> Admission:
    """activities/admission.py: the perimeter's checks at the start of a run (a local activity)."""
    raise _stub(ADMIT)


@activity.defn(name=FORGET_RUN)
async def forget_run(request: ForgetRun) -> None:
    """activities/admission.py: delete a refused run."""
    raise _stub(FORGET_RUN)


@activity.defn(name=APPEND_EVENTS)
async def append_events(request: AppendEvents) -> Appended:
    """activities/eventlog.py: seal, chain and store a batch of events."""
    raise _stub(APPEND_EVENTS)


@activity.defn(name=COMPUTE_DEADLINES)
async def compute_deadlines(request: DeadlineRequest) -> Schedule:
    """activities/calendar.py: the regulator's deadlines on the jurisdiction's calendar."""
    raise _stub(COMPUTE_DEADLINES)


@activity.defn(name=PLAN_FOLLOW_UP)
async def plan_follow_up(request: FollowUpRequest) -> FollowUpDates:
    """activities/calendar.py: when to ask about satisfaction, and by when the answer is due."""
    raise _stub(PLAN_FOLLOW_UP)


@activity.defn(name=QUOTE_REMEDIES)
async def quote_remedies(request: QuoteRequest) -> Quote:
    """activities/remedies.py: the remedies to offer, priced by the catalogue."""
    raise _stub(QUOTE_REMEDIES)


@activity.defn(name=FULFIL_REMEDY)
async def fulfil_remedy(request: FulfilmentRequest) -> FulfilmentReceipt:
    """activities/remedies.py: order the chosen remedy from the provider (idempotent per offer and option)."""
    raise _stub(FULFIL_REMEDY)


@activity.defn(name=DELIVER_MESSAGE)
async def deliver_message(request: DeliveryRequest) -> DeliveryReport:
    """activities/delivery.py: render a message from its template and send it (or hand it to an agent)."""
    raise _stub(DELIVER_MESSAGE)
