"""Driving a complaint in a test: start it, send decisions, wait for the workflow to act, compare witnesses."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from temporalio.client import Client
from temporalio.workflow import UpdateMethodMultiParam

import starter
from audit.verify import Verifier
from domain import commands as cmd
from domain.chain import check_chain
from domain.complaint import Complaint, fold
from domain.personal import open_payload
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from eventlog.keys import CustomerKeyring, master_key
from settings import workflow_id
from workflows.complaint import ComplaintWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
C = TypeVar("C", bound=cmd.Command)


def command(update: UpdateMethodMultiParam[[ComplaintWorkflow, C], Complaint], **fields: Any) -> C:
    """The update's argument from its fields, checked by the update's model (cmd.COMMANDS, by the name the
    update goes by on the wire)."""
    return cast(C, cmd.COMMANDS[starter.update_name(update)].model_validate(fields))


#: The events of the conversation with the customer: they run beside the process (tests/workflows/test_messages.py).
CONVERSATION = frozenset({"ConversationOpened", "MessageSent", "MessageDeliveryFailed", "MessageHandedToAgent"})


def told(state: Complaint) -> bool:
    """Nothing owed to the customer is waiting to go out now (a follow-up waits for its own day): the complaint
    is settled, so a test's before-and-after comparison is not disturbed by a message still being sent."""
    return not state.is_open or all(o.template == "follow_up" for o in state.outbox)


class Driver:
    def __init__(self, client: Client, store: PostgresEventStore, task_queue: str) -> None:
        self.client = client
        self.store = store
        self.task_queue = task_queue
        self.handles: dict[str, Any] = {}

    async def submit(self, data: dict[str, Any]) -> str:
        intake = starter.parse_intake(json.dumps(data))
        result = await starter.submit(self.client, intake, task_queue=self.task_queue)
        assert result.created
        self.handles[intake.complaint_id] = result.handle
        await self.wait(intake.complaint_id, lambda s: s.stage is not Stage.received and told(s))
        return intake.complaint_id

    async def send(self, cid: str, update: UpdateMethodMultiParam[[ComplaintWorkflow, C], Complaint],
                   **fields: Any) -> Complaint:
        """Send a decision by the workflow's update method (``ComplaintWorkflow.assess``), its argument built
        from ``fields``: a renamed update fails here, at once, not as an unknown name at run time."""
        await starter.send(self.client, cid, update, command(update, **fields))
        return await self.wait(cid, told)

    async def state(self, cid: str) -> Complaint:
        return await starter.status(self.client, cid)

    async def wait(self, cid: str, done: Callable[[Complaint], bool], timeout: float = 30) -> Complaint:
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = await starter.status(self.client, cid)
                if done(state):
                    return state
            except starter.NotFound:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{cid} did not get there in {timeout} s")
            await asyncio.sleep(0.05)

    async def stage(self, cid: str, stage: Stage) -> Complaint:
        return await self.wait(cid, lambda s: s.stage is stage)

    async def finished(self, cid: str) -> Complaint:
        """Wait for the workflow to complete. Through the handle its start returned, the time-skipping server
        skips timers meanwhile."""
        return await self.handles[cid].result()

    async def opened(self, cid: str) -> list[dict[str, Any]]:
        """Payloads as an authorised reader sees them: personal fields opened with the customer's key."""
        opener = await CustomerKeyring(self.store.pool, master_key()).opener()
        return [open_payload(r.type, r.payload, cid, r.sequence, opener) for r in await self.store.read(cid)]

    async def types(self, cid: str, *, conversation: bool = False) -> list[str]:
        """The log's event types: the process's, and with ``conversation`` also the messages sent to the
        customer (which go out beside the process, so their place among its events varies)."""
        return [r.type for r in await self.store.read(cid) if conversation or r.type not in CONVERSATION]

    async def witnesses_agree(self, cid: str) -> Complaint:
        """The chain verifies, and fold(log) equals the workflow's state field for field, head included."""
        records = await self.store.read(cid)
        head, breaks = check_chain(cid, records)
        assert breaks == []
        folded = fold(records)
        reported = await self.state(cid)
        assert folded is not None
        assert folded.model_dump(mode="json") == reported.model_dump(mode="json")
        assert reported.head == head
        # And the auditor's verify agrees: record by record against the history, and the history replays.
        verification = await Verifier(self.store, self.client).verify([cid])
        assert verification.ok, verification.breaks
        return reported

    async def history_length(self, cid: str) -> int:
        history = await self.client.get_workflow_handle(workflow_id(cid)).fetch_history()
        return len(history.events)

    async def save_history(self, cid: str, name: str, run_id: str | None = None) -> None:
        """With SAVE_HISTORIES=1, keep this path's history (of its latest run, or of ``run_id``) for the replay
        test."""
        if os.environ.get("SAVE_HISTORIES") != "1":
            return
        history = await self.client.get_workflow_handle(workflow_id(cid), run_id=run_id).fetch_history()
        folder = HISTORIES / os.environ.get("HISTORY_SET", "unsorted")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(history.to_json(), encoding="utf-8")
