"""What people ask of a complaint: the arguments of the workflow's updates, a JSON contract for any backend.

Each command checks its own shape here; whether it fits the complaint's current stage is decided in
:mod:`domain.decide`, against the state.

A command is written down once, here: its fields with their descriptions, its docstring and its example are
what `complaints schema` prints (the contract), and the `complaints` decision commands are generated from
them (cli/decisions.py). Where a field is typed differently at the command line than ``--field-name VALUE``,
its annotation carries a :class:`CommandLine` hint, which pydantic ignores: the contract does not show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, model_validator

from domain.intake import Channel
from domain.values import Actor, Line, Text, Timestamp
from domain.vocabulary import CustomerChoice, DeadlineKind, RemedyKind, RootCause, Rung, Sender, Verdict

#: An email's Message-ID as RFC 5322 writes it (``<left@right>``, printable ASCII, no space), leniently.
_MSG_ID_PART = r"[\x21-\x3b\x3d\x3f\x41-\x7e]{1,250}"
MessageId = Annotated[str, Strict(), Field(pattern=f"^<{_MSG_ID_PART}@{_MSG_ID_PART}>$", max_length=512)]

#: An apology or a notice is short (source 002: "brief and professional").
MAX_SHORT_CHARS = 600


@dataclass(frozen=True)
class CommandLine:
    """How a field is given to its `complaints` command, where that is not ``--field-name VALUE``.

    ``argument``: by position, after the complaint id, in the order of the fields (``complaints choose-remedy
    C-1001 A``). ``option``: under another option name (``--sop`` for ``sop_reference``; a list field's option is
    repeated, ``--remedy voucher --remedy refund``). Put in a field's annotation, ``Annotated[Line, ARGUMENT]``:
    pydantic keeps it as metadata and neither validation nor the JSON Schema sees it.
    """

    argument: bool = False
    option: str | None = None


#: A field given by position on the command line.
ARGUMENT = CommandLine(argument=True)


def _example_in_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The command's example, in the JSON Schema's own ``examples`` keyword (what the CLI's help shows too)."""
    example = getattr(model, "example", None)
    if example is not None:
        schema["examples"] = [example]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_example_in_schema)

    #: A decision's argument as a backend would send it: valid, and shown in its schema and its command's help.
    example: ClassVar[dict[str, Any] | None] = None
    #: The command's name at the command line, where it is not its update's name with dashes.
    cli_name: ClassVar[str | None] = None

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
    """Record the verdict. Did we break a promise (valid: an apology and remedies to choose from), did the
    customer not follow the agreement (invalid: the rules explained, and options), or both (partially valid)?"""

    example = {
        "verdict": "valid", "root_cause": "service", "findings": "Promised 2 days, took 9.",
        "remedies": ["voucher", "refund"], "default_remedy": "voucher"}

    verdict: Verdict = Field(description="valid: we broke a promise; invalid: the customer did not follow the "
                                         "agreement; partially_valid: both.")
    root_cause: RootCause = Field(description="What caused the complaint, as the report counts it.")
    findings: Text = Field(description="What the assessment found.")
    clause: Line | None = Field(default=None, description="The promise or agreement clause at stake.")
    apology: ShortText | None = Field(default=None,
                                      description="Own words instead of the standard apology (not when invalid).")
    remedies: Annotated[list[RemedyKind] | None, CommandLine(option="--remedy")] = Field(
        default=None, description="Kinds of remedy to offer, two or more (not when invalid); the catalogue's "
                                  "choice otherwise.")
    default_remedy: RemedyKind | None = Field(default=None,
                                              description="Applies if the offer expires: one of the remedies.")
    offer_days: Annotated[int, Strict(), Field(ge=1, le=60)] = Field(default=7, description="Days the offer stands.")
    sop_reference: Annotated[Line | None, CommandLine(option="--sop")] = Field(
        default=None, description="The SOP or agreement section explained: required when invalid or partially "
                                  "valid.")
    explanation: Text | None = Field(default=None, description="The education text instead of the standard one "
                                                               "(invalid or partially valid).")

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
    """The customer's choice among the remedies offered."""

    example = {"option_id": "A", "by": "customer"}

    option_id: Annotated[Line, ARGUMENT] = Field(description="The offered option's id (A, B, ...).")


class ChooseOption(Command):
    """On an invalid complaint: the customer stays under the agreed rules, or leaves without penalty."""

    example = {"option": "stay", "by": "customer"}

    option: Annotated[CustomerChoice, ARGUMENT] = Field(
        description="stay: under the agreed rules; leave: without penalty.")
    reason: Text | None = Field(default=None, description="The customer's reason.")


class MoveOffline(Command):
    """Move the conversation up the contact ladder (public -> email -> phone -> meeting, never back down), with
    the detail for the new rung: an email address, a phone number, or a meeting place and time."""

    example = {"rung": "email", "detail": "siti.rahma@example.co.id"}

    rung: Annotated[Literal[Rung.email, Rung.phone, Rung.meeting], ARGUMENT] = Field(
        description="The rung to move to: a step up the ladder only.")
    detail: Annotated[Line, ARGUMENT] = Field(description="Email address, phone number, or meeting place.")
    meeting_at: Timestamp | None = Field(
        default=None, description="When the meeting is, ISO 8601 with an offset (the meeting rung only).")

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
    """Keep a message with the customer, verbatim, as evidence (source 003)."""

    example = {
        "sender": "customer", "channel": "email", "text": "My parcel has still not arrived.", "by": "customer"}

    sender: Sender = Field(description="Who wrote or said it.")
    channel: Channel = Field(description="Where it was written or said.")
    text: Text = Field(description="The message, verbatim.")
    at: Timestamp | None = Field(
        default=None, description="When it was said, ISO 8601 with an offset; now if not given.")
    message_id: MessageId | None = Field(
        default=None, description="An email's Message-ID (<left@right>): a message already kept with this id is "
                                  "refused, so a reply read twice is kept once.")
    in_reply_to: MessageId | None = Field(
        default=None, description="The Message-ID of our message this one answers, when it says so.")


class RecordFollowUp(Command):
    """The customer's satisfaction at the follow-up: 3 or more closes the complaint; 2 or less reopens it (twice
    at most), then a supervisor takes it."""

    example = {"satisfaction": 5, "comment": "Voucher received, thank you.",
                                                "by": "customer"}

    satisfaction: Annotated[int, Strict(), Field(ge=1, le=5), ARGUMENT] = Field(
        description="1 (very unhappy) to 5 (very happy).")
    comment: Text | None = Field(default=None, description="What the customer said.")


class RecordChurn(Command):
    """The customer left: recorded with the category of the root cause (product or service), and closed."""

    example = {"reason": "Moved to a competitor after the delay."}

    reason: Text = Field(description="Why the customer left.")


class Withdraw(Command):
    """The customer withdraws the complaint: it is closed as withdrawn."""

    example = {"reason": "Found the right item in the parcel.", "by": "customer"}

    reason: Text | None = Field(default=None, description="The customer's reason.")


class Escalate(Command):
    """Hand the complaint to a supervisor: it waits at stage escalated until a supervisor closes it."""

    example = {"to": "supervisor", "reason": "The customer mentioned the regulator."}

    to: Line = Field(description="Who takes it (a supervisor, a team).")
    reason: Text = Field(description="Why it is escalated.")


class ExtendDeadline(Command):
    """Extend a deadline once, where its rule allows (e.g. OJK: 10 more working days, with notice)."""

    example = {
        "reason": "Waiting for the courier investigation.",
        "notice": "We need 10 more working days to complete our investigation."}

    kind: DeadlineKind = Field(default=DeadlineKind.final_response, description="Which deadline.")
    reason: Text = Field(description="Why more time is needed.")
    notice: ShortText = Field(description="What the customer is told about the extension.")


class Close(Command):
    """A supervisor closes an escalated complaint."""

    example = {
        "outcome": "resolved", "note": "Refunded by hand at the branch; the customer confirmed by phone."}

    outcome: Literal["resolved", "unresolved"] = Field(description="Whether the complaint was resolved.")
    note: Text = Field(description="The supervisor's decision.")


class ApologiseForConduct(Command):
    """Apologise for tone or behaviour: on an invalid complaint it admits nothing else."""

    example = {"text": "We apologise for the tone of our staff at the front desk."}
    cli_name = "apologise"

    text: Annotated[ShortText, ARGUMENT] = Field(description="A short apology for tone or conduct.")


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
