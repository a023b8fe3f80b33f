"""Worker memory: the resident set of a real worker process (``python -m worker``) holding 1,000 open
complaints, each acknowledged and waiting on its SLA timers, against the same worker idle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

import starter
from bench import rest
from bench.figures import Figure, Results
from dev.stack import Stack, die_with_parent
from settings import Settings, workflow_id

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "late-delivery.json"
QUEUE = "bench-memory"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.5)


async def _worker_rss(command: list[str], env: dict[str, str], log_file: Path,
                      load: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """RSS (MB) of a worker process: idle, then once ``load`` has returned and its last tasks settled."""
    with log_file.open("wb") as out:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
    try:
        async def started() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited; see {log_file}")
            return '"worker started"' in log_file.read_text(errors="replace")

        await _until(started, "the worker did not start", 60)
        await asyncio.sleep(2)
        idle = rss_mb(worker.pid)
        await load()
        await asyncio.sleep(5)  # the last workflow tasks settle; every run now waits on its timers
        return idle, rss_mb(worker.pid)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


async def loaded_worker(stack: Stack, client: Client, pool: asyncpg.Pool, complaints: int, cache: int,
                        log_file: Path) -> tuple[float, float, str]:
    """RSS (MB) of a worker with workflow cache ``cache``: idle, then with ``complaints`` open ones; and the
    first complaint's id."""
    env = {**os.environ, **stack.environment(), "COMPLAINTS_TASK_QUEUE": QUEUE,
           "COMPLAINTS_WORKFLOW_CACHE": str(cache)}
    prefix = f"M{uuid.uuid4().hex[:4]}"

    async def load() -> None:
        data = json.loads(EXAMPLE.read_text())
        gate = asyncio.Semaphore(50)

        async def submit(n: int) -> None:
            async with gate:
                data_n = {**data, "complaint_id": f"{prefix}-{n:05d}"}
                await starter.submit(client, starter.parse_intake(json.dumps(data_n)), task_queue=QUEUE)

        await asyncio.gather(*(submit(n) for n in range(complaints)))

        async def all_acknowledged() -> bool:
            done = await pool.fetchval("SELECT count(*) FROM complaint_events WHERE type = 'ComplaintAcknowledged'"
                                       " AND complaint_id LIKE $1", f"{prefix}-%")
            return int(done) >= complaints

        await _until(all_acknowledged, "the complaints were not all acknowledged")

    idle, loaded = await _worker_rss([sys.executable, "-m", "worker"], env, log_file, load)
    return idle, loaded, f"{prefix}-{0:05d}"


async def resting_worker(stack: Stack, commands: rest.Commands, runs: int, cache: int,
                         log_file: Path) -> tuple[float, float]:
    """RSS (MB) of a worker of the bare resting workflow (bench.rest): idle, then with ``runs`` of them waiting."""
    client = await Client.connect(stack.temporal_address, data_converter=pydantic_data_converter)
    queue = f"bench-rest-{uuid.uuid4().hex[:6]}"

    async def load() -> None:
        gate = asyncio.Semaphore(50)
        handles = []

        async def start(n: int) -> None:
            async with gate:
                handles.append(await client.start_workflow(rest.RestingWorkflow.run, commands, id=f"{queue}-{n}",
                                                           task_queue=queue))

        await asyncio.gather(*(start(n) for n in range(runs)))

        async def resting(handle: WorkflowHandle[Any, Any]) -> bool:
            timers = 0
            async for event in handle.fetch_history_events():
                timers += event.HasField("timer_started_event_attributes")
            return timers > commands.timers

        async def all_resting() -> bool:  # a sample, the last started among them: the worker takes them in turn
            sample = handles[::max(1, runs // 20)] + handles[-1:]
            return all(await asyncio.gather(*(resting(h) for h in sample)))

        await _until(all_resting, "the bare runs did not all come to rest")

    command = [sys.executable, "-m", "bench.rest", stack.temporal_address, queue, str(cache)]
    return await _worker_rss(command, dict(os.environ), log_file, load)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


async def measure(stack: Stack, client: Client, pool: asyncpg.Pool, results: Results,
                  advance: Callable[[str], None], complaints: int = 1000, log_dir: Path | None = None) -> None:
    logs = log_dir or Path(".")
    cache = Settings().workflow_cache
    idle, loaded, first = await loaded_worker(stack, client, pool, complaints, cache, logs / "memory-worker.log")
    results.add(Figure("5. Memory", f"worker RSS with {complaints:,} open complaints on timers", loaded, idle, "MB",
                       higher_is_better=False, goal="< 300 MB", met=loaded < 300,
                       note=f"baseline: the same worker idle; workflow cache {cache} (the worker's default, "
                            "COMPLAINTS_WORKFLOW_CACHE)"))
    advance(f"memory: {complaints:,} open complaints, cache {cache}")
    _, everything, _ = await loaded_worker(stack, client, pool, complaints, 1000, logs / "memory-worker-1000.log")
    per = (everything - loaded) * 1024 / (complaints - cache)
    advance("memory: every complaint cached")
    history = client.get_workflow_handle(workflow_id(first)).fetch_history_events()
    commands = rest.Commands.of([event async for event in history])
    _, bare_loaded = await resting_worker(stack, commands, complaints, cache, logs / "memory-rest.log")
    _, bare_everything = await resting_worker(stack, commands, complaints, 1000, logs / "memory-rest-1000.log")
    bare = (bare_everything - bare_loaded) * 1024 / (complaints - cache)
    results.add(Figure("5. Memory", "per cached complaint", per, bare, "kB",
                       higher_is_better=False, goal="<= 100 kB", met=per <= 100,
                       note=f"what caching {complaints - cache:,} more complaints added ({everything:.0f} vs "
                            f"{loaded:.0f} MB), per complaint; all the worker grew by per open complaint from idle: "
                            f"{(everything - idle) * 1024 / complaints:.0f} kB; baseline: the same for a bare "
                            f"workflow (bench.rest) holding the {commands.total} commands a complaint holds at rest "
                            f"({_count(commands.activities, 'activity', 'activities')}, "
                            f"{_count(commands.local_activities, 'local activity', 'local activities')}, "
                            f"{_count(commands.patches, 'patch', 'patches')} and a change-version upsert each, "
                            f"{_count(commands.upserts, 'upsert', 'upserts')}, "
                            f"{_count(commands.timers + 1, 'timer', 'timers')}), with nothing in its payloads "
                            f"({bare_everything:.0f} vs "
                            f"{bare_loaded:.0f} MB)"))
    results.lever("workflow cache size", f"{loaded:.0f} MB with {cache} cached vs {everything:.0f} MB with all "
                  f"{complaints:,} cached (the SDK default 1,000)",
                  f"kept {cache}: a cached complaint waiting days on a timer only costs memory; an evicted one "
                  "is replayed from its history when it wakes")
    advance("memory: a bare workflow holding the same commands")
