"""The clock under real operations, on a real Temporal server (``temporal server start-dev``) and a real
PostgreSQL: a regulator's deadline that passes while the remedy catalogue is slow to quote is warned and
breached on time, and a decision that arrives after its deadline but before the workflow's timer has run is
refused by the update's validator, leaving no trace in history.

A regulator counts in days, and a deadline falls at the end of a local day, so no real rule comes due while
a test waits. The worker's ``regulator_clock`` stands in for the deadline calculation with one that counts in
seconds (the time-skipping server cannot show either case: it does not move its clock while an activity or a
workflow task is outstanding). Everything else is the real worker, its real activities and the real log.

While a remedy is being fulfilled no deadline is open (the final response is met when the remedy is
offered), so the quote is where an activity in flight meets a running clock; the fulfilment runs in a task
of its own all the same (workflows/complaint.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import messages as msg
from activities.remedies import RemedyCatalogue
from domain.events import Deadline, Extension
from domain.vocabulary import DeadlineKind, Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from starter import DecisionRefused
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

DUE_IN = timedelta(seconds=8)  # the assessment and (in the second test) the final response are due so soon
Data = Callable[..., dict[str, Any]]
RULE = "test regulator: counts in seconds"


@activity.defn(name=msg.COMPUTE_DEADLINES)
async def regulator_in_seconds(request: msg.DeadlineRequest) -> msg.Schedule:
    start = request.reopened_at or request.received_at
    hour = timedelta(hours=1)
    return msg.Schedule(policy=RULE, calendar="seconds", deadlines=[
        Deadline(kind=DeadlineKind.acknowledgement, due_at=start + hour, warn_at=start + hour / 2, rule=RULE),
        Deadline(kind=DeadlineKind.assessment, due_at=start + DUE_IN, warn_at=start + DUE_IN / 2, rule=RULE),
        Deadline(kind=DeadlineKind.final_response, due_at=start + DUE_IN, warn_at=start + DUE_IN / 2, rule=RULE,
                 extension=Extension(due_at=start + hour, warn_at=start + hour / 2, rule=f"{RULE}, extended")),
    ])


class SlowCatalogue:
    """The real remedy catalogue, slow to answer: started, then held until the test releases it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.catalogue = RemedyCatalogue(pool)
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = False

    @activity.defn(name=msg.QUOTE_REMEDIES)
    async def quote(self, request: msg.QuoteRequest) -> msg.Quote:
        self.started.set()
        await self.release.wait()
        self.finished = True
        return await self.catalogue.quote_remedies(request)


@pytest.fixture
def catalogue(app_pool: asyncpg.Pool) -> SlowCatalogue:
    return SlowCatalogue(app_pool)


@pytest.fixture
def worker_for(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, task_queue: str, catalogue: SlowCatalogue
               ) -> Callable[[], Worker]:
    def start() -> Worker:
        return build_worker(dev_server.client, app_pool, task_queue, remedy_catalogue=catalogue.quote,
                            regulator_clock=regulator_in_seconds)
    return start


@pytest.fixture
def drive(dev_server: WorkflowEnvironment, store: PostgresEventStore, task_queue: str) -> Driver:
    return Driver(dev_server.client, store, task_queue)


async def wait_for_type(drive: Driver, cid: str, kind: str, timeout: float = 30) -> list[str]:
    for _ in range(int(timeout / 0.1)):
        types = await drive.types(cid)
        if kind in types:
            return types
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{cid}: no {kind} in the log after {timeout} s")


async def test_a_deadline_is_warned_and_breached_on_time_while_a_quote_is_in_flight(
        drive: Driver, worker_for: Callable[[], Worker], catalogue: SlowCatalogue, intake_data: Data) -> None:
    async with worker_for():
        cid = await drive.submit(intake_data())
        due = (await drive.state(cid)).deadline(DeadlineKind.assessment)
        assert due is not None and due.rule == RULE
        assessment = asyncio.create_task(drive.send(cid, ComplaintWorkflow.assess, **valid()))
        await asyncio.wait_for(catalogue.started.wait(), 10)
        assert datetime.now(UTC) < due.warn_at, "the quote began after the warning was due: nothing to show"

        types = await wait_for_type(drive, cid, "SlaBreached", timeout=DUE_IN.total_seconds() + 10)
        assert not catalogue.finished and not assessment.done()  # warned and breached while the quote was asked
        assert types.index("SlaWarningRaised") < types.index("SlaBreached")
        assert "ComplaintAssessed" not in types

        catalogue.release.set()
        offered = await assessment
        assert offered.stage is Stage.awaiting_remedy_choice
        late = offered.deadline(DeadlineKind.assessment)
        assert late is not None and late.breached and late.met_in_time is False
        await drive.witnesses_agree(cid)
        await drive.send(cid, ComplaintWorkflow.withdraw)


async def test_an_extension_after_its_deadline_is_refused_by_the_clock_before_the_timer_runs(
        drive: Driver, worker_for: Callable[[], Worker], dev_server: WorkflowEnvironment, intake_data: Data) -> None:
    async with worker_for():
        cid = await drive.submit(intake_data("faulty-kettle.json"))
        due = (await drive.state(cid)).deadline(DeadlineKind.final_response)
        assert due is not None
    # No worker: the deadline passes with no workflow task run, so nothing has recorded the breach when the
    # extension arrives; the next task carries both the timer and the update.
    await asyncio.sleep(max((due.due_at - datetime.now(UTC)).total_seconds(), 0) + 1)
    extension = asyncio.create_task(drive.send(cid, ComplaintWorkflow.extend_deadline,
                                               reason="Waiting for the courier's report.",
                                               notice="We need a little more time to check with the courier."))
    await asyncio.sleep(1)  # the update waits at the server for a worker
    async with worker_for():
        with pytest.raises(DecisionRefused, match="deadline passed"):
            await extension
        breached = await drive.wait(cid, lambda s: s.sla_breached)
    final = breached.deadline(DeadlineKind.final_response)
    assert final is not None and final.breached and not final.extended
    assert "SlaExtended" not in await drive.types(cid)
    history = await dev_server.client.get_workflow_handle(workflow_id(cid)).fetch_history()
    updates = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert "extend_deadline" not in updates  # refused by the validator: no trace in history
    async with worker_for():
        await drive.witnesses_agree(cid)
        await drive.send(cid, ComplaintWorkflow.withdraw)
