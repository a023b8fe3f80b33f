"""Where an assessment's remedy quote runs: beside a local append, as a local activity, when the worker's catalogue
is the built-in one (quick); as an activity when a catalogue is handed in (it may be slow, and a local activity
holds its workflow task, and the clock's timers, while it runs)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities import messages as msg
from activities.remedies import RemedyCatalogue
from audit.witness import LOCAL_ACTIVITY_MARKER
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow


@pytest.mark.parametrize("handed_in", [False, True], ids=["built-in-catalogue", "catalogue-handed-in"])
async def test_the_quote_runs_locally_only_with_the_built_in_catalogue(
        dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore,
        intake_data: Callable[..., dict[str, Any]], handed_in: bool) -> None:
    catalogue = RemedyCatalogue(app_pool)

    @activity.defn(name=msg.QUOTE_REMEDIES)
    async def priced_elsewhere(request: msg.QuoteRequest) -> msg.Quote:
        return await catalogue.quote_remedies(request)

    queue = f"complaints-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_server.client, app_pool, queue, run_options=msg.RunOptions(local_appends=True),
                            remedy_catalogue=priced_elsewhere if handed_in else None):
        drive = Driver(dev_server.client, store, queue)
        cid = await drive.submit(intake_data())
        assessed = await drive.send(cid, ComplaintWorkflow.assess, **valid())
        assert assessed.stage is Stage.awaiting_remedy_choice and assessed.offer is not None
        history = await drive.client.get_workflow_handle(workflow_id(cid)).fetch_history()
    local = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
             and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
             and b'"quote_remedies"' in e.marker_recorded_event_attributes.details["data"].payloads[0].data]
    scheduled = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name == msg.QUOTE_REMEDIES]
    assert (len(local), len(scheduled)) == ((0, 1) if handed_in else (1, 0))
