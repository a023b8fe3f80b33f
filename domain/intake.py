"""The complaint as a business receives it: the JSON a backend in any language sends to start a workflow."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from domain.values import ComplaintId, CustomerId, Line, Money, Text, Timestamp


class Channel(StrEnum):
    """Where the complaint arrived. Public channels are moved to private ones (see the contact ladder)."""

    social = "social"
    email = "email"
    phone = "phone"
    web = "web"
    in_person = "in_person"

    @property
    def is_verbal(self) -> bool:
        """Spoken complaints: several regulators (OJK among them) give them shorter deadlines."""
        return self in (Channel.phone, Channel.in_person)


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class SubjectKind(StrEnum):
    """What the complaint is about. ``payment`` matters to regulators with payment-services rules."""

    order = "order"
    product = "product"
    service = "service"
    payment = "payment"


class Customer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: CustomerId
    name: Line


_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$"
_PHONE = r"^\+?[0-9 ().-]{6,32}$"


class Contact(BaseModel):
    """How to reach the customer privately. At least one way must be given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: Annotated[str, StringConstraints(pattern=_EMAIL, max_length=254)] | None = None
    phone: Annotated[str, StringConstraints(pattern=_PHONE)] | None = None
    handle: Line | None = Field(default=None, description="The public handle the complaint came from, if social.")

    @model_validator(mode="after")
    def _one_way_at_least(self) -> Self:
        if not (self.email or self.phone or self.handle):
            raise ValueError("give at least one of email, phone or handle")
        return self


class Subject(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SubjectKind
    title: Line = Field(description="A few words an operator recognises, e.g. 'Late delivery'.")
    reference: Line | None = Field(default=None, description="Order, product or contract number.")
    value: Money | None = Field(default=None, description="What the order or service was worth, if known.")


class Jurisdiction(StrEnum):
    """Whose rules set the deadlines. ``ID``, ``GB`` and ``US`` have their regulators' rules; other
    countries use the configurable default policy with their own public holidays."""

    ID = "ID"
    GB = "GB"
    US = "US"
    AU = "AU"
    CA = "CA"
    DE = "DE"
    FR = "FR"
    IE = "IE"
    IN = "IN"
    JP = "JP"
    MY = "MY"
    NL = "NL"
    NZ = "NZ"
    PH = "PH"
    SG = "SG"
    TH = "TH"
    VN = "VN"


#: A BCP 47 language tag as customers' systems send it: a language, optionally a script and a region
#: ("id", "en-GB", "zh-Hant-TW"). Which languages have messages is the templates' business (adding one is
#: adding files); a tag with none is answered in the jurisdiction's language.
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?$",
                                            max_length=16)]

#: The language a complaint is answered in when its intake names none: the jurisdiction's.
DEFAULT_LANGUAGE: dict[Jurisdiction, str] = {Jurisdiction.ID: "id", Jurisdiction.GB: "en", Jurisdiction.US: "en"}


def default_language(jurisdiction: Jurisdiction) -> str:
    return DEFAULT_LANGUAGE.get(jurisdiction, "en")


class ComplaintIntake(BaseModel):
    """A complaint as received. ``received_at`` is when the business first got it (a letter opened last
    week and typed in today still started its regulator's clock last week); it defaults to the start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint_id: ComplaintId
    customer: Customer
    contact: Contact
    channel: Channel
    subject: Subject
    description: Text
    severity: Severity
    jurisdiction: Jurisdiction
    occurred_at: Timestamp = Field(description="When the thing complained about happened.")
    received_at: Timestamp | None = None
    language: Language | None = Field(
        default=None, description="The customer's language (BCP 47, e.g. 'id', 'en-GB'): every message to them is "
                                  "written in it. Default: the jurisdiction's (ID: id; GB, US: en).")

    @property
    def answer_in(self) -> str:
        """The language the customer is written to in."""
        return self.language or default_language(self.jurisdiction)

    @field_validator("received_at")
    @classmethod
    def _received_after_it_happened(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        occurred = info.data.get("occurred_at")
        if value is not None and occurred is not None and value < occurred:
            raise ValueError("is before occurred_at")
        return value


class IntakeTimingError(ValueError):
    """The intake's times do not fit the clock: in the future, or older than complaints are taken."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


#: Clocks disagree by a little; more than this into the future is a mistake.
CLOCK_SKEW = timedelta(minutes=5)
#: How old a received complaint may be when it is entered.
MAX_RECEIPT_AGE = timedelta(days=366)
#: How long ago the matter may have happened.
MAX_OCCURRENCE_AGE = timedelta(days=6 * 366)


def check_timing(intake: ComplaintIntake, now: datetime) -> list[IntakeTimingError]:
    """The intake's times against a clock: the starter's wall clock, or the workflow's own time."""
    problems = []
    if intake.occurred_at > now + CLOCK_SKEW:
        problems.append(IntakeTimingError("occurred_at", "is in the future"))
    elif intake.occurred_at < now - MAX_OCCURRENCE_AGE:
        problems.append(IntakeTimingError("occurred_at", "is more than six years ago"))
    if intake.received_at is not None:
        if intake.received_at > now + CLOCK_SKEW:
            problems.append(IntakeTimingError("received_at", "is in the future"))
        elif intake.received_at < now - MAX_RECEIPT_AGE:
            problems.append(IntakeTimingError("received_at", "is more than a year ago"))
    return problems
