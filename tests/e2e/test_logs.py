"""Structured logs: every line from the worker, its activities and the starter carries complaint_id,
workflow_id and run_id (and the update or activity name where there is one); workflow code logs once,
not again on replay."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

import logs
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow


@pytest.fixture
def captured() -> Any:
    stream = io.StringIO()
    logs.configure("INFO", json=True, stream=stream)
    yield stream
    logs.configure("WARNING", json=True)


async def test_every_line_carries_the_complaint_and_workflow_replay_adds_none(
    time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
    intake_data: Callable[..., dict[str, Any]], captured: io.StringIO,
) -> None:
    # No workflow cache: every activation replays the history from the start, the hardest case for logging.
    async with build_worker(time_skipping.client, app_pool, task_queue, max_cached_workflows=0):
        drive = Driver(time_skipping.client, store, task_queue)
        cid = await drive.submit(intake_data())
        await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="social", text="Halo?")
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
        await drive.stage(cid, Stage.awaiting_follow_up)
        await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=4)
        await drive.finished(cid)
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.strip()]
    ours = [line for line in lines if line.get("complaint_id") == cid or cid in json.dumps(line)]
    assert ours, "the run logged nothing about the complaint"
    for line in ours:
        for field in ("complaint_id", "workflow_id", "run_id", "timestamp", "level", "event"):
            assert line.get(field), f"{field} missing from {line}"
    activity_lines = [line for line in ours if line.get("logger", "").startswith(("activities", "temporalio.activity"))]
    assert {line["activity"] for line in activity_lines} >= {"append_events", "fulfil_remedy"}
    workflow_lines = [line for line in ours if line.get("logger") == "temporalio.workflow"]
    decisions = [line for line in workflow_lines if line["event"] == "decision recorded"]
    assert sorted(line["update"] for line in decisions) == ["choose_remedy", "log_message", "record_follow_up"]
    assert [line["event"] for line in workflow_lines].count("complaint received") == 1
    assert [line["event"] for line in workflow_lines].count("complaint assessed") == 1
    starter_lines = [line for line in ours if line.get("logger") == "starter"]
    assert {line["event"] for line in starter_lines} >= {"complaint submitted", "decision recorded"}
