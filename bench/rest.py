"""The memory baseline: a bare workflow that issues the commands a complaint's run holds at rest (as many
activities, local activities, patch markers, search-attribute upserts and timers, read off a real complaint's
history), with bodies and payloads of nothing, then waits on a timer. What the SDK keeps for such a run, cached,
is the floor a complaint's run cannot go under: a state machine per command the run ever issued.

Run as ``python -m bench.rest ADDRESS TASK_QUEUE CACHE`` (a worker process, as ``python -m worker`` is)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

#: A keyword attribute the dev server registers (workflows.attributes): what the bare run upserts.
STATUS = SearchAttributeKey.for_keyword("ComplaintStatus")


class Commands(BaseModel):
    """What a run holds at rest, by kind of command."""

    activities: int = 0
    local_activities: int = 0
    patches: int = 0
    upserts: int = 0  # besides the one the SDK makes for each patch
    timers: int = 0  # besides the one it waits on

    @property
    def total(self) -> int:
        # A patch costs its marker and the upsert of the change-version attribute; the run waits on one timer.
        return self.activities + self.local_activities + 2 * self.patches + self.upserts + self.timers + 1

    @classmethod
    def of(cls, events: Iterable[HistoryEvent]) -> Commands:
        """The commands a history's run issued until it waits (the last timer it started, not counted)."""
        kinds: Counter[str] = Counter()
        for event in events:
            if event.HasField("marker_recorded_event_attributes"):
                name = event.marker_recorded_event_attributes.marker_name
                kinds["patches" if name == "core_patch" else "local_activities"] += 1
            elif event.HasField("upsert_workflow_search_attributes_event_attributes"):
                kinds["upserts"] += 1
            elif event.HasField("activity_task_scheduled_event_attributes"):
                kinds["activities"] += 1
            elif event.HasField("timer_started_event_attributes"):
                kinds["timers"] += 1
        return cls(activities=kinds["activities"], local_activities=kinds["local_activities"],
                   patches=kinds["patches"], upserts=kinds["upserts"] - kinds["patches"],
                   timers=max(kinds["timers"] - 1, 0))


@activity.defn(name="rest_noop")
async def noop() -> None:
    return None


@workflow.defn(name="RestingWorkflow")
class RestingWorkflow:
    @workflow.run
    async def run(self, commands: Commands) -> None:
        for n in range(commands.patches):
            workflow.patched(f"rest-{n}")
        for _ in range(commands.local_activities):
            await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        for n in range(commands.upserts):
            workflow.upsert_search_attributes([STATUS.value_set(f"s{n}")])
        for _ in range(commands.activities):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        for _ in range(commands.timers):
            await workflow.sleep(timedelta(milliseconds=1))
        await workflow.sleep(timedelta(days=30))


async def main(address: str, task_queue: str, cache: int) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    runner = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules("bench"))
    worker = Worker(client, task_queue=task_queue, workflows=[RestingWorkflow], activities=[noop],
                    max_cached_workflows=cache, workflow_runner=runner)
    print('{"event": "worker started"}', flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
