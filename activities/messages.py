"""What workflows and activities say to each other. Pure models, importable from workflow code.

Activities are called by name so that workflow modules never import the I/O code behind them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

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


class Appended(_Message):
    """The records as stored (personal fields sealed): what the workflow folds."""

    records: list[Recorded]


class DeadlineRequest(_Message):
    jurisdiction: Jurisdiction
    channel: Channel
    subject_kind: SubjectKind
    received_at: datetime


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
    kinds: list[RemedyKind] | None
    default: RemedyKind | None
    subject_kind: SubjectKind
    subject_title: str
    value: Money | None
    severity: Severity
    jurisdiction: Jurisdiction


class Quote(_Message):
    options: list[RemedyOption]
    default_option: str


class FulfilmentRequest(_Message):
    """Idempotent by (complaint_id, option.id): asking twice fulfils once."""

    complaint_id: str
    option: RemedyOption


class FulfilmentReceipt(_Message):
    reference: str
