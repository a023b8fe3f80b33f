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

import asyncpg
from temporalio.client import Client

import starter
from bench.figures import Figure, Results
from dev.stack import Stack, die_with_parent
from settings import Settings

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


async def loaded_worker(stack: Stack, client: Client, pool: asyncpg.Pool, complaints: int, cache: int,
                        log_file: Path) -> tuple[float, float]:
    """RSS (MB) of a worker with workflow cache ``cache``: idle, then with ``complaints`` open ones."""
    env = {**os.environ, **stack.environment(), "COMPLAINTS_TASK_QUEUE": QUEUE,
           "COMPLAINTS_WORKFLOW_CACHE": str(cache)}
    with log_file.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                  preexec_fn=die_with_parent)
    try:
        async def started() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited; see {log_file}")
            return '"worker started"' in log_file.read_text(errors="replace")

        await _until(started, "the worker did not start", 60)
        await asyncio.sleep(2)
        idle = rss_mb(worker.pid)
        prefix = f"M{uuid.uuid4().hex[:4]}"
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
        await asyncio.sleep(5)  # the last workflow tasks settle; every complaint now waits on its timers
        return idle, rss_mb(worker.pid)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


async def measure(stack: Stack, client: Client, pool: asyncpg.Pool, results: Results,
                  advance: Callable[[str], None], complaints: int = 1000, log_dir: Path | None = None) -> None:
    logs = log_dir or Path(".")
    cache = Settings().workflow_cache
    idle, loaded = await loaded_worker(stack, client, pool, complaints, cache, logs / "memory-worker.log")
    results.add(Figure("5. Memory", f"worker RSS with {complaints:,} open complaints on timers", loaded, idle, "MB",
                       higher_is_better=False, goal="< 300 MB", met=loaded < 300,
                       note=f"baseline: the same worker idle; workflow cache {cache} (the worker's default, "
                            "COMPLAINTS_WORKFLOW_CACHE)"))
    advance(f"memory: {complaints:,} open complaints, cache {cache}")
    _, everything = await loaded_worker(stack, client, pool, complaints, 1000, logs / "memory-worker-1000.log")
    per = (everything - loaded) * 1024 / (complaints - cache)
    results.add(Figure("5. Memory", "per cached complaint", per, (everything - idle) * 1024 / complaints, "kB",
                       higher_is_better=False, goal="<= 100 kB", met=per <= 100,
                       note=f"what caching {complaints - cache:,} more complaints added ({everything:.0f} vs "
                            f"{loaded:.0f} MB), per complaint; beside it, all the worker grew by per open "
                            "complaint from idle"))
    results.lever("workflow cache size", f"{loaded:.0f} MB with {cache} cached vs {everything:.0f} MB with all "
                  f"{complaints:,} cached (the SDK default 1,000)",
                  f"kept {cache}: a cached complaint waiting days on a timer only costs memory; an evicted one "
                  "is replayed from its history when it wakes")
    advance("memory: every complaint cached")
