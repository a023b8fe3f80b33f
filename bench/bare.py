"""The baseline: a bare Temporal workflow doing what a complaint's workflow does to Temporal (the same number
of activities, of the same kinds (activity or local activity), at the same moments, and the same updates)
with bodies that do nothing.

The plan is read off a real complaint's history (see ``throughput.calibrate``), so the baseline follows
the workflow as it is, not as it was when this file was written."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import activity, workflow

#: When the last activity of a marked step ran, by workflow id: the bench hosts these activities itself.
#: (An activity's ``workflow_id`` is typed optional for standalone activities; these always have one.)
MARKS: dict[tuple[str | None, str], float] = {}


Kind = Literal["activity", "local"]


class Step(BaseModel):
    """An update: activities it awaits before replying, then activities the workflow runs after it."""

    inside: list[Kind]
    after: list[Kind]


class Plan(BaseModel):
    start: list[Kind]
    updates: list[Step]

    @property
    def activities(self) -> list[Kind]:
        return self.start + [kind for step in self.updates for kind in step.inside + step.after]


@activity.defn(name="bare_noop")
async def noop(mark: str) -> None:
    if mark:
        MARKS[(activity.info().workflow_id, mark)] = time.time()


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    def __init__(self) -> None:
        self._plan: Plan | None = None
        self._settled = -1  # the last step whose after-work is done (0: the start)
        self._answered = 0  # updates answered

    @workflow.run
    async def run(self, plan: Plan) -> int:
        self._plan = plan
        await self._activities(plan.start, mark="started")
        self._settled = 0
        for index, step in enumerate(plan.updates, start=1):
            await workflow.wait_condition(self._answered_upto(index))
            await self._activities(step.after)
            self._settled = index
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._answered

    def _answered_upto(self, index: int) -> Callable[[], bool]:
        return lambda: self._answered >= index

    @workflow.query
    def settled(self) -> int:
        return self._settled

    @workflow.update
    async def step(self, index: int) -> int:
        """Like a decision: waits for the complaint to be ready for it, records, replies."""
        await workflow.wait_condition(lambda: self._settled == index - 1)
        assert self._plan is not None
        await self._activities(self._plan.updates[index - 1].inside, mark=f"update-{index}")
        self._answered = index
        return index

    async def _activities(self, kinds: list[Kind], mark: str = "") -> None:
        for n, kind in enumerate(kinds):
            run = workflow.execute_local_activity if kind == "local" else workflow.execute_activity
            await run(noop, mark if n == len(kinds) - 1 else "", start_to_close_timeout=timedelta(seconds=30))
