"""Continue-as-new keeps the log and the state unchanged; a remedy that cannot be fulfilled escalates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities import messages as msg
from activities.messages import RunOptions
from domain.vocabulary import Outcome, Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

Data = Callable[..., dict[str, Any]]


async def test_a_long_conversation_continues_as_new_without_changing_log_or_state(
    time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
    intake_data: Data,
) -> None:
    async with build_worker(time_skipping.client, app_pool, task_queue, run_options=RunOptions(max_history_events=100)):
        drive = Driver(time_skipping.client, store, task_queue)
        cid = await drive.submit(intake_data())
        first_run = (await time_skipping.client.get_workflow_handle(workflow_id(cid)).describe()).run_id
        for n in range(30):
            await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="social",
                             text=f"message {n}")
        # Check updates sent while the run hands over are neither lost nor doubled.
        await asyncio.gather(*(drive.send(cid, ComplaintWorkflow.log_message, sender="agent", channel="email",
                                          text=f"burst {n}") for n in range(10)))
        state = await drive.witnesses_agree(cid)
        assert state.messages == 40
        texts = [p["text"] for p in await drive.opened(cid) if "sender" in p]
        assert sorted(texts) == sorted([f"message {n}" for n in range(30)] + [f"burst {n}" for n in range(10)])
        runs = {e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                async for e in time_skipping.client.get_workflow_handle(workflow_id(cid), run_id=first_run)
                .fetch_history_events()
                if e.HasField("workflow_execution_continued_as_new_event_attributes")}
        assert runs, "the first run continued as new"
        await drive.send(cid, ComplaintWorkflow.withdraw)
        final = await drive.finished(cid)  # follows the runs to the last one
        assert final.stage is Stage.closed and final.messages == 40
        await drive.witnesses_agree(cid)
        await drive.save_history(cid, "continued_as_new")
        rows = await app_pool.fetch("SELECT DISTINCT run_id FROM complaint_events WHERE complaint_id = $1", cid)
        assert len(rows) >= 2  # events were appended from more than one run, into one unbroken chain


@activity.defn(name=msg.FULFIL_REMEDY)
async def refusing_provider(request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
    raise ApplicationError("voucher system refused: account blocked", type="ProviderRefused", non_retryable=True)


attempts: list[int] = []


@activity.defn(name=msg.FULFIL_REMEDY)
async def failing_provider(request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
    attempts.append(activity.info().attempt)
    raise RuntimeError("refund gateway timed out")


@pytest.mark.parametrize("provider", [refusing_provider, failing_provider], ids=["refused", "retries-exhausted"])
async def test_a_remedy_that_cannot_be_fulfilled_escalates_to_a_supervisor(
    time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
    intake_data: Data, provider: Any,
) -> None:
    attempts.clear()
    async with build_worker(time_skipping.client, app_pool, task_queue, remedy_provider=provider,
                            run_options=RunOptions(fulfilment_attempts=3)):
        drive = Driver(time_skipping.client, store, task_queue)
        cid = await drive.submit(intake_data())
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
        state = await drive.stage(cid, Stage.escalated)
        assert state.remedy_failed and state.escalations  # who and why are sealed (personal): read from the log
        assert [p for p in await drive.opened(cid) if "awaits_supervisor" in p][-1]["to"] == "supervisor"
        assert (await drive.types(cid))[-3:] == ["RemedyChosen", "RemedyFulfilmentFailed", "ComplaintEscalated"]
        if provider is failing_provider:
            assert attempts == [1, 2, 3]
        await drive.send(cid, ComplaintWorkflow.close, outcome="resolved", note="Refunded by hand at the branch.")
        final = await drive.finished(cid)
        assert final.outcome is Outcome.resolved
        await drive.witnesses_agree(cid)
        await drive.save_history(cid, f"fulfilment_{provider.__name__}")
