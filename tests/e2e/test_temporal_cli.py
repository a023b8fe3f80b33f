"""Any backend can drive a complaint with plain JSON: here, Temporal's own CLI, exactly as the README shows,
against a real dev server and a real worker. Malformed input fails at once, naming the fields."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from codec.encryption import EncryptionCodec
from codec.server import start_codec_server
from dev.stack import venv_bin
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from settings import TASK_QUEUE
from tests.principals import token
from tests.workflows.driver import Driver
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

ROOT = Path(__file__).parent.parent.parent


TOKEN = "operator-token"


@pytest.fixture
async def drive(dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore
                ) -> AsyncIterator[Driver]:
    codec = EncryptionCodec.from_env()
    assert codec is not None
    with start_codec_server(codec, TOKEN) as server:
        async with build_worker(dev_server.client, app_pool, TASK_QUEUE):  # the README's task queue
            driver = Driver(dev_server.client, store, TASK_QUEUE)
            driver.codec_url = server.url  # type: ignore[attr-defined]
            yield driver


def temporal(drive: Driver, *args: str, codec: bool = True) -> subprocess.CompletedProcess[str]:
    """The temporal CLI as an operator runs it: TEMPORAL_CODEC_ENDPOINT and TEMPORAL_CODEC_AUTH in the
    environment (as `make up` exports them), so it encrypts inputs and reads results through the codec."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_CODEC")}
    if codec:
        env.update(TEMPORAL_CODEC_ENDPOINT=drive.codec_url, TEMPORAL_CODEC_AUTH=f"Bearer {TOKEN}")  # type: ignore[attr-defined]
    address = drive.client.service_client.config.target_host
    return subprocess.run([str(venv_bin("temporal")), *args, "--address", address], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, env=env)


async def temporal_async(drive: Driver, *args: str, codec: bool = True) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(lambda: temporal(drive, *args, codec=codec))


def as_(role: str, subject: str = "ana") -> list[str]:
    """The credential header, as the README shows it: ``--headers complaints_token='"<token>"'``."""
    return ["--headers", f"complaints_token={json.dumps(token(role, subject))}"]


async def test_the_temporal_cli_starts_and_drives_a_complaint_from_the_examples(drive: Driver) -> None:
    cid = json.loads((ROOT / "examples/late-delivery.json").read_text())["complaint_id"]
    started = await temporal_async(drive, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
                                   "complaints", "--workflow-id", f"complaint-{cid}",
                                   "--input-file", "examples/late-delivery.json", *as_("intake", "crm"))
    assert started.returncode == 0, started.stderr
    # Updates by name throughout this file: the name and the JSON are the contract a backend without this code uses.
    for name in ("move_offline", "log_message", "assess", "choose_remedy"):
        done = await temporal_async(drive, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
                                    "--name", name, "--input-file", f"examples/updates/{name}.json", *as_("agent"))
        assert done.returncode == 0, f"{name}: {done.stderr}"
    await drive.stage(cid, Stage.awaiting_follow_up)
    done = await temporal_async(drive, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
                                "--name", "record_follow_up", "--input-file", "examples/updates/record_follow_up.json",
                                *as_("customer", json.loads((ROOT / "examples/late-delivery.json").read_text())
                                     ["customer"]["id"]))
    assert done.returncode == 0, done.stderr
    result = await temporal_async(drive, "workflow", "result", "--workflow-id", f"complaint-{cid}", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert '"closed"' in result.stdout and '"resolved"' in result.stdout
    # Without the codec, what history holds is sealed: the CLI cannot read it.
    sealed = await temporal_async(drive, "workflow", "result", "--workflow-id", f"complaint-{cid}", "-o", "json",
                                  codec=False)
    assert '"resolved"' not in sealed.stdout
    assert (await drive.types(cid))[:2] == ["ComplaintReceived", "SlaDeadlinesSet"]
    await drive.witnesses_agree(cid)


async def test_a_malformed_start_fails_at_once_naming_the_fields_and_writes_nothing(drive: Driver) -> None:
    wid = "complaint-BAD-CLI-1"
    started = await temporal_async(drive, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
                                   "complaints", "--workflow-id", wid,
                                   "--input", json.dumps({"complaint_id": "BAD-CLI-1", "channel": "fax"}),
                                   *as_("intake", "crm"))
    assert started.returncode == 0, started.stderr  # the server accepts any JSON; the workflow refuses it
    result = await temporal_async(drive, "workflow", "result", "--workflow-id", wid)
    assert result.returncode != 0
    shown = result.stdout + result.stderr
    assert "invalid intake" in shown and "customer: Field required" in shown and "channel" in shown
    history = await drive.client.get_workflow_handle(wid).fetch_history()
    types = [e.event_type for e in history.events]
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in types  # failed at once, not retried forever
    assert await drive.store.read("BAD-CLI-1") == []


async def test_a_malformed_update_from_the_temporal_cli_is_refused_by_name(drive: Driver, intake_data: object
                                                                           ) -> None:
    cid = await drive.submit(intake_data())  # type: ignore[operator]
    before = await drive.history_length(cid)
    done = await temporal_async(drive, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
                                "--name", "assess", "--input", json.dumps({"verdict": "maybe"}), *as_("agent"))
    assert done.returncode != 0
    shown = done.stdout + done.stderr
    assert "verdict" in shown and "root_cause" in shown and "findings" in shown
    assert await drive.history_length(cid) == before


# --- the forgeries of issue 12, through the raw temporal CLI -----------------------------------------------------


async def _failure_of(drive: Driver, wid: str) -> str:
    result = await temporal_async(drive, "workflow", "result", "--workflow-id", wid)
    assert result.returncode != 0
    return result.stdout + result.stderr


async def test_the_cli_cannot_hand_the_workflow_state_or_options(drive: Driver, intake_data: Any, tmp_path: Path
                                                                 ) -> None:
    data = intake_data()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({"intake": data, "options": {"fulfilment_attempts": 2**31, "resume": None}}))
    wid = f"complaint-{data['complaint_id']}"
    started = await temporal_async(drive, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
                                   "complaints", "--workflow-id", wid, "--input-file", str(forged),
                                   *as_("intake", "crm"))
    assert started.returncode == 0, started.stderr
    assert "InputRefused" in await _failure_of(drive, wid)
    assert await drive.store.read(data["complaint_id"]) == []


async def test_the_cli_without_a_credential_or_under_another_workflow_id_is_refused(drive: Driver, intake_data: Any,
                                                                                   tmp_path: Path) -> None:
    data = intake_data()
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(data))
    for wid, headers, refusal in ((f"complaint-{data['complaint_id']}", [], "no credential"),
                                  ("complaint-SOMEONE-ELSE", as_("intake", "crm"), "does not belong to complaint")):
        started = await temporal_async(drive, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
                                       "complaints", "--workflow-id", wid, "--input-file", str(path), *headers)
        assert started.returncode == 0, started.stderr
        assert refusal in await _failure_of(drive, wid)
    assert await drive.store.read(data["complaint_id"]) == []


async def test_the_cli_cannot_decide_under_another_name_or_role(drive: Driver, intake_data: Any) -> None:
    cid = await drive.submit(intake_data())
    before = await drive.history_length(cid)
    attempts = [
        ([], "assess", "Unauthenticated"),                                   # no credential at all
        (["--headers", 'complaints_token="forged"'], "assess", "Unauthenticated"),
        (as_("agent"), "close", "Forbidden"),                                # a supervisor's decision
        (as_("customer", "not-the-customer"), "withdraw", "Forbidden"),
    ]
    for headers, name, refusal in attempts:
        done = await temporal_async(drive, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
                                    "--name", name, "--input-file", f"examples/updates/{name}.json", *headers)
        assert done.returncode != 0 and refusal in done.stdout + done.stderr, (name, done.stdout, done.stderr)
    assert await drive.history_length(cid) == before
    assert [r.type for r in await drive.store.read(cid)][-1] != "ComplaintWithdrawn"


async def test_the_cli_without_the_codec_is_refused_and_its_run_deleted(drive: Driver, intake_data: Any,
                                                                        tmp_path: Path) -> None:
    data = intake_data()
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(data))
    wid = f"complaint-{data['complaint_id']}"
    started = await temporal_async(drive, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
                                   "complaints", "--workflow-id", wid, "--input-file", str(path),
                                   *as_("intake", "crm"), codec=False)
    assert started.returncode == 0, started.stderr
    shown = await _failure_of(drive, wid)
    assert "PlaintextRefused" in shown or "plaintext" in shown, shown
    assert await drive.store.read(data["complaint_id"]) == []


async def _start_file(drive: Driver, tmp_path: Path, wid: str, body: Any, *headers: str) -> str:
    path = tmp_path / f"{wid}.json"
    path.write_text(json.dumps(body))
    started = await temporal_async(drive, "workflow", "start", "--type", "ComplaintWorkflow", "--task-queue",
                                   "complaints", "--workflow-id", wid, "--input-file", str(path), *headers)
    assert started.returncode == 0, started.stderr
    return await _failure_of(drive, wid)


async def test_the_cli_cannot_resume_a_forged_state_or_write_into_another_chain(drive: Driver, intake_data: Any,
                                                                               tmp_path: Path) -> None:
    victim = await drive.submit(intake_data())
    before = await drive.store.read(victim)
    state = (await drive.state(victim)).model_dump(mode="json")
    # The victim's id and head, under the victim's workflow id (running: Temporal refuses the start) and under
    # the forger's own: refused either way, the victim's chain untouched.
    shown = await _start_file(drive, tmp_path, "complaint-FORGER-2",
                              {"intake": {**intake_data(), "complaint_id": victim},
                                                                    "options": {"resume": state}}, *as_("intake", "x"))
    assert "does not belong to complaint" in shown or "InputRefused" in shown, shown
    # A closed state for a new complaint: nothing written, nothing completed as "resolved".
    data = intake_data()
    closed = {**state, "complaint_id": data["complaint_id"], "stage": "closed", "outcome": "resolved",
              "satisfaction": 5}
    shown = await _start_file(drive, tmp_path, f"complaint-{data['complaint_id']}",
                              {"intake": data, "options": {"resume": closed}}, *as_("intake", "x"))
    assert "intake alone" in shown or "invalid" in shown, shown
    assert await drive.store.read(data["complaint_id"]) == [] and await drive.store.read(victim) == before
    # A closed complaint started again by the CLI (whose default policy allows a new run after close).
    await drive.send(victim, ComplaintWorkflow.withdraw)
    await drive.finished(victim)
    closed_log = await drive.store.read(victim)
    shown = await _start_file(drive, tmp_path, f"complaint-{victim}", {**intake_data(), "complaint_id": victim},
                              *as_("intake", "x"))
    assert "already in the log" in shown, shown
    assert await drive.store.read(victim) == closed_log


async def test_the_cli_cannot_name_another_actor(drive: Driver, intake_data: Any) -> None:
    cid = await drive.submit(intake_data())
    before = await drive.history_length(cid)
    for by in ("system", "supervisor:budi", "agent:someone-else"):
        done = await temporal_async(drive, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
                                    "--name", "withdraw", "--input", json.dumps({"by": by}), *as_("agent"))
        assert done.returncode != 0 and "Forbidden" in done.stderr and f"'by' names '{by}'" in done.stderr, done.stderr
    assert await drive.history_length(cid) == before
