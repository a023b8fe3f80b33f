"""ForgetRefusedRun: a refused run whose input held plaintext personal data is deleted from Temporal once
its caller has had time to read why (a minute or so), instead of waiting for the namespace's retention.

Started by the refused run as an abandoned child, so it outlives it; its own input holds only ids."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import messages as msg


@workflow.defn(name="ForgetRefusedRun")
class ForgetRefusedRun:
    @workflow.run
    async def run(self, request: msg.ForgetRun) -> None:
        await workflow.sleep(timedelta(seconds=request.after_seconds))
        await workflow.execute_activity(
            msg.forget_run, request, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                                     maximum_attempts=50),
        )
