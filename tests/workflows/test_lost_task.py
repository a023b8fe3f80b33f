"""A local append commits before its workflow task completes. When Temporal loses that task (the server killed
after the append), the run decides again from what Temporal kept, and its inputs may come in another order: it
may ask for something else at the place the log already filled. The log keeps what it stored; the run folds that
batch (its own, from the same head) and decides again on top of it; and the update that had decided it, sent again
by its caller under the same id, is answered as recorded, deciding nothing twice.

Here the lost task is made by hand, on a real Temporal and a real PostgreSQL: a choice of remedy is written to the
log as the run's append would have written it (its run, its update id, chained on the head), and Temporal is never
told. Then a message is logged: it meets the stored choice at its place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

import starter
from activities import messages as msg
from audit.witness import LOCAL_ACTIVITY_MARKER
from domain import commands as cmd
from domain import decide
from domain import events as ev
from domain.chain import Draft, chain
from domain.vocabulary import CustomerChoice, Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.workflows.driver import Driver, told
from tests.workflows.test_paths import invalid, valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow


@pytest.fixture
async def drive(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore,
                task_queue: str) -> AsyncIterator[Driver]:
    """A worker with local appends: only a local append commits before its workflow task completes (an
    activity's append runs after the task that scheduled it is in history)."""
    async with build_worker(dev_server.client, app_pool, task_queue, run_options=msg.RunOptions(local_appends=True)):
        yield Driver(dev_server.client, store, task_queue)


async def test_a_decision_of_a_lost_task_is_folded_and_its_update_answered_when_sent_again(
        drive: Driver, intake_data: Callable[..., dict[str, Any]]) -> None:
    cid = await drive.submit(intake_data())
    assessed = await drive.send(cid, ComplaintWorkflow.assess, **valid())
    assert assessed.stage is Stage.awaiting_remedy_choice and assessed.offer is not None
    handle = drive.client.get_workflow_handle(workflow_id(cid))
    run_id = (await handle.describe()).run_id
    before = await drive.store.read(cid)
    # The lost task's append: the customer's choice, decided by update "lost-choice" in this run.
    option = assessed.offer.options[0].id
    lost = chain(assessed.head, cid, datetime.now(UTC), [Draft.of(ev.RemedyChosen(option_id=option), before[-1].actor)])
    assert await drive.store.append(lost, workflow_id=workflow_id(cid), run_id=run_id, update_id="lost-choice") == 1

    # Another decision comes first: it is asked for at the stored choice's place, and recorded after it.
    logged = await starter.send(drive.client, cid, ComplaintWorkflow.log_message,
                                cmd.LogMessage(sender="customer", channel="web", text="Any news?"))
    assert logged.remedy_option == option and logged.stage is not Stage.awaiting_remedy_choice
    types = [r.type for r in await drive.store.read(cid)][len(before):]
    assert types[:2] == ["RemedyChosen", "MessageLogged"], types

    # The choice, sent again by its caller under the same update id: answered as recorded, decided once.
    again = await starter.send(drive.client, cid, ComplaintWorkflow.choose_remedy, cmd.ChooseRemedy(option_id=option),
                               idempotency_key="lost-choice")
    assert again.remedy_option == option
    settled = await drive.wait(cid, lambda s: s.stage is Stage.awaiting_follow_up and told(s))
    assert [r.type for r in await drive.store.read(cid)].count("RemedyChosen") == 1
    assert settled.remedy_reference is not None

    # The history witnesses the folded batch (the append's marker returned it), and the auditor's verify agrees.
    history = await handle.fetch_history()
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
               and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER]
    assert markers
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "lost_task_folded")


async def test_a_choice_of_a_lost_task_is_refused_to_an_update_of_another_id(
        drive: Driver, intake_data: Callable[..., dict[str, Any]]) -> None:
    """Only the update that decided it is answered as recorded: another choice, under another id, meets the
    complaint as the log holds it (its remedy chosen already) and is refused for that stage."""
    cid = await drive.submit(intake_data())
    assessed = await drive.send(cid, ComplaintWorkflow.assess, **valid())
    assert assessed.offer is not None
    run_id = (await drive.client.get_workflow_handle(workflow_id(cid)).describe()).run_id
    before = await drive.store.read(cid)
    option = assessed.offer.options[0].id
    lost = chain(assessed.head, cid, datetime.now(UTC), [Draft.of(ev.RemedyChosen(option_id=option), before[-1].actor)])
    await drive.store.append(lost, workflow_id=workflow_id(cid), run_id=run_id, update_id="lost-choice")
    try:
        await starter.send(drive.client, cid, ComplaintWorkflow.choose_remedy, cmd.ChooseRemedy(option_id=option),
                           idempotency_key="another-choice")
    except starter.DecisionRefused as refused:
        assert refused.kind == "ComplaintRefused"
    else:
        raise AssertionError("a second choice of remedy was accepted")
    await drive.wait(cid, lambda s: s.stage is Stage.awaiting_follow_up and told(s))
    assert [r.type for r in await drive.store.read(cid)].count("RemedyChosen") == 1
    await drive.witnesses_agree(cid)


async def test_a_run_closed_by_a_lost_tasks_decision_answers_its_update_before_it_completes(
        drive: Driver, intake_data: Callable[..., dict[str, Any]]) -> None:
    """The lost decision closed the complaint (the customer left): the run, closing, waits for that update to be
    sent again and answers it as recorded, instead of completing first and leaving its caller a refusal."""
    cid = await drive.submit(intake_data())
    assessed = await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    assert assessed.stage is Stage.awaiting_option_choice
    handle = drive.client.get_workflow_handle(workflow_id(cid))
    run_id = (await handle.describe()).run_id
    actor = (await drive.store.read(cid))[-1].actor
    leave = cmd.ChooseOption(option=CustomerChoice.leave)
    decided = decide.choose_option(assessed, leave, datetime.now(UTC))
    lost = chain(assessed.head, cid, datetime.now(UTC), [Draft.of(event, actor) for event in decided])
    await drive.store.append(lost, workflow_id=workflow_id(cid), run_id=run_id, update_id="lost-leave")

    # Another decision meets the stored one first: folded, the complaint is closed (the message is refused or
    # recorded, as a closed complaint takes it).
    with contextlib.suppress(starter.DecisionRefused):
        await starter.send(drive.client, cid, ComplaintWorkflow.log_message,
                           cmd.LogMessage(sender="customer", channel="web", text="Bye."))
    assert (await drive.state(cid)).stage is Stage.closed
    answered = await starter.send(drive.client, cid, ComplaintWorkflow.choose_option, leave,
                                  idempotency_key="lost-leave")
    assert answered.stage is Stage.closed
    assert (await drive.finished(cid)).stage is Stage.closed  # and then the run completes
    assert [r.type for r in await drive.store.read(cid)].count("OptionChosen") == 1


@pytest.fixture
async def drive_short(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore,
                      task_queue: str) -> AsyncIterator[Driver]:
    """Local appends, and runs that continue as new at 100 events of history."""
    options = msg.RunOptions(local_appends=True, max_history_events=100)
    async with build_worker(dev_server.client, app_pool, task_queue, run_options=options):
        yield Driver(dev_server.client, store, task_queue)


async def test_a_run_continuing_as_new_answers_a_lost_tasks_update_first(
        drive_short: Driver, intake_data: Callable[..., dict[str, Any]]) -> None:
    """The history grows long while a decision folded from a lost task waits for its update: the run answers
    that update, sent again, as recorded before it continues as new (the next run could not: it would refuse
    the choice as made already)."""
    drive = drive_short
    cid = await drive.submit(intake_data())
    assessed = await drive.send(cid, ComplaintWorkflow.assess, **valid())
    assert assessed.offer is not None
    handle = drive.client.get_workflow_handle(workflow_id(cid))
    described = await handle.describe()
    assert described.history_length < 100, "the run must not continue as new before the lost task"
    run_id = described.run_id
    before = await drive.store.read(cid)
    option = assessed.offer.options[0].id
    lost = chain(assessed.head, cid, datetime.now(UTC), [Draft.of(ev.RemedyChosen(option_id=option), before[-1].actor)])
    await drive.store.append(lost, workflow_id=workflow_id(cid), run_id=run_id, update_id="lost-choice")

    # Messages fold the stored choice, then make the history long: the run holds on to answer the choice.
    for _ in range(40):
        described = await handle.describe()
        if described.run_id != run_id or described.history_length >= 110:
            break
        await starter.send(drive.client, cid, ComplaintWorkflow.log_message,
                           cmd.LogMessage(sender="customer", channel="web", text="Any news?"))
    assert described.run_id == run_id, "continued as new with a lost task's update unanswered"

    again = await starter.send(drive.client, cid, ComplaintWorkflow.choose_remedy, cmd.ChooseRemedy(option_id=option),
                               idempotency_key="lost-choice")
    assert again.remedy_option == option
    deadline = datetime.now(UTC).timestamp() + 30
    while (await handle.describe()).run_id == run_id:  # answered: now it continues as new
        assert datetime.now(UTC).timestamp() < deadline, "the run never continued as new"
        await asyncio.sleep(0.1)
    settled = await drive.wait(cid, lambda s: s.stage is Stage.awaiting_follow_up and told(s))
    assert settled.remedy_option == option
    assert [r.type for r in await drive.store.read(cid)].count("RemedyChosen") == 1
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "lost_task_answered_before_continuing", run_id=run_id)
