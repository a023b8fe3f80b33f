"""A lab for breaking things for real: the embedded stack (PostgreSQL, Temporal on a SQLite file) and
workers as separate processes (``python -m worker``), each of which can be killed with SIGKILL, stopped
and started again. Everything the lab starts, it stops, also when a scenario fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from codec import data_converter
from codec.encryption import EncryptionCodec, parse_keys
from dev.stack import Stack, die_with_parent, embedded_stack
from eventlog import PostgresEventStore
from eventlog.connect import create_pool
from tests.principals import SuitePrincipals

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class WorkerProcess:
    name: str
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        out = self.log_file.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent)
        out.close()

    async def started(self, timeout: float = 60) -> None:
        """Until this start's "worker started" line is in the log (one such line per start)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: see {self.log_file}")
            if self.log_file.read_text(errors="replace").count('"worker started"') >= self.starts:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"worker {self.name} did not start; see {self.log_file}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@dataclass
class Lab:
    root: Path
    stack: Stack
    client: Client
    store: PostgresEventStore
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.stack.environment()}

    async def add_worker(self) -> WorkerProcess:
        name = f"w{len(self.workers) + 1}"
        worker = WorkerProcess(name, self.env(), self.root / f"worker{len(self.workers) + 1}.log")
        self.workers.append(worker)
        worker.start()
        await worker.started()
        return worker

    async def restart(self, worker: WorkerProcess) -> None:
        worker.start()
        await worker.started()

    def worker_logs(self) -> str:
        return "\n".join(w.log_file.read_text(errors="replace") for w in self.workers if w.log_file.exists())


@contextlib.asynccontextmanager
async def lab(root: Path, workers: int = 1) -> AsyncIterator[Lab]:
    # Ports the OS picks: a fixed one let a stray worker from an interrupted run join the next lab's server.
    async with embedded_stack(root / "stack", temporal_port=0, ui_port=0) as stack:
        pool = await create_pool(stack.postgres.app_url, max_size=4)
        # The lab's client acts as the suite's principals, with tokens of the stack's own issuer.
        client = await Client.connect(stack.temporal_address, data_converter=data_converter(
            EncryptionCodec(parse_keys(stack.codec_keys))), interceptors=[SuitePrincipals(key=stack.issuer())])
        here = Lab(root=root, stack=stack, client=client,
                   store=PostgresEventStore(pool))
        try:
            for _ in range(workers):
                await here.add_worker()
            yield here
        finally:
            for worker in here.workers:
                worker.stop()
            await pool.close()
