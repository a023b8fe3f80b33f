"""The words of the complaint process (source documents 002-004), as enums shared by commands and events."""

from __future__ import annotations

from enum import StrEnum

from domain.intake import Channel, SubjectKind


class Stage(StrEnum):
    """Where a complaint stands, and so which decisions it can take."""

    received = "received"
    awaiting_assessment = "awaiting_assessment"
    awaiting_remedy_choice = "awaiting_remedy_choice"
    fulfilling_remedy = "fulfilling_remedy"
    awaiting_option_choice = "awaiting_option_choice"
    awaiting_follow_up = "awaiting_follow_up"
    escalated = "escalated"
    closed = "closed"


class Verdict(StrEnum):
    """Did we break a promise (valid), did the customer not follow the agreement (invalid), or both?"""

    valid = "valid"
    invalid = "invalid"
    partially_valid = "partially_valid"


class RootCause(StrEnum):
    product = "product"
    service = "service"
    communication = "communication"
    customer_misunderstanding = "customer_misunderstanding"
    third_party = "third_party"


class ChurnCategory(StrEnum):
    """What a lost customer teaches: fix the product, or fix the service (source 004)."""

    product = "product"
    service = "service"


def churn_category(root_cause: RootCause | None, subject: SubjectKind) -> ChurnCategory:
    """A root cause's category; before any assessment, what the complaint was about decides."""
    if root_cause is not None:
        return ChurnCategory.product if root_cause is RootCause.product else ChurnCategory.service
    return ChurnCategory.product if subject is SubjectKind.product else ChurnCategory.service


class Rung(StrEnum):
    """The contact ladder: a public complaint moves to private channels, one way only (source 002)."""

    public = "public"
    email = "email"
    phone = "phone"
    meeting = "meeting"

    @property
    def height(self) -> int:
        return list(Rung).index(self)

    @staticmethod
    def of(channel: Channel) -> Rung:
        """The rung a complaint starts on: where it was received."""
        return {
            Channel.social: Rung.public,
            Channel.email: Rung.email,
            Channel.web: Rung.email,
            Channel.phone: Rung.phone,
            Channel.in_person: Rung.meeting,
        }[channel]

    def next(self) -> Rung | None:
        rungs = list(Rung)
        return rungs[self.height + 1] if self.height + 1 < len(rungs) else None


class RemedyKind(StrEnum):
    """Money is not the only answer (source 002): offer equivalent options of several kinds."""

    voucher = "voucher"
    replacement = "replacement"
    repair = "repair"
    discount = "discount"
    service_credit = "service_credit"
    refund = "refund"


class CustomerChoice(StrEnum):
    """On an invalid complaint: carry on under the agreed rules, or a dignified way out (source 003)."""

    stay = "stay"
    leave = "leave"


class Sender(StrEnum):
    customer = "customer"
    agent = "agent"


class DeadlineKind(StrEnum):
    acknowledgement = "acknowledgement"
    assessment = "assessment"
    final_response = "final_response"


class Outcome(StrEnum):
    resolved = "resolved"
    unresolved = "unresolved"
    unconfirmed = "unconfirmed"
    withdrawn = "withdrawn"
    customer_left = "customer_left"
