"""The workflow's doors: every start and every update presents a credential in a Temporal header.

An inbound interceptor, built by the worker with the issuers it trusts:
- on an update's **validator** (which never runs on replay) it verifies the token at ``workflow.now()`` and
  refuses a plaintext argument; a refusal raised here leaves no trace in history;
- on an update's **handler** it reads the principal from the same header without verifying it again (it
  was verified when the update was accepted; a replay must not depend on today's keys or clock);
- on the **start** it passes the start's credential to the run, which has it checked by an activity
  (whose answer is recorded in history).

The principal is handed to workflow code through a context variable, per update task.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from domain.principals import Principal
from identity.tokens import HEADER, TrustedIssuers, Unauthenticated

PLAINTEXT_UPDATE = ("the decision reached Temporal in plaintext: send it through the codec (the project's "
                    "client, the temporal CLI with --codec-endpoint, or a remote codec calling the codec server)")

_start_credential: ContextVar[str | None] = ContextVar("complaints_start_credential", default=None)
_principal: ContextVar[Principal | None] = ContextVar("complaints_principal", default=None)


def start_credential() -> str | None:
    """The token the workflow's start carried (None without one)."""
    return _start_credential.get()


def current_principal() -> Principal | None:
    """The principal of the update being validated or handled (None: no credential, an old history)."""
    return _principal.get()


def credential(headers: Any) -> str | None:
    payload: Payload | None = headers.get(HEADER) if headers else None
    if payload is None:
        return None
    try:
        value = json.loads(payload.data)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def plaintext(value: object) -> bool:
    """Whether the codec found this argument unencrypted (see codec.encryption.PLAINTEXT)."""
    return bool(getattr(value, "plaintext", False))


#: Modules the doors use inside the workflow sandbox, passed through rather than imported again there:
#: cryptography's native code raises its exceptions by importing them, which must find the real modules
#: (re-imported in the sandbox, a failed signature check aborts the process). OpenTelemetry's, for the tracing
#: interceptor's workflow side (worker.py), which keeps its context in module state.
PASSTHROUGH_MODULES = ("cryptography", "jwt", "identity", "opentelemetry")
#: The workflows' own code. The SDK imports a workflow's module afresh for every run, to isolate module state;
#: these modules hold none (constants, classes and functions only), and their fresh copies were most of what a
#: cached complaint cost a worker (code objects and functions: ~180 of ~315 kB). A worker passes them through;
#: replays keep the strict sandbox (see :func:`sandbox_runner`).
WORKFLOW_MODULES = ("workflows",)


def sandbox_runner(*, strict: bool = False) -> SandboxedWorkflowRunner:
    """The workflow runner: the default sandbox, with :data:`PASSTHROUGH_MODULES`. A worker's (the default)
    also passes :data:`WORKFLOW_MODULES` through, so its runs share one copy of the workflow code. ``strict``
    re-imports them per run, as the SDK does by default, with every module-level restriction applied to
    them: what replayers use (the saved histories' replay test, ``verify``'s replay), so workflow code that
    reached for the clock, randomness or I/O would fail there."""
    modules = PASSTHROUGH_MODULES if strict else PASSTHROUGH_MODULES + WORKFLOW_MODULES
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules))


def for_replay() -> list[Interceptor]:
    """What a Replayer needs to replay histories with principals (reading them, never verifying)."""
    return [PerimeterInterceptor(TrustedIssuers())]


class PerimeterInterceptor(Interceptor):
    """Register on the worker: ``Worker(..., interceptors=[PerimeterInterceptor(issuers)])``."""

    def __init__(self, issuers: TrustedIssuers, *, allow_plaintext: bool = False) -> None:
        self.issuers = issuers
        self.allow_plaintext = allow_plaintext

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        issuers, allow_plaintext = self.issuers, self.allow_plaintext

        class _Doors(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                _start_credential.set(credential(input.headers))
                return await super().execute_workflow(input)

            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if not allow_plaintext and any(plaintext(a) for a in input.args):
                    raise ApplicationError(PLAINTEXT_UPDATE, type="PlaintextRefused", non_retryable=True)
                try:
                    principal = issuers.verify(credential(input.headers), workflow.now())
                except Unauthenticated as refused:
                    raise ApplicationError(str(refused), type="Unauthenticated", non_retryable=True) from None
                _principal.set(principal)
                super().handle_update_validator(input)

            async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
                token = credential(input.headers)
                principal = None
                if token is not None:
                    try:
                        principal = issuers.read(token)
                    # Accepted once, so it was readable then; an old history has none. Whatever a header holds,
                    # the handler's replay must not fail on it: an unreadable one is no principal.
                    except Exception:  # noqa: BLE001
                        principal = None
                _principal.set(principal)
                return await super().handle_update_handler(input)

        return _Doors
