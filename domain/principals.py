"""Who may decide what: the roles, the one table of their permissions, and how a principal is recorded.

Every intake and every decision is made by an authenticated principal (issuer, subject, role). The
workflow checks the principal against :data:`PERMISSIONS` before a decision reaches history, and the log
records it as the event's actor, with a hash of the credential (never the credential itself).

``system`` is the workflow itself (deadlines, defaults, fulfilment): no caller can hold it.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    customer = "customer"
    agent = "agent"
    supervisor = "supervisor"
    intake = "intake"
    auditor = "auditor"


SYSTEM = "system"
#: What a caller does when it starts a complaint's workflow (not an update).
SUBMIT = "submit"

#: The customer's own decisions. An agent or a supervisor may record one the customer made by phone or in
#: person: it is recorded as made by the agent on the customer's behalf.
CUSTOMER_DECISIONS = frozenset({"choose_remedy", "choose_option", "record_follow_up", "withdraw"})
_AGENT = frozenset({"move_offline", "log_message", "assess", "apologise_for_conduct", "escalate",
                    "record_churn"}) | CUSTOMER_DECISIONS

#: The one table: what each role may do. ``auditor`` reads (queries, the log) and decides nothing.
PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.customer: CUSTOMER_DECISIONS | {"log_message"},
    Role.agent: _AGENT | {SUBMIT},
    Role.supervisor: _AGENT | {SUBMIT, "close", "extend_deadline"},
    Role.intake: frozenset({SUBMIT}),
    Role.auditor: frozenset(),
}

# Subjects and issuers are written into the actor text, so they are kept to characters that cannot be
# confused with its separators.
SUBJECT_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")
ISSUER_PATTERN = re.compile(r"[A-Za-z0-9._~:/?#@!$&'()*+,=%-]{1,200}")


class Forbidden(Exception):
    """The principal is authenticated but its role may not make this decision (here)."""

    def __init__(self, message: str, required: list[str]) -> None:
        super().__init__(message)
        self.required = required


class Principal(BaseModel):
    """An authenticated caller: who vouched for it (issuer), who it is (subject), in which role, and the
    sha256 of the credential it presented (so an auditor can match a decision to a token without the log
    ever holding one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(pattern=f"^{ISSUER_PATTERN.pattern}$")
    subject: str = Field(pattern=f"^{SUBJECT_PATTERN.pattern}$")
    role: Role
    credential_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @property
    def name(self) -> str:
        """``role:subject``, e.g. ``agent:ana``."""
        return f"{self.role.value}:{self.subject}"

    def actor(self, on_behalf_of: str | None = None) -> str:
        """The text the log records as the actor: ``agent:ana;iss=<issuer>;cred=<sha256>[;for=customer:C1]``."""
        text = f"{self.name};iss={self.issuer};cred={self.credential_sha256}"
        return text + (f";for={on_behalf_of}" if on_behalf_of else "")


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


class RecordedActor(BaseModel):
    """An actor as the log holds it, read back: ``system``, a legacy name (``agent:ana``), or a principal."""

    model_config = ConfigDict(frozen=True)

    name: str
    issuer: str | None = None
    credential_sha256: str | None = None
    on_behalf_of: str | None = None

    @classmethod
    def parse(cls, text: str) -> RecordedActor:
        name, *attributes = text.split(";")
        fields = dict(a.partition("=")[::2] for a in attributes)
        return cls(name=name, issuer=fields.get("iss"), credential_sha256=fields.get("cred"),
                   on_behalf_of=fields.get("for"))

    @property
    def authenticated(self) -> bool:
        return self.issuer is not None and self.credential_sha256 is not None

    def describe(self) -> str:
        """How a timeline shows it: ``agent:ana for customer:C1 (issuer)``."""
        text = self.name + (f" for {self.on_behalf_of}" if self.on_behalf_of else "")
        return text + (f" ({self.issuer})" if self.issuer else "")


def required_roles(action: str) -> list[str]:
    return [role.value for role, allowed in PERMISSIONS.items() if action in allowed]


def authorise(principal: Principal, action: str, *, customer_id: str, by: str | None = None,
              sender: str | None = None) -> str:
    """The actor to record for ``principal`` doing ``action`` on a complaint of ``customer_id``, or
    :class:`Forbidden` naming the roles that may.

    ``by`` (a command's optional field) may only restate the caller (``agent`` or ``agent:ana``) or, for an
    agent or supervisor making a customer's decision, name the customer (``customer`` or
    ``customer:<id>``); anything else is somebody else's name, and refused."""
    if action not in PERMISSIONS[principal.role]:
        roles = required_roles(action)
        raise Forbidden(f"{principal.name} may not {action}: it needs the role "
                        + (" or ".join(roles) if roles else "(none: nobody may)"), roles)
    customer = f"{Role.customer.value}:{customer_id}"
    if principal.role is Role.customer and principal.subject != customer_id:
        raise Forbidden(f"{principal.name} is not this complaint's customer", [Role.customer.value])
    if principal.role is Role.customer and sender not in (None, Role.customer.value):
        raise Forbidden(f"{principal.name} may log only the customer's own messages", [Role.agent.value])
    staff = principal.role in (Role.agent, Role.supervisor)
    names_customer = by in (Role.customer.value, customer)
    # What the customer may do themselves, staff may record for them: always so for the customer's own
    # decisions, and for a message when ``by`` says the customer wrote it.
    for_customer = staff and action in PERMISSIONS[Role.customer]
    if by is not None and by not in (principal.role.value, principal.name) and not (for_customer and names_customer):
        raise Forbidden(f"'by' names {by!r}, but the authenticated caller is {principal.name}", required_roles(action))
    on_behalf = for_customer and (action in CUSTOMER_DECISIONS or names_customer)
    return principal.actor(customer if on_behalf else None)
