"""Faults, for real: workers SIGKILLed, PostgreSQL stopped, the Temporal server killed, two workers racing,
a remedy provider that always refuses. Each with complaints in flight across every path; each must end
with nothing lost, nothing duplicated, and `complaints verify --all` passing.

`make test` runs the fast subset (one kill, one short outage). `make reliability` runs the full scale
(RELIABILITY=full: 50+ complaints, 10 kills, a 30 s outage) and writes docs/reliability.md."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages as msg
from domain.vocabulary import Stage
from identity.tokens import TrustedIssuers
from tests.reliability import results
from tests.reliability.lab import ROOT, Lab, lab
from tests.reliability.load import CHATTY, EXAMPLES, INTAKE, VALID, Script, run_load, tally
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

FULL = results.FULL
N = 60 if FULL else 12
LIMIT = 900 if FULL else 240  # seconds for a whole load: a stuck lab fails in minutes, not CI's hour
slow_if_full = [pytest.mark.slow] if FULL else []


async def verify_all(here: Lab) -> dict[str, Any]:
    """`complaints verify --all`, as an auditor runs it, in its own process."""
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cli.main", "verify", "--all", "--json"],
                                   cwd=ROOT, env=here.env(), capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {"ok": False, "raw": done.stderr}
    report["exit_code"] = done.returncode
    return report


def secrets_in_logs(here: Lab, also: str) -> list[str]:
    """Every secret of the stack and every piece of personal data the load sent, looked for in every log
    the run wrote (workers, Temporal server) and in the auditor's output."""
    stack = here.stack
    secrets = {"master key": stack.master_key, "seal key": stack.seal_key, "codec token": stack.codec_token,
               **{f"codec key {k.split(':')[0]}": k.split(":", 1)[1] for k in stack.codec_keys.split(",")}}
    for example in EXAMPLES.glob("*.json"):
        data = json.loads(example.read_text())
        secrets |= {f"{example.name} {k}": v for k, v in {**data.get("contact", {}),
                    "name": data.get("customer", {}).get("name")}.items() if isinstance(v, str) and len(v) > 5}
    logs = [here.worker_logs(), also, *(p.read_text(errors="replace") for p in here.root.rglob("*.log"))]
    return sorted(name for name, value in secrets.items() if any(value in text for text in logs))


async def finish(name: str, here: Lab, outcomes: list[Any], started: float, notes: str,
                 extra: tuple[Script, ...] = ()) -> dict[str, Any]:
    counted = await tally(outcomes, here.store, extra)
    verified = await verify_all(here)
    leaked = secrets_in_logs(here, json.dumps(verified))
    row = {"fault": name, "complaints": counted.complaints, "events": counted.events, "lost": counted.lost,
           "duplicated": counted.duplicated, "verify_exit": verified["exit_code"], "secrets_in_logs": leaked,
           "seconds": round(time.monotonic() - started, 1), "notes": notes, "problems": counted.problems[:10],
           "breaks": verified.get("breaks", [])[:10], "verify_error": str(verified.get("raw", ""))[-3000:]}
    results.record(row)
    return row


def assert_clean(row: dict[str, Any]) -> None:
    assert row["lost"] == 0, row["problems"]
    assert row["duplicated"] == 0, row["problems"]
    assert row["verify_exit"] == 0, row["breaks"] or row["verify_error"]
    assert row["secrets_in_logs"] == [], row["secrets_in_logs"]


@pytest.mark.parametrize("scale", [pytest.param(FULL, marks=slow_if_full)], ids=["full" if FULL else "fast"])
async def test_workers_killed_at_random_moments(tmp_path: Path, scale: bool) -> None:
    kills = 10 if FULL else 1
    rng = random.Random(int(os.environ.get("RELIABILITY_SEED", "11")))  # another seed: other moments
    started = time.monotonic()
    async with lab(tmp_path, workers=1) as here:
        load = asyncio.create_task(run_load(here.client, N, timeout=LIMIT, concurrency=6 if FULL else 4))
        worker = here.workers[0]
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            worker.kill()
            await asyncio.sleep(rng.uniform(0.0, 1.0))
            await here.restart(worker)
        outcomes = await load
        row = await finish("worker SIGKILL + restart", here, outcomes, started,
                           f"{worker.kills} kills, restarted each time")
    assert worker.kills == kills
    assert_clean(row)


@pytest.mark.parametrize("scale", [pytest.param(FULL, marks=slow_if_full)], ids=["full" if FULL else "fast"])
async def test_postgres_stopped_mid_run(tmp_path: Path, scale: bool) -> None:
    outage = 30 if FULL else 5
    started = time.monotonic()
    async with lab(tmp_path, workers=1) as here:
        load = asyncio.create_task(run_load(here.client, N, timeout=LIMIT, concurrency=8))
        await asyncio.sleep(2)
        await asyncio.to_thread(here.stack.postgres.stop)
        await asyncio.sleep(outage)
        await asyncio.to_thread(here.stack.postgres.start)
        outcomes = await load
        logs = here.worker_logs()
        row = await finish("PostgreSQL stopped", here, outcomes, started,
                           f"{outage} s outage; {logs.count('event log unavailable')} retry warnings, "
                           f"{logs.count('Traceback')} tracebacks in worker logs")
    assert_clean(row)
    assert "event log unavailable" in logs  # the worker said what happened...
    assert logs.count("Traceback") == 0  # ...in single lines, without a traceback storm


@pytest.mark.parametrize("scale", [pytest.param(FULL, marks=pytest.mark.slow)], ids=["full" if FULL else "fast"])
async def test_temporal_killed_and_restarted_on_its_file(tmp_path: Path, scale: bool) -> None:
    started = time.monotonic()
    async with lab(tmp_path, workers=1) as here:
        load = asyncio.create_task(run_load(here.client, N, timeout=LIMIT, concurrency=8))
        await asyncio.sleep(3)
        assert here.stack.temporal is not None
        here.stack.temporal.kill()
        await asyncio.sleep(2)
        await here.stack.temporal.start()
        outcomes = await load
        row = await finish("Temporal dev server SIGKILL + restart", here, outcomes, started,
                           "killed mid-run, restarted on its SQLite file")
    assert_clean(row)


@pytest.mark.parametrize("scale", [pytest.param(FULL, marks=pytest.mark.slow)], ids=["full" if FULL else "fast"])
async def test_two_workers_and_concurrent_decisions_on_the_same_complaints(tmp_path: Path, scale: bool) -> None:
    started = time.monotonic()
    async with lab(tmp_path, workers=2) as here:
        outcomes = await run_load(here.client, N, timeout=LIMIT, concurrency=12, scripts=[CHATTY])
        row = await finish("two workers, concurrent decisions", here, outcomes, started,
                           "bursts of 8 concurrent updates per complaint", extra=(CHATTY,))
    assert_clean(row)


@activity.defn(name=msg.FULFIL_REMEDY)
async def refusing_provider(request: msg.FulfilmentRequest) -> msg.FulfilmentReceipt:
    raise ApplicationError("voucher system refused: account blocked", type="ProviderRefused", non_retryable=True)


REFUSED = Script("refused_remedy", "late-delivery.json", [
    (ComplaintWorkflow.assess,
     {"verdict": "valid", "root_cause": "service", "findings": "Late.", "by": "agent:load"}),
    (ComplaintWorkflow.choose_remedy, {"option_id": "A"}),
    ("wait", Stage.escalated),
    (ComplaintWorkflow.close, {"outcome": "resolved", "note": "Voucher issued by hand."}),
], [*INTAKE, "ContactMoveRequested", *VALID, "RemedyChosen", "RemedyFulfilmentFailed", "ComplaintEscalated",
    "ComplaintClosed"], "resolved")


@pytest.mark.parametrize("scale", [pytest.param(FULL, marks=slow_if_full)], ids=["full" if FULL else "fast"])
async def test_a_remedy_that_always_fails_escalates_every_time(tmp_path: Path, scale: bool) -> None:
    started = time.monotonic()
    async with lab(tmp_path, workers=0) as here:
        async with build_worker(here.client, here.store.pool, "complaints", remedy_provider=refusing_provider,
                                issuers=TrustedIssuers.of(here.stack.issuer())):
            outcomes = await run_load(here.client, N, timeout=LIMIT, concurrency=12, scripts=[REFUSED])
        row = await finish("remedy provider refuses", here, outcomes, started,
                           "every fulfilment refused: escalated, then closed by a supervisor", extra=(REFUSED,))
    assert_clean(row)
