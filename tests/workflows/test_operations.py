"""Correct under real operations (a real Temporal time-skipping server, a real PostgreSQL, the real activities
unless a test stands in for an outside party): a second remedy after reopening is really ordered, a manual
escalation is closed by a supervisor, a reopened complaint has deadlines again, and what can never succeed
ends instead of retrying for ever.

The clock against activities in flight and against decisions that arrive late is in test_clock.py, on a
real server with a regulator counting in seconds (the time-skipping server cannot show either)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities import messages as msg
from domain.vocabulary import DeadlineKind, Outcome, Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from starter import DecisionRefused
from tests.conftest import env_var
from tests.workflows.driver import Driver
from tests.workflows.test_paths import invalid, valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow
from workflows.start import ComplaintStart

Data = Callable[..., dict[str, Any]]


@pytest.fixture
def drive(time_skipping: WorkflowEnvironment, store: PostgresEventStore, worker: Any, task_queue: str) -> Driver:
    return Driver(time_skipping.client, store, task_queue)


async def test_a_second_remedy_after_reopening_is_ordered_too(drive: Driver, intake_data: Data,
                                                              app_pool: asyncpg.Pool) -> None:
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.assess, **valid(remedies=["voucher", "discount"]))
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")  # a voucher
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=2, comment="A voucher is no use to me.")
    await drive.send(cid, ComplaintWorkflow.assess, **valid(remedies=["refund", "replacement"]))
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")  # "A" again, but this offer's: a refund
    await drive.stage(cid, Stage.awaiting_follow_up)
    ordered = await app_pool.fetch("SELECT offer_round, option_id, kind, reference FROM complaint_remedy_fulfilments"
                                   " WHERE complaint_id = $1 ORDER BY offer_round", cid)
    assert [(r["offer_round"], r["option_id"], r["kind"]) for r in ordered] == [(0, "A", "voucher"), (1, "A", "refund")]
    fulfilled = [p for p in await drive.opened(cid) if "reference" in p and "option_id" in p]
    assert [p["reference"] for p in fulfilled] == [r["reference"] for r in ordered]  # both in the log, as ordered
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=5)
    await drive.finished(cid)
    await drive.witnesses_agree(cid)


async def test_a_manual_escalation_is_closed_by_a_supervisor(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    escalated = await drive.send(cid, ComplaintWorkflow.escalate, to="supervisor",
                                 reason="The customer mentioned the regulator.")
    assert escalated.stage is Stage.escalated
    with pytest.raises(DecisionRefused, match="Assess is accepted only at"):
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.close, outcome="resolved", note="Called the customer; refunded by hand.")
    final = await drive.finished(cid)
    assert final.stage is Stage.closed and final.outcome is Outcome.resolved
    await drive.witnesses_agree(cid)


async def test_a_reopened_complaint_has_deadlines_again_and_breaches_them(
        drive: Driver, intake_data: Data, time_skipping: WorkflowEnvironment) -> None:
    cid = await drive.submit(intake_data("roaming-charges.json"))  # US: counted again from the reopening
    await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    await drive.send(cid, ComplaintWorkflow.choose_option, option="stay")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=2, comment="Still unfair.")
    state = await drive.wait(cid, lambda s: s.deadlines_round == 1)
    assessment = state.deadline(DeadlineKind.assessment)
    assert assessment is not None and assessment.pending and "reopening" in assessment.rule
    assert state.next_deadline is not None and state.next_deadline.due_at > state.received_at
    assert "SlaDeadlinesReset" in await drive.types(cid)
    await time_skipping.sleep(assessment.due_at - await time_skipping.get_current_time() + timedelta(hours=1))
    breached = await drive.wait(cid, lambda s: s.sla_breached)
    assert any(d.breached and d.kind is DeadlineKind.assessment for d in breached.deadlines)
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "reopened_deadlines_breached")


async def test_the_uk_final_response_clock_runs_from_first_receipt(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data("faulty-kettle.json"))
    first = (await drive.state(cid)).deadline(DeadlineKind.final_response)
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=1)
    state = await drive.wait(cid, lambda s: s.deadlines_round == 1)
    final = state.deadline(DeadlineKind.final_response)
    assert first is not None and final is not None and final.due_at == first.due_at
    assert "does not restart the regulator's clock" in final.rule and final.pending
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)


@activity.defn(name=msg.FULFIL_REMEDY)
async def provider_with_garbage(request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
    raise ApplicationError("gateway said \x00\x01 no" + "!" * 5000, type="ProviderRefused", non_retryable=True)


async def test_text_from_a_provider_is_bounded_and_cleaned_before_it_reaches_an_event(
        time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
        intake_data: Data) -> None:
    drive = Driver(time_skipping.client, store, task_queue)
    async with build_worker(time_skipping.client, app_pool, task_queue, remedy_provider=provider_with_garbage):
        cid = await drive.submit(intake_data())
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
        state = await drive.stage(cid, Stage.escalated)
        assert state.remedy_failed
        [failed] = [p for p in await drive.opened(cid) if "reason" in p and "option_id" in p]
        assert "\x00" not in failed["reason"] and len(failed["reason"]) <= 500


async def test_a_bad_deadline_configuration_fails_the_run_visibly_instead_of_retrying_for_ever(
        time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
        intake_data: Data) -> None:
    import starter

    with env_var("COMPLAINTS_DEFAULT_POLICY", '{"assessmnet": 5}'):  # a typo in a key
        async with build_worker(time_skipping.client, app_pool, task_queue):
            data = intake_data()
            submitted = await starter.submit(time_skipping.client, starter.parse_intake(__import__("json").dumps(data)),
                                             task_queue=task_queue)
            assert submitted.handle is not None
            with pytest.raises(WorkflowFailureError) as failure:
                await asyncio.wait_for(submitted.handle.result(), 60)
    cause = failure.value.cause.cause  # the activity's failure, under the workflow's
    assert isinstance(cause, ApplicationError) and cause.type == "ConfigurationError" and "assessmnet" in cause.message
    assert await store.read(data["complaint_id"]) == []


async def test_a_continued_run_carries_the_state_not_the_intake(
        time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
        intake_data: Data) -> None:
    async with build_worker(time_skipping.client, app_pool, task_queue, run_options=msg.RunOptions(
            max_history_events=100)):
        drive = Driver(time_skipping.client, store, task_queue)
        cid = await drive.submit(intake_data())
        for n in range(30):
            await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email",
                             text=f"message {n}")
        handle = time_skipping.client.get_workflow_handle(workflow_id(cid))
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        assert started.continued_execution_run_id, "the run continued as new"
        [carried] = await time_skipping.client.data_converter.decode(started.input.payloads, [ComplaintStart])
        assert carried.continuation and carried.as_run().intake is None
        assert carried.as_run().options.resume is not None
        await drive.send(cid, ComplaintWorkflow.withdraw)
        await drive.finished(cid)
        await drive.witnesses_agree(cid)
