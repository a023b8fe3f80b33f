"""Complaints per second down the valid -> remedy chosen -> fulfilled -> closed path, against the bare
workflow doing the same activities and updates with no-op bodies; and the latencies a caller feels.

Latencies are measured to the commit: the client's clock when it called, to PostgreSQL's
``recorded_at`` of the event the call led to (same machine, same clock)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.worker import Worker

import starter
from activities import messages as msg
from audit.witness import LOCAL_ACTIVITY_MARKER
from bench.bare import MARKS, BareWorkflow, Kind, Plan, Step, noop
from bench.figures import Figure, Results, percentile, stopwatch
from domain import commands as cmd
from domain.vocabulary import Stage
from settings import MailSettings, Settings
from worker import build_worker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "late-delivery.json"
#: The complaints, the same with appends as local activities (a worker option), and the bare workflow.
QUEUE, LOCAL_QUEUE, BARE_QUEUE = "bench-complaints", "bench-complaints-local", "bench-bare"
DECISIONS: list[tuple[str, dict[str, Any], str]] = [  # (update, command, the event it commits)
    # Made by the authenticated caller (the stack's operator); `by` may only restate it, so none is given.
    ("assess", {"verdict": "valid", "root_cause": "service", "findings": "Promised 2 days, took 9."},
     "ComplaintAssessed"),
    ("choose_remedy", {"option_id": "A"}, "RemedyChosen"),
    ("record_follow_up", {"satisfaction": 5}, "FollowUpRecorded"),
]


@dataclass
class Timings:
    seconds: float = 0.0
    ack: list[float] = field(default_factory=list)
    decision: list[float] = field(default_factory=list)


def _intake(prefix: str, n: int) -> Any:
    data = json.loads(EXAMPLE.read_text())
    data["complaint_id"] = f"{prefix}-{n:05d}"
    return starter.parse_intake(json.dumps(data))


async def _until_stage(client: Client, cid: str, stages: set[Stage], quiet: bool = False) -> None:
    """Until the complaint is at one of ``stages`` (and, ``quiet``, with no activity pending twice running)."""
    calm = 0
    while calm < (2 if quiet else 1):
        try:
            at = (await starter.status(client, cid)).stage in stages
            described = await starter.handle_for(client, cid).describe() if quiet else None
            idle = described is None or not described.raw_description.pending_activities
            calm = calm + 1 if at and idle else 0
        except starter.NotFound:
            calm = 0
        await asyncio.sleep(0.05 if not quiet else 0.3)


async def drive_complaint(client: Client, prefix: str, n: int, sent: dict[str, dict[str, float]],
                          settle: bool = False, task_queue: str = QUEUE) -> None:
    """``settle``: let each step's work finish before the next decision (to read phases off the history)."""
    intake = _intake(prefix, n)
    cid = intake.complaint_id
    marks = sent[cid] = {"submit": time.time()}
    await starter.submit(client, intake, task_queue=task_queue)
    settled = {Stage.awaiting_assessment, Stage.awaiting_remedy_choice, Stage.awaiting_follow_up}
    for name, arg, event in DECISIONS:
        if name == "record_follow_up":  # the follow-up is asked for once the remedy is fulfilled
            await _until_stage(client, cid, {Stage.awaiting_follow_up})
        elif settle:
            await _until_stage(client, cid, settled, quiet=True)
        marks[event] = time.time()
        for attempt in range(50):
            try:
                await starter.send(client, cid, name, cmd.COMMANDS[name].model_validate(arg))
                break
            except starter.DecisionRefused:
                # Without the workflow cache, a validator can see the state from before the last event (the
                # SDK hands it the update ahead of the activity result in the same activation): ask again.
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
    await starter.handle_for(client, cid).result()


async def drive_bare(client: Client, plan: Plan, prefix: str, n: int, sent: dict[str, dict[str, float]]) -> None:
    wid = f"{prefix}-{n:05d}"
    marks = sent[wid] = {"submit": time.time()}
    handle = await client.start_workflow(BareWorkflow.run, plan, id=wid, task_queue=BARE_QUEUE)
    for index in range(1, len(plan.updates) + 1):
        if index > 1 and plan.updates[index - 2].after:  # as the complaint's driver waits for the follow-up
            while await handle.query(BareWorkflow.settled) < index - 1:  # noqa: ASYNC110 - polls the server
                await asyncio.sleep(0.05)
        marks[f"update-{index}"] = time.time()
        await handle.execute_update(BareWorkflow.step, index)
    await handle.result()


async def _many(drive: Callable[[int], Awaitable[None]], count: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            await drive(n)

    with stopwatch() as watch:
        await asyncio.gather(*(one(n) for n in range(count)))
    return watch.seconds


def _activity_kind(event: HistoryEvent) -> Kind | None:
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return "activity"
    if (event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER):
        return "local"
    return None


async def calibrate(client: Client, pool: asyncpg.Pool) -> Plan:
    """Drive one real complaint and read off its history what the bare workflow must do."""
    prefix = f"BC{uuid.uuid4().hex[:4]}"
    await drive_complaint(client, prefix, 0, {}, settle=True)
    history = await starter.handle_for(client, f"{prefix}-00000").fetch_history()
    start: list[Kind] = []
    updates: list[Step] = []
    phase = start  # where the next activity goes: the start, inside an update, or after it
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            phase = []
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            updates.append(Step(inside=phase, after=[]))
            phase = updates[-1].after
        elif (kind := _activity_kind(event)) is not None:
            phase.append(kind)
    return Plan(start=start, updates=updates)


async def _committed(pool: asyncpg.Pool, sent: dict[str, dict[str, float]]) -> Timings:
    rows = await pool.fetch(
        "SELECT complaint_id, type, extract(epoch FROM recorded_at) AS at FROM complaint_events"
        " WHERE complaint_id = ANY($1::text[])", list(sent))
    timings = Timings()
    for row in rows:
        marks = sent[row["complaint_id"]]
        if row["type"] == "ComplaintAcknowledged":
            timings.ack.append(float(row["at"]) - marks["submit"])
        elif row["type"] in marks:
            timings.decision.append(float(row["at"]) - marks[row["type"]])
    return timings


def _from_marks(sent: dict[str, dict[str, float]]) -> Timings:
    timings = Timings()
    for wid, marks in sent.items():
        for name, at in marks.items():
            done = MARKS.get((wid, "started" if name == "submit" else name))
            if done is not None:
                (timings.ack if name == "submit" else timings.decision).append(done - at)
    return timings


async def real_run(client: Client, pool: asyncpg.Pool, count: int, concurrency: int,
                   task_queue: str = QUEUE) -> Timings:
    prefix = f"B{uuid.uuid4().hex[:4]}"
    sent: dict[str, dict[str, float]] = {}
    seconds = await _many(lambda n: drive_complaint(client, prefix, n, sent, task_queue=task_queue), count,
                          concurrency)
    timings = await _committed(pool, sent)
    timings.seconds = seconds
    return timings


async def bare_run(client: Client, plan: Plan, count: int, concurrency: int) -> Timings:
    prefix = f"bare-{uuid.uuid4().hex[:4]}"
    sent: dict[str, dict[str, float]] = {}
    seconds = await _many(lambda n: drive_bare(client, plan, prefix, n, sent), count, concurrency)
    timings = _from_marks(sent)
    timings.seconds = seconds
    return timings


async def measure(client: Client, pool: asyncpg.Pool, results: Results, advance: Callable[[str], None],
                  count: int = 160, concurrency: int = 20, mail: MailSettings | None = None) -> None:
    """``mail``: the relay the workers send through (the bench's runs in a process of its own, as in production:
    the stack's, in this process, would have the measured process serve SMTP too)."""
    section = "1. Throughput and latency"
    # Appends as local activities (COMPLAINTS_LOCAL_APPENDS=1; activities by default, see settings.py); the same
    # complaints with appends as (remote) activities are the baseline of issue 17's goals, on a queue of their own.
    configured = msg.RunOptions(**Settings().run_options())
    local_appends = configured.model_copy(update={"local_appends": True})
    activity_appends = configured.model_copy(update={"local_appends": False})
    async with Worker(client, task_queue=BARE_QUEUE, workflows=[BareWorkflow], activities=[noop]), \
            build_worker(client, pool, QUEUE, run_options=local_appends, mail=mail), \
            build_worker(client, pool, LOCAL_QUEUE, run_options=activity_appends, mail=mail):
        plan = await calibrate(client, pool)
        await bare_run(client, plan, 10, concurrency)  # warm both up: imports, caches, connections
        await real_run(client, pool, 10, concurrency)
        advance("throughput: warmed up")
        # Alternated, twice each, so that a slow minute of the machine falls on every side. The activity-append
        # path runs half as many complaints in all.
        bare, ours, local = Timings(), Timings(), Timings()
        runs: list[tuple[Timings, Callable[[], Awaitable[Timings]]]] = [
            (bare, lambda: bare_run(client, plan, count // 2, concurrency)),
            (ours, lambda: real_run(client, pool, count // 2, concurrency)),
            (local, lambda: real_run(client, pool, count // 4, concurrency, task_queue=LOCAL_QUEUE)),
        ]
        for round_ in (1, 2):
            for total, run in runs:
                measured = await run()
                total.seconds += measured.seconds
                total.ack += measured.ack
                total.decision += measured.decision
            advance(f"throughput: round {round_} of 2 (bare Temporal, complaints, activity appends)")
    shape = f"{count} complaints, {concurrency} concurrent starters; per complaint {len(plan.activities)} " \
            f"activities ({plan.activities.count('local')} of them local), {len(plan.updates)} updates"
    results.add(Figure(section, "complaints/s, valid -> remedy -> fulfilled -> closed", count / ours.seconds,
                       count / bare.seconds, "complaints/s", goal=">= 0.85 of bare Temporal",
                       met=(count / ours.seconds) >= 0.85 * (count / bare.seconds), note=shape))
    for name, mine, base in [("submit -> acknowledged", ours.ack, bare.ack),
                             ("decision update -> its event committed", ours.decision, bare.decision)]:
        for p in (50, 95):
            results.add(Figure(section, f"p{p} {name}", percentile(mine, p) * 1000, percentile(base, p) * 1000,
                               "ms", higher_is_better=False,
                               note=f"{len(mine)} samples; baseline: the bare workflow's no-op activity ran"))
    rate, activity_rate = count / ours.seconds, count // 2 / local.seconds
    results.add(Figure(section, "complaints/s, appends as local activities vs as activities", rate,
                       activity_rate, "complaints/s", goal=">= 1.3 of activity appends",
                       met=rate >= 1.3 * activity_rate,
                       note=f"{count} vs {count // 2} complaints, alternated in the same run"))
    p50, p50_activity = percentile(ours.decision, 50) * 1000, percentile(local.decision, 50) * 1000
    results.add(Figure(section, "p50 decision -> committed, local vs activity appends", p50, p50_activity, "ms",
                       higher_is_better=False, goal="<= 0.6 of activity appends", met=p50 <= 0.6 * p50_activity,
                       note="both in the same run"))
    results.lever("local activities for appends",
                  f"{rate:.1f} complaints/s, p50 decision -> committed {p50:,.0f} ms with appends as local "
                  f"activities vs {activity_rate:.1f} complaints/s, {p50_activity:,.0f} ms as activities",
                  "kept, off by default (COMPLAINTS_LOCAL_APPENDS=1): safe against a killed worker and a lost "
                  "workflow task (the log returns the batch the run stored there, and the run folds it), but "
                  "temporalio 1.35's core can defer a local activity's result past a query's workflow task, "
                  "leaving a history that does not replay (make reliability, Temporal SIGKILL)")
    async with build_worker(client, pool, QUEUE, max_cached_workflows=0, mail=mail):
        uncached = await real_run(client, pool, count // 2, concurrency)
    advance("throughput: without the sticky cache")
    results.lever("sticky queues / workflow cache",
                  f"{count / ours.seconds:.1f} complaints/s cached vs {count // 2 / uncached.seconds:.1f} with "
                  "max_cached_workflows=0 (every task replays the history)",
                  "kept: the SDK default (cache on, sticky queues)")
