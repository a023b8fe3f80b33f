"""The clients' side: every start and update carries the caller's token in the :data:`HEADER` header.

``CredentialInterceptor`` is installed on every client the project makes (see codec.connect_temporal). The
token is the one set with :func:`acting_as` for the calls inside it, else the client's default
(COMPLAINTS_TOKEN, or the CLI's ``--token``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
)
from temporalio.converter import default as default_converter

from identity.tokens import HEADER, TOKEN_ENV

_acting: ContextVar[str | None] = ContextVar("complaints_acting_token", default=None)


@contextlib.contextmanager
def acting_as(token: str | None) -> Iterator[None]:
    """Calls made inside carry ``token`` (None: the client's default)."""
    reset = _acting.set(token)
    try:
        yield
    finally:
        _acting.reset(reset)


def credential_header(token: str) -> Payload:
    """The header's value: the token as a JSON string (what ``temporal --headers complaints_token='"..."'``
    and a TypeScript client's ``defaultPayloadConverter.toPayload(token)`` send)."""
    payload = default_converter().payload_converter.to_payloads([token])[0]
    return payload


class CredentialInterceptor(Interceptor):
    def __init__(self, token: str | None = None) -> None:
        self.token = token

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next, self)


class _Outbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, root: CredentialInterceptor) -> None:
        super().__init__(next)
        self.root = root

    def _with_token(self, headers: Mapping[str, Payload]) -> Mapping[str, Payload]:
        token = _acting.get() or self.root.token or os.environ.get(TOKEN_ENV)
        return {**headers, HEADER: credential_header(token)} if token else headers

    async def start_workflow(self, input: StartWorkflowInput) -> Any:
        input.headers = self._with_token(input.headers)
        return await super().start_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> Any:
        input.headers = self._with_token(input.headers)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(self, input: StartWorkflowUpdateWithStartInput) -> Any:
        input.start_workflow_input.headers = self._with_token(input.start_workflow_input.headers)
        input.update_workflow_input.headers = self._with_token(input.update_workflow_input.headers)
        return await super().start_update_with_start_workflow(input)
