"""The suite's identity provider: one issuer key, trusted by every worker the suite starts, and a client
interceptor that presents a fresh token for each call when the test did not choose one (``acting_as``).

Which principal: a start is the ``intake`` backend; ``close`` and ``extend_deadline`` a supervisor; every
other decision an agent (a customer's decision is then recorded as made on the customer's behalf). A
command whose ``by`` names a principal (``supervisor:budi``, ``agent:tom``) is sent as that principal.
Tokens are minted at the Temporal server's own time, so they hold on the time-skipping server too."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
)

from identity.client import credential_header
from identity.tokens import HEADER, TRUSTED_ENV, IssuerKey

ISSUER = IssuerKey.generate("https://id.complaints.test")
#: The customer gateway's own issuer (customer/gateway.py): the workers believe it for the customer role only.
GATEWAY = IssuerKey.generate("https://gateway.complaints.test")
os.environ[TRUSTED_ENV] = json.dumps([ISSUER.trusted(), GATEWAY.trusted(roles=["customer"])])

SUPERVISOR_DECISIONS = {"close", "extend_deadline"}


async def _wall_clock() -> datetime:
    return datetime.now(UTC)


def token(role: str, subject: str = "ana", *, at: datetime | None = None, ttl: timedelta = timedelta(hours=1),
          key: IssuerKey = ISSUER, **claims: Any) -> str:
    return key.issue(subject, role, ttl=ttl, now=at, **claims)


def principal_for(update: str | None, arg: Any) -> tuple[str, str]:
    """(role, subject) the suite acts as for a start (update None) or an update with argument ``arg``."""
    if update is None:
        return "intake", "suite-backend"
    by = getattr(arg, "by", None) or (arg.get("by") if isinstance(arg, dict) else None)
    if by and ":" in by and not by.startswith("customer"):
        role, subject = by.split(":", 1)
        return role, subject
    if by in ("supervisor", "agent"):
        return by, "budi" if by == "supervisor" else "ana"
    if update in SUPERVISOR_DECISIONS:
        return "supervisor", "budi"
    return "agent", "ana"


class SuitePrincipals(Interceptor):
    def __init__(self, clock: Callable[[], Awaitable[datetime]] = _wall_clock, key: IssuerKey = ISSUER) -> None:
        self.clock = clock
        self.key = key

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next, self)


class _Outbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, root: SuitePrincipals) -> None:
        super().__init__(next)
        self.root = root

    async def _header(self, headers: Mapping[str, Payload], update: str | None, args: Any) -> Mapping[str, Payload]:
        if HEADER in headers:
            return headers
        role, subject = principal_for(update, args[0] if args else None)
        minted = token(role, subject, at=await self.root.clock(), key=self.root.key)
        return {**headers, HEADER: credential_header(minted)}

    async def start_workflow(self, input: StartWorkflowInput) -> Any:
        input.headers = await self._header(input.headers, None, input.args)
        return await super().start_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
        input.headers = await self._header(input.headers, input.update, input.args)
        return await super().start_workflow_update(input)
