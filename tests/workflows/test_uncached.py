"""A worker that caches no workflow (COMPLAINTS_WORKFLOW_CACHE=0) still runs complaints: a local activity keeps
its workflow task open past the eviction such a worker makes after every task, so its appends run as
activities (a real Temporal server, a real PostgreSQL)."""

from __future__ import annotations

from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from eventlog import PostgresEventStore
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow


async def test_a_worker_without_a_workflow_cache_appends_as_activities_and_completes(
        dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str,
        intake_data: Any) -> None:
    async with build_worker(dev_server.client, app_pool, task_queue, max_cached_workflows=0):
        drive = Driver(dev_server.client, store, task_queue)
        cid = await drive.submit(intake_data("unanswered-letter.json"))
        await drive.send(cid, ComplaintWorkflow.assess, **valid())
        await drive.send(cid, ComplaintWorkflow.withdraw)
        state = await drive.witnesses_agree(cid)
    assert not state.is_open
