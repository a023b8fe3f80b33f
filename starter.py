"""The client side: submit complaints, send decisions, read their state. Importable, and behind the CLI.

Every function takes a connected client (see :func:`codec.connect_temporal`) and the complaint's id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from temporalio import workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain import commands as cmd
from domain.complaint import Complaint
from domain.errors import FieldError, field_errors, validate_json
from domain.intake import ComplaintIntake, check_timing
from domain.summary import static_summary
from logs import get_logger
from settings import TASK_QUEUE, complaint_id_of, workflow_id
from workflows.complaint import ComplaintWorkflow
from workflows.start import ComplaintStart

log = get_logger(__name__)
T = TypeVar("T")
C = TypeVar("C", bound=cmd.Command)


class InvalidInput(ValueError):
    """Input refused before anything was started or sent: each field with its reason."""

    def __init__(self, what: str, errors: list[FieldError]) -> None:
        super().__init__(f"invalid {what}: " + "; ".join(str(e) for e in errors))
        self.what = what
        self.errors = errors


class DecisionRefused(Exception):
    """The workflow refused a decision (wrong stage, unknown option...): nothing was recorded."""

    def __init__(self, message: str, kind: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details


class NotFound(LookupError):
    """No workflow for that complaint id."""


_INTAKE = TypeAdapter(ComplaintIntake)


def parse_intake(text: str | bytes) -> ComplaintIntake:
    """A complaint from JSON, checked field by field and against the clock."""
    try:
        intake = validate_json(_INTAKE, text)
    except ValidationError as error:
        raise InvalidInput("complaint", field_errors(error)) from None
    problems = check_timing(intake, datetime.now(UTC))
    if problems:
        raise InvalidInput("complaint", [FieldError(field=p.field, reason=p.reason) for p in problems])
    return intake


def parse_command(name: str, data: str | bytes | dict[str, Any]) -> cmd.Command:
    """An update's argument from JSON (or a dict of JSON values), checked field by field."""
    try:
        model = cmd.COMMANDS[name]
    except KeyError:
        raise InvalidInput("decision", [FieldError(field="(update)", reason=f"unknown update {name!r}; known: "
                                                   + ", ".join(sorted(cmd.COMMANDS)))]) from None
    try:
        return validate_json(TypeAdapter(model), _json(data) if isinstance(data, dict) else data)
    except ValidationError as error:
        raise InvalidInput(name, field_errors(error)) from None


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data)


@dataclass(frozen=True)
class Submission:
    complaint_id: str
    workflow_id: str
    run_id: str | None
    created: bool
    handle: WorkflowHandle[Any, Complaint] | None = field(default=None, repr=False, compare=False)
    #: The run's execution status (``running``, ``completed``, ``failed``, ``terminated``, ``canceled``,
    #: ``timed_out``): for a complaint submitted before, where its run stands now.
    status: str = "running"
    #: Why that run ended without completing: ``{"type": ..., "message": ...}`` (an ApplicationError's type,
    #: e.g. Unauthenticated, Forbidden, ComplaintExists); None while it runs or once it completed.
    failure: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        """The complaint is in hand: started now, or submitted before and running or completed (closed)."""
        return self.status in ("running", "completed")

    def as_dict(self) -> dict[str, Any]:
        return {"complaint_id": self.complaint_id, "workflow_id": self.workflow_id, "run_id": self.run_id,
                "created": self.created, "status": self.status, "failure": self.failure}


async def submit(
    client: Client,
    intake: ComplaintIntake,
    *,
    task_queue: str = TASK_QUEUE,
) -> Submission:
    """Start the complaint's workflow; the same complaint id again returns the existing one, writing nothing.
    The input is the intake alone: how the workflow runs is the workers' configuration."""
    wid = workflow_id(intake.complaint_id)
    start = ComplaintStart(intake)
    try:
        handle = await client.start_workflow(
            ComplaintWorkflow.run,
            start,
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=static_summary(intake),
            static_details=f"Complaint **{intake.complaint_id}**, {intake.jurisdiction.value} rules.",
        )
    except WorkflowAlreadyStartedError as already:
        status, failure = await _run_outcome(client, wid)
        log.info("complaint already submitted", complaint_id=intake.complaint_id, workflow_id=wid,
                 run_id=already.run_id, status=status, failure=failure["type"] if failure else None)
        return Submission(intake.complaint_id, wid, already.run_id, created=False, status=status, failure=failure)
    log.info("complaint submitted", complaint_id=intake.complaint_id, workflow_id=wid,
             run_id=handle.first_execution_run_id)
    return Submission(intake.complaint_id, wid, handle.first_execution_run_id, created=True, handle=handle)


async def _run_outcome(client: Client, wid: str) -> tuple[str, dict[str, str] | None]:
    """Where the workflow's latest run stands, and why it ended if it ended without completing (a run refused
    at the door fails: Unauthenticated, Forbidden, ComplaintExists, ...)."""
    execution = await _execution_status(client, wid)
    if execution in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
        return execution.name.lower(), None
    try:
        await client.get_workflow_handle(wid).result(follow_runs=False)
    except WorkflowFailureError as failed:
        cause = failed.cause
        kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        return execution.name.lower(), {"type": kind, "message": message}
    return execution.name.lower(), None


#: A read that Temporal cut short (cancelled, unavailable, past its deadline, throttled) is safe to ask again.
_TRANSIENT_READ = frozenset({RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                             RPCStatusCode.RESOURCE_EXHAUSTED})
#: No read waits for ever: each attempt is bounded.
READ_TIMEOUT = timedelta(seconds=15)


async def read_safely(read: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """An idempotent read (describe, history, query), each attempt bounded by its own RPC timeout, asked again
    when Temporal cut it short: a cancelled call under load is not an answer."""
    delay = 0.2
    for attempt in range(attempts):
        try:
            return await read()
        except RPCError as error:
            if error.status not in _TRANSIENT_READ or attempt == attempts - 1:
                raise
            log.warning("temporal read cut short; asking again", status=error.status.name, attempt=attempt + 1)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
    raise AssertionError("unreachable")


async def _execution_status(client: Client, wid: str) -> WorkflowExecutionStatus:
    """The execution's status, read raw: only the status is needed, not the decoded search attributes."""
    try:
        response = await read_safely(lambda: client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=wid)),
            timeout=READ_TIMEOUT))
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"no complaint {complaint_id_of(wid)!r}") from None
        raise
    return WorkflowExecutionStatus(response.workflow_execution_info.status)


def decision_id(complaint_id: str, name: str, command: cmd.Command) -> str:
    """A deterministic update id for a decision: the same complaint, update and argument (its canonical JSON)
    give the same id, so sending the very same decision again returns the first outcome (see :func:`send`)."""
    import hashlib
    import json

    canonical = json.dumps(command.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    digest = hashlib.sha256("\n".join((complaint_id, name, canonical)).encode()).hexdigest()
    return f"{name}-{digest[:32]}"


def handle_for(client: Client, complaint_id: str) -> WorkflowHandle[Any, Any]:
    return client.get_workflow_handle(workflow_id(complaint_id))


#: An update of the complaint workflow: the workflow's method (``ComplaintWorkflow.assess``), which the SDK types
#: argument and result by, or its name (``"assess"``), as the CLI and other backends send it (the JSON contract).
Update = str | workflow.UpdateMethodMultiParam[[ComplaintWorkflow, C], Complaint]


def update_name(update: str | Callable[..., Any]) -> str:
    """The name an update goes by on the wire: a name is itself; a method's is its update definition's,
    resolved as the SDK resolves it when sending."""
    if isinstance(update, str):
        return update
    if not isinstance(update, workflow.UpdateMethodMultiParam):
        raise TypeError(f"{update!r} is not a workflow update (a method decorated with @workflow.update)")
    name, _ = workflow._UpdateDefinition.get_name_and_result_type(update)
    return name


async def send(client: Client, complaint_id: str, update: Update[C], command: C,
               *, idempotency_key: str | None = None) -> Complaint:
    """Send a decision (an update) and return the complaint as it stands once its events are in the log.

    ``update`` is the workflow's update method (``ComplaintWorkflow.assess``: a renamed update is then caught
    before anything runs) or its name (``"assess"``, the JSON contract's spelling).

    With an ``idempotency_key`` (the update's id), sending the same decision again, say after a network
    error, returns the first outcome instead of deciding twice."""
    name = update_name(update)
    handle = handle_for(client, complaint_id)

    async def start() -> WorkflowUpdateHandle[Complaint]:
        if isinstance(update, str):
            return await handle.start_update(update, command, id=idempotency_key, result_type=Complaint,
                                             wait_for_stage=WorkflowUpdateStage.COMPLETED)
        return await handle.start_update(update, command, id=idempotency_key,
                                         wait_for_stage=WorkflowUpdateStage.COMPLETED)

    try:
        update_handle = await _admitted(start)
        result: Complaint = await update_handle.result()
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError):
            raise DecisionRefused(cause.message, cause.type, cause.details) from None
        raise DecisionRefused(str(cause)) from None  # .cause is never None (the SDK asserts it)
    except RPCError:
        # The workflow is gone or closed (a closed complaint takes no more decisions); say which.
        execution = await _execution_status(client, workflow_id(complaint_id))
        if execution != WorkflowExecutionStatus.RUNNING:
            raise DecisionRefused(f"complaint {complaint_id} is closed ({execution.name.lower()})",
                                  "ComplaintClosed") from None
        raise
    log.info("decision recorded", complaint_id=complaint_id, workflow_id=handle.id,
             run_id=update_handle.workflow_run_id, update=name, stage=result.stage.value,
             sequence=result.head.sequence)
    return result


async def _admitted(start: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """Temporal caps the updates in flight on one workflow (10 by default) and refuses more with
    RESOURCE_EXHAUSTED. Such an update was never admitted, so sending it again is safe: back off and retry."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            return await start()
        except RPCError as error:
            if error.status != RPCStatusCode.RESOURCE_EXHAUSTED or attempt == attempts - 1:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


async def assess(client: Client, complaint_id: str, command: cmd.Assess) -> Complaint:
    """Record the verdict (and with it the apology and remedies, or the explanation and options)."""
    return await send(client, complaint_id, "assess", command)


async def choose_remedy(client: Client, complaint_id: str, command: cmd.ChooseRemedy) -> Complaint:
    """The customer's choice among the remedies offered."""
    return await send(client, complaint_id, "choose_remedy", command)


async def status(client: Client, complaint_id: str) -> Complaint:
    """The complaint as its workflow folds it (also once closed: the final state)."""
    handle = client.get_workflow_handle_for(ComplaintWorkflow.run, workflow_id(complaint_id))
    execution_status = await _execution_status(client, workflow_id(complaint_id))
    if execution_status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    if execution_status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            raise DecisionRefused(f"complaint {complaint_id} failed: {failure.cause}") from None
    state: Complaint | None = await read_safely(lambda: handle.query(
        "state", result_type=Complaint | None, rpc_timeout=READ_TIMEOUT))  # type: ignore[arg-type]
    if state is None:
        raise NotFound(f"complaint {complaint_id!r} is not recorded yet")
    return state


@dataclass(frozen=True)
class Listed:
    """A complaint as Temporal's visibility shows it (search attributes only: no personal data)."""

    complaint_id: str
    status: str | None
    channel: str | None
    severity: str | None
    verdict: str | None
    root_cause: str | None
    customer_id: str | None
    jurisdiction: str | None
    sla_due_at: datetime | None
    sla_breached: bool | None
    started_at: datetime | None
    #: Messages wait for an agent to deliver them by hand (None: a run from before this was published).
    awaiting_agent: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_query(*, status: str | None = None, breaching: bool = False, customer: str | None = None,
               awaiting_agent: bool = False, task_queue: str = TASK_QUEUE) -> str:
    """The visibility query behind `complaints list` (also usable in the Temporal UI's search box)."""
    parts = ['WorkflowType = "ComplaintWorkflow"', f"TaskQueue = {_quote(task_queue)}",
             'ExecutionStatus != "ContinuedAsNew"']
    if status:
        parts.append(f"ComplaintStatus = {_quote(status)}")
    if breaching:
        parts.append("SlaBreached = true")
    if customer:
        parts.append(f"CustomerId = {_quote(customer)}")
    if awaiting_agent:
        parts.append("AwaitingAgent = true")
    return " AND ".join(parts)


async def find(client: Client, query: str, limit: int = 200) -> list[Listed]:
    """Complaints matching a visibility query, newest first."""
    from workflows import attributes as sa

    found = []
    async for execution in client.list_workflows(query, limit=limit):
        cid = complaint_id_of(execution.id)
        if cid is None:
            continue
        attrs = execution.typed_search_attributes
        found.append(Listed(
            complaint_id=cid, status=attrs.get(sa.COMPLAINT_STATUS), channel=attrs.get(sa.COMPLAINT_CHANNEL),
            severity=attrs.get(sa.COMPLAINT_SEVERITY), verdict=attrs.get(sa.COMPLAINT_VERDICT),
            root_cause=attrs.get(sa.COMPLAINT_ROOT_CAUSE), customer_id=attrs.get(sa.CUSTOMER_ID),
            jurisdiction=attrs.get(sa.JURISDICTION), sla_due_at=attrs.get(sa.SLA_DUE_AT),
            sla_breached=attrs.get(sa.SLA_BREACHED), started_at=execution.start_time,
            awaiting_agent=attrs.get(sa.AWAITING_AGENT),
        ))
    return found
