"""verify on a live deployment: a run started again under a closed complaint's id, complaints taking messages
while verify --all runs, and a workflow whose task keeps failing. Verify stays green where nothing was
tampered, red where something was, and names what it could not read instead of crashing. Real PostgreSQL,
real Temporal (the dev server)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from audit.timeline import Timeline, build_timeline
from audit.verify import Verification, Verifier
from codec import data_converter
from codec.encryption import EncryptionCodec, new_codec_key, parse_keys
from eventlog import PostgresEventStore
from eventlog.keys import CustomerKeyring, master_key
from identity.client import CredentialInterceptor
from settings import workflow_id
from tests.audit.test_verify import as_superuser, closed_complaint, insert, kinds, rechain, rows, verify
from tests.principals import SuitePrincipals
from tests.workflows.driver import Driver
from workflows.complaint import ComplaintWorkflow

Data = Callable[..., dict[str, Any]]
ROUNDS = 3


@pytest.fixture
def drive(dev_server: WorkflowEnvironment, store: PostgresEventStore, dev_worker: Worker, task_queue: str) -> Driver:
    return Driver(dev_server.client, store, task_queue)


async def timeline(drive: Driver, cid: str) -> Timeline:
    """The timeline as an auditor with Temporal reads it: the log's story with verify's verdict."""
    opener = await CustomerKeyring(drive.store.pool, master_key()).opener()
    verifier = Verifier(drive.store, drive.client, task_queue=drive.task_queue)
    return await build_timeline(drive.store, opener, cid, verifier=verifier)


def broken(result: Verification) -> dict[str, set[tuple[str, int]]]:
    found: dict[str, set[tuple[str, int]]] = {}
    for b in result.breaks:
        found.setdefault(b.complaint_id, set()).add((b.kind, b.sequence))
    return found


# --- 7. a workflow id used again --------------------------------------------------------------------------------


async def test_a_run_started_again_under_a_closed_complaints_id_is_not_its_witness(
        drive: Driver, intake_data: Data, admin: asyncpg.Connection) -> None:
    data = intake_data()
    cid = await drive.submit(data)
    await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text="where is my parcel?")
    await drive.send(cid, ComplaintWorkflow.withdraw, reason="it came")
    await drive.finished(cid)
    # The temporal CLI's default id reuse policy allows a new run once the workflow closed: the workflow refuses
    # it, writing nothing. That failed run is now the workflow id's newest.
    handle = await drive.client.start_workflow("ComplaintWorkflow", data, id=workflow_id(cid),
                                               task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, ApplicationError) and failure.value.cause.type == "ComplaintExists"
    described = await drive.client.get_workflow_handle(workflow_id(cid)).describe()
    assert described.run_id == handle.result_run_id
    # Check verify (one complaint, and --all) and the timeline agree: verified, against the runs that wrote it.
    one, every = await verify(drive, [cid]), await verify(drive, None)
    assert one.ok and every.ok, (one.breaks, every.breaks)
    story = await timeline(drive, cid)
    assert one.by_complaint[cid].witnessed_by == "history" and story.verified and story.witnessed_by == "history"
    # A real tamper: both say broken, for the same reasons.
    last = (await rows(admin, cid))[-1]["sequence"]
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = $2", cid, last))
    one, story = await verify(drive, [cid]), await timeline(drive, cid)
    assert ("missing_in_log", last) in kinds(one) and not story.verified
    assert all(b in story.breaks for b in one.breaks)


# --- 8. live traffic --------------------------------------------------------------------------------------------


async def test_verify_all_is_green_under_live_traffic_and_red_for_a_real_tamper(
        drive: Driver, intake_data: Data, admin: asyncpg.Connection) -> None:
    busy = [await drive.submit(intake_data()) for _ in range(4)]
    idle = await drive.submit(intake_data())
    closed = await closed_complaint(drive, intake_data)

    sent = {cid: 0 for cid in busy}

    async def verify_during_load(rounds: int) -> list[Verification]:
        """verify --all, ``rounds`` times, while every busy complaint takes messages, one after another."""
        stop = asyncio.Event()
        before = dict(sent)

        async def talk(cid: str) -> None:
            while not stop.is_set():
                await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email",
                                 text=f"message {sent[cid]}")
                sent[cid] += 1

        load = asyncio.gather(*(talk(cid) for cid in busy))
        try:
            done = [await verify(drive, None) for _ in range(rounds)]
        finally:
            stop.set()
            await load
        assert all(sent[cid] - before[cid] >= rounds for cid in busy), sent  # busy all along
        return done

    # Check: several verify --all while every busy complaint takes messages concurrently, all green.
    results = await verify_during_load(ROUNDS)
    assert [broken(r) for r in results] == [{}] * ROUNDS

    # A real tamper of each kind, then verify again under load: an edited early event of a busy complaint, a
    # deleted last event of a closed one, and an event forged onto the tail of an idle running one.
    stored = [dict(r) for r in await rows(admin, busy[0])]
    message = next(r for r in stored if r["type"] == "MessageLogged")
    await as_superuser(admin, ("UPDATE complaint_events SET payload = jsonb_set(payload, '{channel}', '\"phone\"')"
                               " WHERE complaint_id = $1 AND sequence = $2", busy[0], message["sequence"]))
    last = (await rows(admin, closed))[-1]["sequence"]
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = $2", closed, last))
    tail = [dict(r) for r in await rows(admin, idle)]
    invented = {**message, "complaint_id": idle, "sequence": tail[-1]["sequence"] + 1,
                "workflow_id": tail[-1]["workflow_id"], "run_id": tail[-1]["run_id"]}
    [forged] = rechain(idle, [invented], tail[-1]["hash"])
    await as_superuser(admin, insert(forged))
    for result in await verify_during_load(1):
        found = broken(result)
        assert found.keys() == {busy[0], closed, idle}, found
        assert {("hash_mismatch", message["sequence"]), ("rewritten_event", message["sequence"])} <= found[busy[0]]
        assert ("missing_in_log", last) in found[closed]
        assert found[idle] == {("unwitnessed_event", forged["sequence"])}
    # Nothing the load sent was lost or written twice.
    assert {cid: (await drive.types(cid)).count("MessageLogged") for cid in busy} == sent


async def test_an_event_forged_onto_a_running_complaints_tail_is_named_without_waiting_it_out(
        drive: Driver, intake_data: Data, admin: asyncpg.Connection) -> None:
    """The moving tail is looked at again only while an append could still record it: an idle workflow's
    history read after the log shows none under way, so the forgery is named at once, not after the wait."""
    cid = await drive.submit(intake_data())
    tail = [dict(r) for r in await rows(admin, cid)]
    invented = {**tail[-1], "sequence": tail[-1]["sequence"] + 1}
    [forged] = rechain(cid, [invented], tail[-1]["hash"])
    await as_superuser(admin, insert(forged))
    started = time.monotonic()
    result = await Verifier(drive.store, drive.client, task_queue=drive.task_queue,
                            settle_seconds=120).verify([cid])
    assert kinds(result) == {("unwitnessed_event", forged["sequence"])}
    assert time.monotonic() - started < 60


# --- 9. a workflow whose task keeps failing ---------------------------------------------------------------------


async def test_a_workflow_whose_task_keeps_failing_is_reported_and_the_others_verified(
        drive: Driver, intake_data: Data) -> None:
    good = await closed_complaint(drive, intake_data)
    # A backend that encrypts with a codec key the workers were never given: every workflow task fails to open
    # the input, and Temporal retries it for ever ("Workflow Task in failed state").
    stranger = await Client.connect(drive.client.service_client.config.target_host,
                                    data_converter=data_converter(EncryptionCodec(parse_keys(new_codec_key()))),
                                    interceptors=[CredentialInterceptor(), SuitePrincipals()])
    data = intake_data()
    await starter.submit(stranger, starter.parse_intake(json.dumps(data)), task_queue=drive.task_queue)
    stuck = data["complaint_id"]
    deadline = time.monotonic() + 60
    while True:
        history = await drive.client.get_workflow_handle(workflow_id(stuck)).fetch_history()
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events):
            break  # (its retries are not written to history: one failure stands for all)
        assert time.monotonic() < deadline, "the workflow task did not fail"
        await asyncio.sleep(0.5)
    result = await verify(drive, None)
    [reason] = result.by_complaint[stuck].breaks
    assert reason.kind == "witness_failed" and "workflow task keeps failing" in reason.detail, reason
    assert "not among COMPLAINTS_CODEC_KEYS" in reason.detail  # the worker's own words, as Temporal recorded them
    assert result.by_complaint[good].ok and result.by_complaint[good].witnessed_by == "history"
    assert broken(result).keys() == {stuck}
