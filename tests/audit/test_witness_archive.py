"""verify after Temporal's retention: a closed complaint's history is deleted (as retention deletes it), and its
archived witness, signed by the sealer before that, still catches a deleted tail or a rewritten event. Real
PostgreSQL, real Temporal (the dev server; retention played by DeleteWorkflowExecution)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.messages import RunOptions
from audit import checkpoints as cp
from audit.verify import Verification, Verifier, archive_closed
from dev.stack import Postgres
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.audit.test_verify import as_superuser, closed_complaint, insert, kinds, rechain, rows, verify
from tests.workflows.driver import Driver
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

Data = Callable[..., dict[str, Any]]
ORIGIN = "complaints.test/log"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def drive(dev_server: WorkflowEnvironment, store: PostgresEventStore, dev_worker: Worker, task_queue: str) -> Driver:
    return Driver(dev_server.client, store, task_queue)


@pytest.fixture
def sealer_store(sealer_pool: asyncpg.Pool) -> PostgresEventStore:
    """The archiver reads the log and writes archived witnesses as the sealer's role."""
    return PostgresEventStore(sealer_pool)


@pytest.fixture
def seal_key() -> Any:
    return cp.signing_key(cp.new_seal_key())


def trusted(key: Any) -> str:
    return cp.verifier_key(ORIGIN, key)


async def retention(client: Client, cid: str, runs: list[str]) -> None:
    """What the namespace's retention does to a closed workflow: its runs deleted, and then they are gone."""
    wid = workflow_id(cid)
    for run_id in runs:
        try:
            await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
                namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=wid, run_id=run_id)))
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    deadline = time.monotonic() + 90  # the dev server deletes a closed run about half a minute later
    for run_id in runs:
        while True:
            try:
                await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    break
                raise
            assert time.monotonic() < deadline, f"run {run_id} of {cid} was not deleted"
            await asyncio.sleep(0.2)


async def complaints(drive: Driver, database: Postgres, *args: str) -> subprocess.CompletedProcess[str]:
    """`complaints ...` in a subprocess, as an auditor runs it against this test's servers."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TEMPORAL_ADDRESS=drive.client.service_client.config.target_host, DATABASE_URL=database.app_url,
               COMPLAINTS_TASK_QUEUE=drive.task_queue, COLUMNS="200")
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cli.main", *args], capture_output=True,
                                   text=True, env=env, cwd=ROOT, timeout=120)


def broken(result: Verification) -> dict[str, set[tuple[str, int]]]:
    found: dict[str, set[tuple[str, int]]] = {}
    for b in result.breaks:
        found.setdefault(b.complaint_id, set()).add((b.kind, b.sequence))
    return found


async def test_closed_complaints_are_witnessed_by_their_archives_once_retention_took_their_histories(
        drive: Driver, intake_data: Data, sealer_store: PostgresEventStore, seal_key: Any,
        admin: asyncpg.Connection, database: Postgres) -> None:
    """Retention is played once for several complaints (the dev server takes about half a minute to delete a
    closed run), each then tampered in its own way."""
    tail, rewrite, forged, unarchived, recent = [await closed_complaint(drive, intake_data) for _ in range(5)]
    running = await drive.submit(intake_data())
    # Check the archiver archives what is closed, and leaves what runs for a later pass.
    chosen = [tail, rewrite, forged, recent, running]
    done = await archive_closed(sealer_store, drive.client, seal_key, ORIGIN, ids=chosen, task_queue=drive.task_queue)
    assert sorted(done.archived) == sorted([tail, rewrite, forged, recent]) and done.running == [running]
    assert not done.refused and not done.gone
    again = await archive_closed(sealer_store, drive.client, seal_key, ORIGIN, ids=chosen, task_queue=drive.task_queue)
    assert again.archived == [] and sorted(again.already) == sorted([tail, rewrite, forged, recent])
    retained = [tail, rewrite, forged, unarchived]
    runs = {cid: await drive.store.writer_runs(cid) for cid in retained}
    await asyncio.gather(*(retention(drive.client, cid, runs[cid]) for cid in retained))

    # Check verify --all: the archived complaints against their archives, the others against their histories;
    # the one retention took unarchived is still a break.
    result = await verify(drive, None, trusted_public_key=trusted(seal_key))
    assert broken(result) == {unarchived: {("missing_in_temporal", 0)}}
    assert "archived witness" in result.by_complaint[unarchived].breaks[0].detail
    witnessed = {cid: result.by_complaint[cid].witnessed_by for cid in (tail, rewrite, forged, recent, running)}
    assert witnessed == {tail: "archive", rewrite: "archive", forged: "archive", recent: "history",
                         running: "history"}
    assert result.unchecked_archives == 0 and result.as_json()["witnessed_by"]["archive"] == 3
    # Without a trusted key nothing breaks more, and the archives' signatures are said not to be checked (exit 3).
    unkeyed = await verify(drive, None)
    assert broken(unkeyed).keys() == {unarchived} and unkeyed.unchecked_archives == 4
    # The auditor's command says which witness each complaint had.
    shown = await complaints(drive, database, "verify", "--all", "--public-key", trusted(seal_key))
    assert shown.returncode == 1 and "missing_in_temporal" in shown.stdout, shown.stdout + shown.stderr
    assert "1 break(s): 6 complaints (2 against Temporal's history, 3 against their archived witness" in shown.stdout
    shown = await complaints(drive, database, "verify", recent, tail)
    assert shown.returncode == 3 and "all verified" in shown.stdout, shown.stdout + shown.stderr
    assert "2 archived witness signature(s) NOT checked" in shown.stdout

    # The hostile administrator: a deleted tail; a rewritten event with the chain recomputed after it; a deleted
    # last event with the archive made to agree.
    last = (await rows(admin, tail))[-1]["sequence"]
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence >= $2", tail,
                               last - 1))
    stored = [dict(r) for r in await rows(admin, rewrite)]
    target = next(r for r in stored if r["type"] == "MessageLogged")
    changed = [{**r, "payload": {**r["payload"], "channel": "phone"}} if r is target else r
               for r in stored if r["sequence"] >= target["sequence"]]
    forged_rows = rechain(rewrite, changed, target["prev_hash"])
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence >= $2", rewrite,
                               target["sequence"]), *(insert(r) for r in forged_rows))
    forged_last = (await rows(admin, forged))[-1]["sequence"]
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = $2", forged,
                               forged_last))
    async with admin.transaction():
        await admin.execute("ALTER TABLE complaint_witness_archive DISABLE TRIGGER USER")
        await admin.execute("UPDATE complaint_witness_archive SET final_sequence = final_sequence - 1,"
                            " hashes = hashes[1:final_sequence - 1], final_hash = hashes[final_sequence - 1]"
                            " WHERE complaint_id = $1", forged)
        await admin.execute("ALTER TABLE complaint_witness_archive ENABLE TRIGGER USER")

    result = await verify(drive, None, trusted_public_key=trusted(seal_key))
    found = broken(result)
    assert found[tail] == {("deleted_tail", last - 1)}  # the chain alone looks whole
    assert ("rewritten_event", target["sequence"]) in found[rewrite]
    assert not {k for k, _ in found[rewrite]} & {"hash_mismatch", "broken_link", "gap"}  # a perfect forgery...
    assert found[forged] == {("archive_signature", 0)}  # ...and an archive made to agree does not hold
    assert found.keys() == {tail, rewrite, forged, unarchived}
    # Another key's signature is no better; the log alone (no Temporal) checks the archives too.
    other = cp.verifier_key(ORIGIN, cp.signing_key(cp.new_seal_key()))
    assert ("archive_signature", 0) in broken(await verify(drive, [tail], trusted_public_key=other))[tail]
    log_only = await Verifier(drive.store, None,
                              trusted_public_key=trusted(seal_key)).verify(None)
    assert broken(log_only) == {tail: found[tail], rewrite: found[rewrite], forged: found[forged]}


async def test_a_complaint_that_does_not_verify_is_not_archived(
        drive: Driver, intake_data: Data, sealer_store: PostgresEventStore, seal_key: Any,
        admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    last = (await rows(admin, cid))[-1]["sequence"]
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = $2", cid, last))
    done = await archive_closed(sealer_store, drive.client, seal_key, ORIGIN, ids=[cid], task_queue=drive.task_queue)
    assert done.archived == [] and ("missing_in_log", last) in {(b.kind, b.sequence) for b in done.refused[cid]}
    assert await admin.fetchval("SELECT count(*) FROM complaint_witness_archive") == 0


async def test_only_the_sealer_writes_the_archive_and_nobody_changes_it(
        drive: Driver, intake_data: Data, sealer_store: PostgresEventStore, seal_key: Any, database: Postgres,
        admin: asyncpg.Connection) -> None:
    from dev.stack import APP_ROLE, SEALER_ROLE

    cid = await closed_complaint(drive, intake_data)
    await archive_closed(sealer_store, drive.client, seal_key, ORIGIN, ids=[cid], task_queue=drive.task_queue)
    row = dict(await admin.fetchrow("SELECT * FROM complaint_witness_archive WHERE complaint_id = $1", cid))
    assert row["recorded_by"] == SEALER_ROLE
    forged = {**row, "complaint_id": f"T-{uuid.uuid4().hex[:10]}"}
    call = ("SELECT record_complaint_witness($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", forged["complaint_id"],
            forged["workflow_id"], forged["run_ids"], forged["final_sequence"], forged["final_hash"], forged["hashes"],
            forged["closed_as"], forged["history_sha256"], forged["archived_at"], forged["public_key"], forged["note"])
    direct = ("INSERT INTO complaint_witness_archive (complaint_id, workflow_id, run_ids, final_sequence, final_hash,"
              " hashes, closed_as, history_sha256, archived_at, public_key, note, recorded_by)"
              " SELECT 'X', workflow_id, run_ids, final_sequence, final_hash, hashes, closed_as, history_sha256,"
              " archived_at, public_key, note, 'me' FROM complaint_witness_archive LIMIT 1")
    for role, statement in ((APP_ROLE, call), (APP_ROLE, (direct,)), (SEALER_ROLE, (direct,)),
                            (APP_ROLE, ("DELETE FROM complaint_witness_archive",)),
                            (SEALER_ROLE, ("UPDATE complaint_witness_archive SET final_sequence = 1",))):
        conn = await asyncpg.connect(database.url(role))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(*statement)
        finally:
            await conn.close()
    # Even the schema owner cannot change or delete an archived witness (the append-only trigger).
    for statement in ("UPDATE complaint_witness_archive SET final_sequence = 1",
                      "DELETE FROM complaint_witness_archive", "TRUNCATE complaint_witness_archive"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await admin.execute(statement)
    assert await admin.fetchval("SELECT count(*) FROM complaint_witness_archive") == 1


async def test_the_runs_before_a_continuation_gone_to_retention_are_witnessed_by_the_carried_head(
        dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, intake_data: Data,
        admin: asyncpg.Connection) -> None:
    """An open complaint that continued as new: retention removes its earlier runs (each run is retained from
    its own close). The head carried into the run still open witnesses the events before it."""
    queue = f"complaints-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_server.client, app_pool, queue, run_options=RunOptions(max_history_events=100)):
        drive = Driver(dev_server.client, store, queue)
        cid = await drive.submit(intake_data())
        for n in range(40):
            await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email",
                             text=f"message {n}")
        runs = await store.writer_runs(cid)
        assert len(runs) >= 3, runs
        await retention(drive.client, cid, runs[:-1])
        result = await verify(drive, [cid])
        assert result.ok, result.breaks
        # An early event rewritten, the chain recomputed to the end: the carried head no longer matches.
        stored = [dict(r) for r in await rows(admin, cid)]
        target = next(r for r in stored if r["type"] == "MessageLogged")
        changed = [{**r, "payload": {**r["payload"], "channel": "phone"}} if r is target else r
                   for r in stored if r["sequence"] >= target["sequence"]]
        forged = rechain(cid, changed, target["prev_hash"])
        await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence >= $2", cid,
                                   target["sequence"]), *(insert(r) for r in forged))
        found = {k for k, _ in kinds(await verify(drive, [cid]))}
        assert "rewritten_event" in found and "unwitnessed_event" not in found
