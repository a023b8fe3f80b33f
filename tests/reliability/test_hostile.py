"""Hostile input through every door: each malformed intake or decision is refused with field-level errors,
and none starts a workflow, writes an event, or leaves a trace in a running complaint's history.
Fast: 50 intakes and a few per door (`make test`); full: 300+ (RELIABILITY=full)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

import starter
from audit.verify import Verifier
from audit.witness import witness
from cli.main import app
from dev.stack import venv_bin
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.reliability import results
from tests.reliability.hostile import bad_decisions, bad_intakes, generate
from tests.workflows.driver import Driver, command
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

FULL = results.FULL
slow_if_full = [pytest.mark.slow] if FULL else []
scale = pytest.mark.parametrize("full", [pytest.param(FULL, marks=slow_if_full)], ids=["full" if FULL else "fast"])


def complaint_id_in(raw: bytes) -> str | None:
    try:
        value = json.loads(raw).get("complaint_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def named_fields(error: starter.InvalidInput) -> bool:
    return bool(error.errors) and all(e.field and e.reason for e in error.errors)


@scale
def test_malformed_intakes_are_refused_by_the_starter_with_field_errors(full: bool) -> None:
    inputs = generate(bad_intakes(), 300 if FULL else 50)
    refused = 0
    for raw in inputs:
        with pytest.raises(starter.InvalidInput) as error:
            starter.parse_intake(raw)
        assert named_fields(error.value), error.value.errors
        assert all(e.field != "(input)" for e in error.value.errors), error.value.errors
        refused += 1
    results.record({"input": "intake, starter (Python API)", "inputs": len(inputs), "refused": refused,
                    "accepted": len(inputs) - refused, "events_written": 0})


@scale
def test_malformed_decisions_are_refused_by_the_starter_with_field_errors(full: bool) -> None:
    inputs = generate(bad_decisions(), 200 if FULL else 30)
    for name, raw in inputs:
        with pytest.raises(starter.InvalidInput) as error:
            starter.parse_command(name, raw)
        assert named_fields(error.value), (name, error.value.errors)
    results.record({"input": "decision, starter (Python API)", "inputs": len(inputs), "refused": len(inputs),
                    "accepted": 0, "events_written": 0})


@pytest.fixture
async def drive(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, task_queue: str
                ) -> AsyncIterator[Driver]:
    async with build_worker(dev_server.client, app_pool, task_queue):
        yield Driver(dev_server.client, store, task_queue)


async def events_of(store: PostgresEventStore) -> int:
    return await store.count()


@scale
async def test_malformed_intakes_through_the_complaints_cli_exit_2_and_start_nothing(
    drive: Driver, full: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", drive.client.service_client.config.target_host)
    inputs = generate(bad_intakes(), 100 if FULL else 10)
    runner = CliRunner()
    accepted = 0
    for raw in inputs:
        outcome = await asyncio.to_thread(runner.invoke, app, ["submit", "-"], input=raw)
        assert outcome.exit_code == 2, outcome.output
        assert "refused" in outcome.output
        cid = complaint_id_in(raw)
        if cid:
            with pytest.raises(starter.NotFound):
                await starter.status(drive.client, cid)
    written = await events_of(drive.store)
    assert written == 0
    results.record({"input": "intake, complaints CLI", "inputs": len(inputs), "refused": len(inputs) - accepted,
                    "accepted": accepted, "events_written": written})


@scale
async def test_malformed_intakes_started_raw_with_the_temporal_cli_fail_at_once_and_write_nothing(
    drive: Driver, full: bool, tmp_path: Path
) -> None:
    inputs = generate(bad_intakes(), 100 if FULL else 10)
    address = drive.client.service_client.config.target_host
    accepted = 0
    for n, raw in enumerate(inputs):
        wid = workflow_id(f"RAW-{n}-{tmp_path.name[-6:]}")
        path = tmp_path / f"{n}.json"
        path.write_bytes(raw)
        started = await asyncio.to_thread(subprocess.run, [
            str(venv_bin("temporal")), "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
            drive.task_queue, "--workflow-id", wid, "--input-file", str(path), "--address", address,
        ], capture_output=True, text=True, timeout=60)
        if started.returncode != 0:  # the CLI itself refused the text (not JSON): nothing was started
            continue
        with pytest.raises(WorkflowFailureError) as failed:
            await drive.client.get_workflow_handle(wid).result()
        cause = failed.value.cause
        if not (isinstance(cause, ApplicationError) and cause.type in ("InvalidInput", "InvalidComplaint")):
            accepted += 1
    written = await events_of(drive.store)
    assert accepted == 0 and written == 0
    results.record({"input": "intake, raw JSON via temporal CLI", "inputs": len(inputs), "refused": len(inputs),
                    "accepted": accepted, "events_written": written})


@scale
async def test_malformed_decisions_sent_raw_to_a_running_complaint_leave_no_trace(
    drive: Driver, full: bool, intake_data: Any
) -> None:
    cid = await drive.submit(intake_data())
    before = (await drive.history_length(cid), await drive.types(cid))
    inputs = generate(bad_decisions(), 100 if FULL else 20)
    handle = drive.client.get_workflow_handle(workflow_id(cid))
    for name, raw in inputs:
        raw_arg = RawValue(Payload(metadata={"encoding": b"json/plain"}, data=raw))
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            # By name: the inputs are raw JSON payloads keyed by the contract's update names (examples/updates).
            await handle.execute_update(name, raw_arg)
        cause = rejected.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput", (name, cause)
    after = (await drive.history_length(cid), await drive.types(cid))
    assert after == before
    results.record({"input": "decision, raw JSON to a running workflow", "inputs": len(inputs),
                    "refused": len(inputs), "accepted": 0, "events_written": len(after[1]) - len(before[1])})


HOSTILE = "'; DROP TABLE complaint_events; -- <script>alert('x')</script> \u202e\U0001F600 \"quoted\" \\ back"


async def test_injection_and_markup_are_stored_verbatim_in_every_free_text_field(drive: Driver, intake_data: Any
                                                                                 ) -> None:
    data = intake_data(description=HOSTILE + "\nline two")
    data["customer"]["name"] = HOSTILE[:150]
    data["subject"]["title"] = "<b>title</b> ' OR 1=1 --"
    data["subject"]["reference"] = "Robert'); DROP TABLE students;--"
    cid = await drive.submit(data)
    await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="social", text=HOSTILE)
    await drive.send(cid, ComplaintWorkflow.assess, verdict="valid", root_cause="service", findings=HOSTILE)
    await drive.send(cid, ComplaintWorkflow.withdraw, reason=HOSTILE)
    await drive.finished(cid)
    opened = await drive.opened(cid)
    assert opened[0]["description"] == HOSTILE + "\nline two"
    assert opened[0]["customer_name"] == HOSTILE[:150]
    assert opened[0]["subject_title"] == "<b>title</b> ' OR 1=1 --"
    assert opened[0]["subject_reference"] == "Robert'); DROP TABLE students;--"
    texts = [p.get("text") or p.get("findings") or p.get("reason") for p in opened[1:]]
    assert texts.count(HOSTILE) == 3
    await drive.witnesses_agree(cid)


def test_sizes_are_bounded_with_a_clear_error(intake_data: Any) -> None:
    at_limit = intake_data(description="é" * 10_000)  # 20,000 bytes of UTF-8: accepted
    starter.parse_intake(json.dumps(at_limit))
    over = intake_data(description="é" * 10_000 + "!")
    with pytest.raises(starter.InvalidInput) as error:
        starter.parse_intake(json.dumps(over))
    assert [(e.field, e.reason) for e in error.value.errors] == [
        ("description", "is 20001 bytes of UTF-8; the limit is 20000")]
    with pytest.raises(starter.InvalidInput) as error:
        starter.parse_command("log_message", {"sender": "agent", "channel": "email", "text": "m" * 20_001})
    assert error.value.errors[0].field == "text" and "limit is 20000" in error.value.errors[0].reason


@pytest.mark.slow
async def test_ten_thousand_messages_continue_as_new_and_still_verify(drive: Driver, intake_data: Any) -> None:
    started = time.monotonic()
    cid = await drive.submit(intake_data())
    total, burst = 10_000, 8
    for start in range(0, total, burst):
        await asyncio.gather(*(starter.send(drive.client, cid, ComplaintWorkflow.log_message, command(
            ComplaintWorkflow.log_message, sender="customer", channel="social", text=f"message {n}"),
            idempotency_key=f"{cid}/m{n}") for n in range(start, start + burst)))
    records = await drive.store.read(cid)
    logged = sum(r.type == "MessageLogged" for r in records)
    verified = await Verifier(drive.store, drive.client).verify([cid])
    runs = len((await witness(drive.client, cid)).histories)
    results.record({"fault": "10,000 messages on one complaint", "complaints": 1, "events": len(records),
                    "lost": max(total - logged, 0), "duplicated": max(logged - total, 0),
                    "verify_exit": 0 if verified.ok else 1,
                    "seconds": round(time.monotonic() - started, 1),
                    "notes": f"continued as new across {runs} runs; verified in process (chain, both witnesses, "
                             "replay of every run)", "problems": [], "breaks": [str(b) for b in verified.breaks[:10]]})
    state = await drive.witnesses_agree(cid)
    assert state.messages == total == logged
    assert runs > 1
