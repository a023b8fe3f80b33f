"""A scripted load: complaints down every path at once, each decision sent with an idempotency key and
retried through outages until it lands, then every complaint checked against the events its path must
leave in the log, no more (duplicated) and no fewer (lost)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

import starter
from domain import commands as cmd
from domain.complaint import Complaint
from domain.vocabulary import Stage
from eventlog import EventStore
from tests.workflows.driver import CONVERSATION, command
from workflows.complaint import ComplaintWorkflow

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
INTAKE = ["ComplaintReceived", "SlaDeadlinesSet", "ComplaintAcknowledged"]
VALID = ["ComplaintAssessed", "ApologyIssued", "RemedyOffered"]
INVALID = ["ComplaintAssessed", "ExplanationGiven", "OptionsOffered"]
DONE = ["FollowUpRecorded", "ComplaintClosed"]
FULFILLED = ["RemedyChosen", "RemedyFulfilled", "FollowUpScheduled"]

#: An update by the workflow's method with its fields, or a step of the script's own: ("wait", stage) until the
#: complaint gets there, ("burst", {"count": n}) messages sent at once.
Step = tuple[Callable[..., Any], dict[str, Any]] | tuple[str, dict[str, Any]] | tuple[str, Stage]


@dataclass(frozen=True)
class Script:
    name: str
    example: str
    steps: list[Step]
    events: list[str]
    outcome: str


def _assess_valid(root: str = "third_party") -> dict[str, Any]:
    return {"verdict": "valid", "root_cause": root, "findings": "Promise broken.", "by": "agent:load"}


def _assess_invalid() -> dict[str, Any]:
    return {"verdict": "invalid", "root_cause": "customer_misunderstanding", "findings": "Rules followed.",
            "sop_reference": "SOP 1", "by": "agent:load"}


PATHS = [
    Script("valid", "late-delivery.json", [
        (ComplaintWorkflow.move_offline, {"rung": "email", "detail": "load@example.com"}),
        (ComplaintWorkflow.log_message, {"sender": "customer", "channel": "email", "text": "Where is it?"}),
        (ComplaintWorkflow.assess, _assess_valid()),
        (ComplaintWorkflow.choose_remedy, {"option_id": "A"}),
        ("wait", Stage.awaiting_follow_up),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 5}),
    ], [*INTAKE, "ContactMoveRequested", "ContactMovedOffline", "ContactMoveRequested", "MessageLogged", *VALID,
        *FULFILLED, *DONE], "resolved"),
    Script("partially_valid", "faulty-kettle.json", [
        (ComplaintWorkflow.assess, {"verdict": "partially_valid", "root_cause": "product", "findings": "Both.",
                    "sop_reference": "Manual 4"}),
        (ComplaintWorkflow.choose_remedy, {"option_id": "B"}),
        ("wait", Stage.awaiting_follow_up),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 4}),
    ], [*INTAKE, "ContactMoveRequested", "ComplaintAssessed", "ApologyIssued", "ExplanationGiven", "RemedyOffered",
        *FULFILLED, *DONE], "resolved"),
    Script("invalid_stays", "roaming-charges.json", [
        (ComplaintWorkflow.assess, _assess_invalid()),
        (ComplaintWorkflow.choose_option, {"option": "stay"}),
        ("wait", Stage.awaiting_follow_up),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 3}),
    ], [*INTAKE, *INVALID, "OptionChosen", "FollowUpScheduled", *DONE], "resolved"),
    Script("invalid_leaves", "gym-contract.json", [
        (ComplaintWorkflow.assess, _assess_invalid()),
        (ComplaintWorkflow.choose_option, {"option": "leave"}),
    ], [*INTAKE, "ContactMoveRequested", *INVALID, "OptionChosen", "CustomerChurned", "ComplaintClosed"],
        "customer_left"),
    Script("withdrawn", "wrong-size.json", [
        (ComplaintWorkflow.log_message, {"sender": "customer", "channel": "web", "text": "Found it, sorry."}),
        (ComplaintWorkflow.withdraw, {"reason": "Found it."}),
    ], [*INTAKE, "ContactMoveRequested", "MessageLogged", "ComplaintWithdrawn", "ComplaintClosed"], "withdrawn"),
    Script("reopened", "roaming-charges.json", [
        (ComplaintWorkflow.assess, _assess_invalid()),
        (ComplaintWorkflow.choose_option, {"option": "stay"}),
        ("wait", Stage.awaiting_follow_up),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 2}),
        (ComplaintWorkflow.assess, _assess_valid("communication")),
        (ComplaintWorkflow.choose_remedy, {"option_id": "A"}),
        ("wait", Stage.awaiting_follow_up),
        (ComplaintWorkflow.record_follow_up, {"satisfaction": 4}),
    ], [*INTAKE, *INVALID, "OptionChosen", "FollowUpScheduled", "FollowUpRecorded", "ComplaintReopened",
        "SlaDeadlinesReset", *VALID,
        *FULFILLED, *DONE], "resolved"),
]

CHATTY = Script("chatty", "wrong-size.json", [
    ("burst", {"count": 8}),
    (ComplaintWorkflow.withdraw, {"reason": "Sorted."}),
], [*INTAKE, "ContactMoveRequested", *["MessageLogged"] * 8, "ComplaintWithdrawn", "ComplaintClosed"], "withdrawn")

# An update whose call timed out (no worker for a while, the log down) is sent again under the same id:
# Temporal answers a repeat with the first outcome.
TRANSIENT = (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError, ConnectionError, OSError)


async def persist(action: Callable[[], Awaitable[Any]], deadline: float) -> Any:
    """Retry through outages (Temporal restarting, no worker polling) until the deadline."""
    delay = 0.2
    while True:
        try:
            return await asyncio.wait_for(action(), timeout=30)
        except TRANSIENT:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3)


@dataclass
class Outcome:
    complaint_id: str
    path: str
    final: Complaint | None = None
    error: str | None = None


async def drive_one(client: Client, path: Script, deadline: float) -> Outcome:
    data = json.loads((EXAMPLES / path.example).read_text())
    data["complaint_id"] = f"L-{path.name[:4]}-{uuid.uuid4().hex[:8]}"
    intake = starter.parse_intake(json.dumps(data))
    cid = intake.complaint_id
    outcome = Outcome(cid, path.name)
    try:
        await persist(lambda: starter.submit(client, intake), deadline)
        for index, (step, arg) in enumerate(path.steps):
            if step == "wait":
                await wait_for(client, cid, lambda s, stage=arg: s.stage is stage, deadline)
                continue
            if step == "burst":  # concurrent decisions on one complaint: the workflow serialises them
                await asyncio.gather(*(persist(
                    lambda n=n, index=index: starter.send(client, cid, ComplaintWorkflow.log_message, cmd.LogMessage(
                        sender="customer", channel="web", text=f"burst {n}"), idempotency_key=f"{cid}/{index}/{n}"),
                    deadline) for n in range(arg["count"])))
                continue
            assert not isinstance(step, str) and isinstance(arg, dict), step
            decision = command(step, **arg)
            await persist(lambda step=step, decision=decision, index=index: starter.send(
                client, cid, step, decision, idempotency_key=f"{cid}/{index}"), deadline)
        outcome.final = await wait_for(client, cid, lambda s: s.stage is Stage.closed, deadline)
    except Exception as error:  # noqa: BLE001 - a lost complaint is a finding, not a crash of the load
        outcome.error = f"{type(error).__name__}: {error}"
    return outcome


async def wait_for(client: Client, cid: str, done: Callable[[Complaint], bool], deadline: float) -> Complaint:
    while True:
        try:
            state = await asyncio.wait_for(starter.status(client, cid), timeout=20)
            if done(state):
                return state
        except (*TRANSIENT, starter.NotFound):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{cid} did not get there in time")
        await asyncio.sleep(0.3)


@dataclass
class Tally:
    complaints: int = 0
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)


async def run_load(client: Client, n: int, *, concurrency: int = 16, timeout: float = 900,
                   seed: int = 1, scripts: list[Script] | None = None) -> list[Outcome]:
    rng = random.Random(seed)
    scripts = scripts or PATHS
    paths = [scripts[i % len(scripts)] for i in range(n)]
    rng.shuffle(paths)
    gate = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + timeout

    async def one(path: Script) -> Outcome:
        async with gate:
            return await drive_one(client, path, deadline)

    return list(await asyncio.gather(*(one(p) for p in paths)))


async def tally(outcomes: list[Outcome], store: EventStore, extra: tuple[Script, ...] = ()) -> Tally:
    """Lost: a complaint that did not reach its path's end, or lacks an event it must have. Duplicated: an
    event beyond what its path writes (a decision recorded twice, an intake received twice)."""
    by_name = {p.name: p for p in [*PATHS, CHATTY, *extra]}
    result = Tally(complaints=len(outcomes))
    for outcome in outcomes:
        path = by_name[outcome.path]
        records = await store.read(outcome.complaint_id)
        result.events += len(records)
        # The conversation runs beside the process: its messages are checked by their keys (each message owed
        # is settled once: sent, refused or handed over), the process by its path.
        types = [r.type for r in records if r.type not in CONVERSATION]
        messages = Counter(r.payload["key"] for r in records if r.type in CONVERSATION and "key" in r.payload)
        result.duplicated += sum(n - 1 for n in messages.values())
        expected, got = Counter(path.events), Counter(types)
        extra = sum((got - expected).values())
        missing = sum((expected - got).values())
        result.duplicated += extra
        ended = outcome.final is not None and outcome.final.outcome is not None \
            and outcome.final.outcome.value == path.outcome
        if missing or not ended or outcome.error:
            result.lost += 1
            result.problems.append(f"{outcome.complaint_id} ({path.name}): {outcome.error or ''} missing "
                                   f"{dict(expected - got)} extra {dict(got - expected)}")
        elif types != path.events:
            result.problems.append(f"{outcome.complaint_id} ({path.name}): events out of order: {types}")
            result.lost += 1
    return result
