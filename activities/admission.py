"""The perimeter of a run: before a complaint's workflow acts, check who started it, what it was handed,
and what the log already holds. Its answer (options, the intake's actor, or a refusal) is recorded in the
workflow's history, so a replay never depends on today's keys, settings or log.

Also: deleting a refused run from Temporal, so plaintext personal data does not wait for retention."""

from __future__ import annotations

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode

from activities import messages as msg
from activities.eventlog import unavailable
from domain.principals import SUBMIT, Forbidden, authorise
from eventlog import EventLogUnavailable, EventStore
from eventlog.connect import CONNECTION_ERRORS
from identity.tokens import TrustedIssuers, Unauthenticated
from logs import get_logger

log = get_logger(__name__)

#: The log not answering right now: retried (as a tuple of its own, which is what mypy can check in ``except``).
_LOG_UNAVAILABLE: tuple[type[BaseException], ...] = (EventLogUnavailable, *CONNECTION_ERRORS)

PLAINTEXT_HELP = ("the complaint reached Temporal in plaintext, and it carries personal data: send it through "
                  "the codec (the project's client, the temporal CLI with --codec-endpoint and --codec-auth, or a "
                  "remote codec calling the codec server's /encode). This run is deleted from Temporal shortly")


class Admission:
    def __init__(self, store: EventStore, issuers: TrustedIssuers, options: msg.RunOptions,
                 *, allow_plaintext: bool = False) -> None:
        self.store = store
        self.issuers = issuers
        self.options = options
        self.allow_plaintext = allow_plaintext

    def _refuse(self, kind: str, message: str) -> msg.Admission:
        info = activity.info()
        log.warning("run refused", refusal=kind, workflow_id=info.workflow_id, run_id=info.workflow_run_id)
        return msg.Admission(options=self.options, refusal=msg.Refusal(type=kind, message=message))

    @activity.defn(name=msg.ADMIT)
    async def admit(self, request: msg.AdmitRequest) -> msg.Admission:
        if request.plaintext and not self.allow_plaintext:
            return self._refuse("PlaintextRefused", PLAINTEXT_HELP)
        actor = None
        if request.carried_head is None:  # a fresh start: its caller must be allowed to submit complaints
            try:
                principal = self.issuers.verify(request.credential, request.at)
                actor = authorise(principal, SUBMIT, customer_id=request.customer_id)
            except Unauthenticated as refused:
                return self._refuse("Unauthenticated", str(refused))
            except Forbidden as refused:
                return self._refuse("Forbidden", str(refused))
        try:
            head = await self.store.head(request.complaint_id)
        except _LOG_UNAVAILABLE as error:
            raise unavailable(activity.info().attempt, error) from None
        if request.carried_head is None and head.sequence > 0:
            return self._refuse("ComplaintExists", f"complaint {request.complaint_id} is already in the log "
                                f"({head.sequence} events): it cannot be started again")
        if request.carried_head is not None and head != request.carried_head:
            return self._refuse("CarriedStateRefused", f"the state carried into this run ends at event "
                                f"{request.carried_head.sequence}, but the log's head for complaint "
                                f"{request.complaint_id} is event {head.sequence}: refusing to act on it")
        return msg.Admission(options=self.options, actor=actor)


@activity.defn(name=msg.FORGET_RUN)
async def forget_run(request: msg.ForgetRun) -> None:
    """DeleteWorkflowExecution for a refused run (already gone is done)."""
    client = activity.client()
    try:
        await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=request.workflow_id, run_id=request.run_id)))
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    log.info("refused run deleted", workflow_id=request.workflow_id, run_id=request.run_id)
