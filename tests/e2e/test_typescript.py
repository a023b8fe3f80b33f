"""A backend in another language drives a complaint: the TypeScript example (examples/typescript), built and run
with Node against a real dev server, a real worker and the codec server. Each call carries its principal's
token in a Temporal header; payloads are sealed by the codec server; refused decisions come back as typed
errors and leave nothing behind."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from codec.encryption import EncryptionCodec
from codec.server import start_codec_server
from eventlog import PostgresEventStore
from worker import build_worker

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "typescript"
CODEC_TOKEN = "typescript-codec-token"
ENCRYPTED = b"binary/encrypted"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the TypeScript example needs Node.js 20 and npm "
                    "(apt-get install -y nodejs npm)")
    return path


def _run(*args: str, timeout: float) -> None:
    done = subprocess.run(args, cwd=EXAMPLE, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def build_example() -> None:
    """Install from the lock file if needed, and compile: the test runs what `npm run build` makes."""
    npm = _tool("npm")
    _tool("node")
    if not (EXAMPLE / "node_modules" / "@temporalio" / "client").is_dir():
        _run(npm, "ci", "--no-audit", "--no-fund", timeout=600)
    _run(npm, "run", "build", timeout=300)
    assert (EXAMPLE / "dist" / "main.js").is_file()


def encoding(payload: Payload) -> bytes:
    return payload.metadata.get("encoding", b"")


async def test_a_typescript_backend_drives_a_complaint_to_closure_with_tokens_and_the_codec(
    dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore,
    intake_data: Callable[..., dict[str, Any]], token_for: Callable[[str, str], str], tmp_path: Path,
) -> None:
    await asyncio.to_thread(build_example)
    intake = intake_data()
    cid = intake["complaint_id"]
    intake_file = tmp_path / "intake.json"
    intake_file.write_text(json.dumps(intake), encoding="utf-8")
    tokens = {
        "intake": token_for("intake", "web-form"),
        "agent": token_for("agent", "ana"),
        "customer": token_for("customer", intake["customer"]["id"]),
        "supervisor": token_for("supervisor", "budi"),
    }
    task_queue = f"complaints-{uuid.uuid4().hex[:8]}"
    codec = EncryptionCodec.from_env()
    assert codec is not None

    with start_codec_server(codec, CODEC_TOKEN) as server:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TEMPORAL_", "COMPLAINTS_TOKEN", "COMPLAINTS_TASK_QUEUE"))}
        env.update(
            TEMPORAL_ADDRESS=dev_server.client.service_client.config.target_host,
            TEMPORAL_CODEC_ENDPOINT=server.url,
            TEMPORAL_CODEC_AUTH=f"Bearer {CODEC_TOKEN}",
            COMPLAINTS_TASK_QUEUE=task_queue,
            **{f"COMPLAINTS_TOKEN_{role.upper()}": token for role, token in tokens.items()},
        )
        async with build_worker(dev_server.client, app_pool, task_queue):
            done = await asyncio.to_thread(
                subprocess.run, [_tool("node"), "dist/main.js", str(intake_file)], cwd=EXAMPLE, env=env,
                capture_output=True, text=True, timeout=180,
            )

    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-5000:]}"
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["complaint_id"] == cid
    assert outcome["final_stage"] == "closed"
    assert outcome["refusals"] == ["Forbidden", "ComplaintRefused"]
    assert outcome["state_stage_seen"] == "awaiting_follow_up"

    # The log names each decision's principal, as its token proved it (and the token's hash, never the token).
    records = await store.read(cid)
    by_type: dict[str, list[str]] = {}
    for record in records:
        by_type.setdefault(record.type, []).append(record.actor)

    def cred(role: str) -> str:
        return f"cred={hashlib.sha256(tokens[role].encode()).hexdigest()}"

    assessed, = by_type["ComplaintAssessed"]
    assert assessed.startswith("agent:ana;") and cred("agent") in assessed
    chosen, = by_type["RemedyChosen"]  # once: option Z was refused
    assert chosen.startswith(f"customer:{intake['customer']['id']};") and cred("customer") in chosen
    escalated, = by_type["ComplaintEscalated"]
    assert escalated.startswith("agent:ana;") and cred("agent") in escalated
    # The supervisor closed it: once, so the agent's refused close left nothing.
    closed, = by_type["ComplaintClosed"]
    assert closed.startswith("supervisor:budi;") and cred("supervisor") in closed
    assert not any(tokens[role] in actor for role in tokens for actor in (r.actor for r in records))

    # Temporal's history holds the credentials in headers, and only sealed payloads.
    history = await dev_server.client.get_workflow_handle(f"complaint-{cid}").fetch_history()
    started = history.events[0]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    attributes = started.workflow_execution_started_event_attributes
    assert [encoding(p) for p in attributes.input.payloads] == [ENCRYPTED]
    assert "complaints_token" in attributes.header.fields
    accepted = [e.workflow_execution_update_accepted_event_attributes.accepted_request for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    # The refused decisions were refused by validators: not in history at all.
    assert [a.input.name for a in accepted] == ["assess", "choose_remedy", "escalate", "close"]
    for request in accepted:
        assert [encoding(p) for p in request.input.args.payloads] == [ENCRYPTED]
        assert "complaints_token" in request.input.header.fields
    completed = history.events[-1]
    assert completed.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert [encoding(p) for p in completed.workflow_execution_completed_event_attributes.result.payloads] == [
        ENCRYPTED]
