"""Bad input is refused with the field and the reason, and leaves no trace: no workflow, no history event,
no log row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.workflows.driver import Driver
from tests.workflows.test_paths import invalid, valid
from workflows.complaint import ComplaintWorkflow

Data = Callable[..., dict[str, Any]]


@pytest.fixture
def drive(time_skipping: WorkflowEnvironment, store: PostgresEventStore, worker: Worker, task_queue: str) -> Driver:
    return Driver(time_skipping.client, store, task_queue)


@pytest.fixture
def real(dev_server: WorkflowEnvironment, store: PostgresEventStore, dev_worker: Worker, task_queue: str) -> Driver:
    """On a real server: a rejected update leaves no event at all in history (a speculative workflow task),
    which the time-skipping server does not implement."""
    return Driver(dev_server.client, store, task_queue)


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


BAD_INTAKES: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = [
    ("missing customer", lambda d: without(d, "customer"), "customer"),
    ("unknown channel", lambda d: {**d, "channel": "fax"}, "channel"),
    ("empty description", lambda d: {**d, "description": ""}, "description"),
    ("blank description", lambda d: {**d, "description": "   \n"}, "description"),
    ("bad jurisdiction", lambda d: {**d, "jurisdiction": "Atlantis"}, "jurisdiction"),
    ("severity as a number", lambda d: {**d, "severity": 3}, "severity"),
    ("money as a float", lambda d: {**d, "subject": {**d["subject"], "value": {"amount_minor": 12.5,
                                                                               "currency": "IDR"}}},
     "subject.value.amount_minor"),
    ("an extra field", lambda d: {**d, "priority": "urgent"}, "priority"),
    ("a naive timestamp", lambda d: {**d, "occurred_at": "2026-11-10T09:30:00"}, "occurred_at"),
    ("occurred in the future", lambda d: {**d, "occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at"),
]


@pytest.mark.parametrize(("case", "spoil", "field"), BAD_INTAKES, ids=[c[0] for c in BAD_INTAKES])
async def test_an_invalid_complaint_is_refused_and_starts_nothing(
    drive: Driver, intake_data: Data, case: str, spoil: Callable[[dict[str, Any]], dict[str, Any]], field: str
) -> None:
    data = spoil(intake_data())
    with pytest.raises(starter.InvalidInput) as refused:
        starter.parse_intake(json.dumps(data))
    assert field in [e.field for e in refused.value.errors], refused.value.errors
    with pytest.raises(starter.NotFound):
        await starter.status(drive.client, data["complaint_id"])
    assert await drive.store.read(data["complaint_id"]) == []


def test_the_cli_refuses_an_invalid_complaint_with_exit_code_2(tmp_path: Any, intake_data: Data) -> None:
    data = {**without(intake_data(), "customer"), "channel": "fax", "jurisdiction": "XX"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"}  # nothing listens: nothing may be contacted
    done = subprocess.run([sys.executable, "-m", "cli.main", "submit", str(path)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    for name in ("customer", "channel", "jurisdiction"):
        assert name in done.stderr


async def test_a_workflow_started_raw_with_malformed_input_fails_at_once_naming_the_fields(
    drive: Driver, intake_data: Data
) -> None:
    data = {**without(intake_data(), "customer"), "channel": "fax"}
    handle = await drive.client.start_workflow("ComplaintWorkflow", data, id=workflow_id(data["complaint_id"]),
                                               task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
    assert "customer" in cause.message and "channel" in cause.message
    assert data["description"] not in cause.message  # no echo of the (personal) input
    assert await drive.store.read(data["complaint_id"]) == []


async def test_submitting_the_same_complaint_twice_returns_the_existing_one(drive: Driver, intake_data: Data) -> None:
    data = intake_data()
    cid = await drive.submit(data)
    again = await starter.submit(drive.client, starter.parse_intake(json.dumps(data)), task_queue=drive.task_queue)
    assert not again.created and again.workflow_id == workflow_id(cid)
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    closed_again = await starter.submit(drive.client, starter.parse_intake(json.dumps(data)),
                                        task_queue=drive.task_queue)
    assert not closed_again.created
    assert (await drive.types(cid)).count("ComplaintReceived") == 1


# Commands that do not fit each stage, with the arguments they would otherwise take.
WRONG: dict[str, list[tuple[Callable[..., Any], dict[str, Any]]]] = {
    "awaiting_assessment": [
        (ComplaintWorkflow.choose_remedy, {"option_id": "A"}),
        (ComplaintWorkflow.choose_option, {"option": "stay"}),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 5}),
        (ComplaintWorkflow.close, {"outcome": "resolved", "note": "n"}),
        (ComplaintWorkflow.move_offline, {"rung": "email", "detail": "a@example.com"}),  # on email already: no step up
    ],
    "awaiting_remedy_choice": [
        (ComplaintWorkflow.assess, valid()),
        (ComplaintWorkflow.choose_remedy, {"option_id": "Z"}),
        (ComplaintWorkflow.choose_option, {"option": "leave"}),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 1}),
    ],
    "awaiting_option_choice": [
        (ComplaintWorkflow.assess, invalid()),
        (ComplaintWorkflow.choose_remedy, {"option_id": "A"}),
        (ComplaintWorkflow.close, {"outcome": "resolved", "note": "n"}),
    ],
    "awaiting_follow_up": [
        (ComplaintWorkflow.assess, valid()),
        (ComplaintWorkflow.choose_remedy, {"option_id": "A"}),
        (ComplaintWorkflow.choose_option, {"option": "stay"}),
        (ComplaintWorkflow.extend_deadline, {"reason": "r", "notice": "n"}),  # the final response was already given
    ],
}


async def _reach(drive: Driver, cid: str, stage: str) -> None:
    if stage == "awaiting_remedy_choice":
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
    elif stage == "awaiting_option_choice":
        await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    elif stage == "awaiting_follow_up":
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
        await drive.stage(cid, Stage.awaiting_follow_up)


@pytest.mark.parametrize("stage", list(WRONG))
async def test_decisions_that_do_not_fit_the_stage_are_refused_without_a_trace(
    real: Driver, intake_data: Data, stage: str
) -> None:
    drive = real
    cid = await drive.submit(intake_data("wrong-size.json"))  # received by web form: on the email rung
    await _reach(drive, cid, stage)
    before = (await drive.history_length(cid), await drive.types(cid))
    for update, fields in WRONG[stage]:
        with pytest.raises(starter.DecisionRefused) as refused:
            await drive.send(cid, update, **fields)
        assert refused.value.kind == "ComplaintRefused"
        assert f"stage {stage}" in str(refused.value)
    assert (await drive.history_length(cid), await drive.types(cid)) == before
    assert (await drive.state(cid)).stage.value == stage


async def test_a_malformed_update_argument_is_rejected_by_name_without_a_trace(real: Driver, intake_data: Data) -> None:
    drive = real
    cid = await drive.submit(intake_data())
    await _reach(drive, cid, "awaiting_follow_up")
    before = await drive.history_length(cid)
    handle = drive.client.get_workflow_handle(workflow_id(cid))
    from temporalio.client import WorkflowUpdateFailedError

    for bad in ({"satisfaction": "five"}, {"satisfaction": 9}, {"satisfaction": 4, "mood": "fine"}, {}):
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            # A raw dict, not the model (which would refuse it before sending): what an untyped client may send.
            await handle.execute_update(ComplaintWorkflow.record_follow_up, bad)
        cause = rejected.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
        assert "satisfaction" in cause.message or "mood" in cause.message
    assert await drive.history_length(cid) == before


async def test_a_closed_complaint_takes_no_more_decisions(drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    with pytest.raises(starter.DecisionRefused):
        await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text="Hello?")
    assert (await drive.types(cid))[-1] == "ComplaintClosed"
