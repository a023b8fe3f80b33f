"""What people ask of a complaint: the arguments of the workflow's updates, a JSON contract for any backend.

Each command checks its own shape here; whether it fits the complaint's current stage is decided in
:mod:`domain.decide`, against the state.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, model_validator

from domain.intake import Channel
from domain.values import Actor, Line, Text, Timestamp
from domain.vocabulary import CustomerChoice, DeadlineKind, RemedyKind, RootCause, Rung, Sender, Verdict

#: An apology or a notice is short (source 002: "brief and professional").
MAX_SHORT_CHARS = 600


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    by: Actor | None = Field(
        default=None,
        description="Whose decision this is, when not the authenticated caller's own: 'customer' when an agent "
                    "records what the customer decided by phone or in person. It can only restate the caller "
                    "('agent:ana') or name the customer; the log records the authenticated principal.")
    #: Set by the worker's converter when the argument reached Temporal unencrypted (see codec.encryption).
    _plaintext: bool = PrivateAttr(default=False)

    @property
    def plaintext(self) -> bool:
        return self._plaintext


ShortText = Annotated[Text, Field(max_length=MAX_SHORT_CHARS)]


class Assess(Command):
    """Validation: did we break a promise, or did the customer not follow the agreement?"""

    verdict: Verdict
    root_cause: RootCause
    findings: Text
    clause: Line | None = Field(default=None, description="The promise or agreement clause at stake.")
    apology: ShortText | None = Field(default=None, description="Own words; a standard apology otherwise.")
    remedies: list[RemedyKind] | None = Field(
        default=None, description="Kinds of remedy to offer (two or more); the catalogue's choice otherwise."
    )
    default_remedy: RemedyKind | None = Field(default=None, description="Applies if the offer expires.")
    offer_days: Annotated[int, Strict(), Field(ge=1, le=60)] = 7
    sop_reference: Line | None = Field(default=None, description="The SOP or agreement section explained.")
    explanation: Text | None = Field(default=None, description="The education text; a standard one otherwise.")

    @model_validator(mode="after")
    def _fits_verdict(self) -> Self:
        if self.verdict is Verdict.valid and (self.sop_reference or self.explanation):
            raise ValueError("a valid complaint gets an apology and remedies, not an explanation of the rules")
        if self.verdict is not Verdict.valid and not self.sop_reference:
            raise ValueError(f"sop_reference is required when the verdict is {self.verdict.value}")
        if self.verdict is Verdict.invalid and (self.apology or self.remedies or self.default_remedy):
            raise ValueError("an invalid complaint gets no apology or remedy (apologise for conduct separately)")
        if self.remedies is not None and len(set(self.remedies)) < 2:
            raise ValueError("remedies must name at least two different kinds")
        if self.default_remedy and self.remedies and self.default_remedy not in self.remedies:
            raise ValueError("default_remedy must be one of remedies")
        return self


class ChooseRemedy(Command):
    option_id: Line


class ChooseOption(Command):
    """On an invalid complaint: stay under the agreed rules, or leave without penalty."""

    option: CustomerChoice
    reason: Text | None = None


class MoveOffline(Command):
    """Up the contact ladder with the detail for the new rung: an email, a phone number, or a meeting."""

    rung: Literal[Rung.email, Rung.phone, Rung.meeting]
    detail: Line = Field(description="Email address, phone number, or meeting place.")
    meeting_at: Timestamp | None = None

    @model_validator(mode="after")
    def _detail_fits_rung(self) -> Self:
        if self.rung is Rung.meeting and self.meeting_at is None:
            raise ValueError("meeting_at is required to book a meeting")
        if self.rung is not Rung.meeting and self.meeting_at is not None:
            raise ValueError("meeting_at only goes with the meeting rung")
        if self.rung is Rung.email and ("@" not in self.detail or " " in self.detail.strip()):
            raise ValueError("detail must be an email address for the email rung")
        if self.rung is Rung.phone and not any(c.isdigit() for c in self.detail):
            raise ValueError("detail must be a phone number for the phone rung")
        return self


class LogMessage(Command):
    """A message with the customer, kept verbatim as evidence (source 003)."""

    sender: Sender
    channel: Channel
    text: Text
    at: Timestamp | None = Field(default=None, description="When it was said; now if not given.")


class RecordFollowUp(Command):
    satisfaction: Annotated[int, Strict(), Field(ge=1, le=5)]
    comment: Text | None = None


class RecordChurn(Command):
    reason: Text


class Withdraw(Command):
    reason: Text | None = None


class Escalate(Command):
    """Hand the complaint to a supervisor: it waits at stage escalated until a supervisor closes it."""

    to: Line = Field(description="Who takes it (a supervisor, a team).")
    reason: Text


class ExtendDeadline(Command):
    kind: DeadlineKind = DeadlineKind.final_response
    reason: Text
    notice: ShortText = Field(description="What the customer is told about the extension.")


class Close(Command):
    """A supervisor closes an escalated complaint."""

    outcome: Literal["resolved", "unresolved"]
    note: Text


class ApologiseForConduct(Command):
    """An apology for tone or behaviour; on an invalid complaint it admits nothing else."""

    text: ShortText


#: Commands by update name: what `complaints schema` prints and the workflow accepts.
COMMANDS: dict[str, type[Command]] = {
    "assess": Assess,
    "choose_remedy": ChooseRemedy,
    "choose_option": ChooseOption,
    "move_offline": MoveOffline,
    "log_message": LogMessage,
    "record_follow_up": RecordFollowUp,
    "record_churn": RecordChurn,
    "withdraw": Withdraw,
    "escalate": Escalate,
    "extend_deadline": ExtendDeadline,
    "close": Close,
    "apologise_for_conduct": ApologiseForConduct,
}
