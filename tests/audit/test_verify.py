"""verify against a hostile database administrator: each tampering, done as the PostgreSQL superuser with the
append-only trigger disabled, is detected and named (complaint, sequence, kind). Real PostgreSQL, real
Temporal."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.messages import RunOptions
from audit import bundle as bundles
from audit import checkpoints as cp
from audit.verify import Verification, Verifier
from audit.witness import LOCAL_ACTIVITY_MARKER, witness
from domain.chain import canonical_bytes, link
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from settings import workflow_id
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

Data = Callable[..., dict[str, Any]]
ORIGIN = "complaints.test/log"


@pytest.fixture
def drive(dev_server: WorkflowEnvironment, store: PostgresEventStore, dev_worker: Worker, task_queue: str) -> Driver:
    """A real server: verify --all lists complaints through Temporal's visibility, which the time-skipping
    server lacks; nothing here waits on a timer."""
    return Driver(dev_server.client, store, task_queue)


async def closed_complaint(drive: Driver, intake_data: Data) -> str:
    """A complaint with a conversation, a verdict, a remedy and a follow-up: 13 events or so."""
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.move_offline, rung="email", detail="siti@example.co.id")
    for n in range(3):
        await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text=f"message {n}")
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=5)
    await drive.finished(cid)
    return cid


async def verify(drive: Driver, ids: list[str] | None, **kwargs: Any) -> Verification:
    return await Verifier(drive.store, drive.client, task_queue=drive.task_queue,
                          **kwargs).verify(ids)


def kinds(result: Verification) -> set[tuple[str, int]]:
    return {(b.kind, b.sequence) for b in result.breaks}


async def as_superuser(admin: asyncpg.Connection, *statements: tuple[str, ...]) -> None:
    """Tamper the way only a superuser can: with the append-only triggers switched off."""
    async with admin.transaction():
        await admin.execute("ALTER TABLE complaint_events DISABLE TRIGGER USER")
        for statement, *args in statements:
            await admin.execute(statement, *args)
        await admin.execute("ALTER TABLE complaint_events ENABLE TRIGGER USER")


async def rows(admin: asyncpg.Connection, cid: str) -> list[asyncpg.Record]:
    return list(await admin.fetch("SELECT * FROM complaint_events WHERE complaint_id = $1 ORDER BY sequence", cid))


def rechain(cid: str, rows_: list[dict[str, Any]], prev_hash: str) -> list[dict[str, Any]]:
    """What a careful forger does: recompute every hash so the chain looks whole."""
    out = []
    for row in rows_:
        body = canonical_bytes(complaint_id=cid, sequence=row["sequence"], type=row["type"],
                               schema_version=row["schema_version"], occurred_at=row["occurred_at"],
                               actor=row["actor"], payload=row["payload"])
        row = {**row, "prev_hash": prev_hash, "hash": link(prev_hash, body)}
        prev_hash = row["hash"]
        out.append(row)
    return out


INSERT = ("INSERT INTO complaint_events (complaint_id, sequence, type, schema_version, occurred_at, actor, payload,"
          " prev_hash, hash, workflow_id, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")


def insert(row: dict[str, Any]) -> tuple[Any, ...]:
    return (INSERT, row["complaint_id"], row["sequence"], row["type"], row["schema_version"], row["occurred_at"],
            row["actor"], row["payload"], row["prev_hash"], row["hash"], row["workflow_id"], row["run_id"])


async def test_an_untampered_log_verifies_on_every_count(drive: Driver, intake_data: Data) -> None:
    cid = await closed_complaint(drive, intake_data)
    result = await verify(drive, None)
    assert result.ok, result.breaks
    assert result.events == len(await drive.store.read(cid)) and cid in result.by_complaint


@pytest.mark.parametrize("local", [True, False], ids=["local-activity-appends", "activity-appends"])
async def test_the_history_witnesses_every_append_whichever_way_it_ran(
        dev_server: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore, intake_data: Data,
        local: bool) -> None:
    """Appends run as activities, or as local activities (markers in history) when the workers are so
    configured. The workflow witness reads the stored records out of both, record for record."""
    queue = f"complaints-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_server.client, app_pool, queue, run_options=RunOptions(local_appends=local)):
        drive = Driver(dev_server.client, store, queue)
        cid = await drive.submit(intake_data())
        await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text="still waiting")
        history = await drive.client.get_workflow_handle(workflow_id(cid)).fetch_history()
        markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                   and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
                   and b'"append_events"' in e.marker_recorded_event_attributes.details["data"].payloads[0].data]
        scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        appends = 4  # the intake batch, the acknowledgement and the move request sent, then the message logged
        assert (len(markers), scheduled.count("append_events")) == ((appends, 0) if local else (0, appends))
        seen = await witness(drive.client, cid)
        assert seen.records == {r.sequence: r for r in await drive.store.read(cid)}


async def test_an_edited_payload_is_caught_at_its_sequence(drive: Driver, intake_data: Data,
                                                           admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    await as_superuser(admin, ("UPDATE complaint_events SET payload = jsonb_set(payload, '{verdict}', '\"invalid\"')"
                               " WHERE complaint_id = $1 AND type = 'ComplaintAssessed'", cid))
    seq = next(r["sequence"] for r in await rows(admin, cid) if r["type"] == "ComplaintAssessed")
    found = kinds(await verify(drive, [cid]))
    assert ("hash_mismatch", seq) in found and ("rewritten_event", seq) in found


async def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(drive: Driver, intake_data: Data,
                                                                     admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    stored = await rows(admin, cid)
    target = next(dict(r) for r in stored if r["type"] == "MessageLogged")
    target["payload"] = {**target["payload"], "channel": "phone"}
    [forged] = rechain(cid, [target], target["prev_hash"])
    await as_superuser(admin, ("UPDATE complaint_events SET payload = $3, hash = $4 WHERE complaint_id = $1 AND "
                               "sequence = $2", cid, forged["sequence"], forged["payload"], forged["hash"]))
    found = kinds(await verify(drive, [cid]))
    assert ("broken_link", forged["sequence"] + 1) in found
    assert ("rewritten_event", forged["sequence"]) in found
    assert not any(k == "hash_mismatch" for k, _ in found)  # the row itself now looks whole


async def test_a_deleted_last_event_is_caught_by_the_workflow_witness(drive: Driver, intake_data: Data,
                                                                      admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    last = (await rows(admin, cid))[-1]["sequence"]
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = $2", cid, last))
    found = kinds(await verify(drive, [cid]))
    assert ("missing_in_log", last) in found and ("head_mismatch", last - 1) in found
    assert not any(k in {"hash_mismatch", "broken_link", "gap"} for k, _ in found)  # the chain alone looks fine


async def test_a_deleted_middle_event_renumbered_and_rechained_is_caught(drive: Driver, intake_data: Data,
                                                                         admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    stored = [dict(r) for r in await rows(admin, cid)]
    gone = next(r["sequence"] for r in stored if r["type"] == "MessageLogged")
    kept = [r for r in stored if r["sequence"] < gone]
    renumbered = [{**r, "sequence": r["sequence"] - 1} for r in stored if r["sequence"] > gone]
    forged = rechain(cid, renumbered, kept[-1]["hash"])
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence >= $2", cid, gone),
                       *(insert(r) for r in forged))
    result = await verify(drive, [cid])
    found = kinds(result)
    assert not any(k in {"hash_mismatch", "broken_link", "gap"} for k, _ in found)  # a perfect forgery...
    assert ("rewritten_event", gone) in found  # ...named at the first sequence it changed
    assert ("missing_in_log", stored[-1]["sequence"]) in found


async def test_a_whole_deleted_complaint_is_caught_by_witness_and_checkpoint(
        drive: Driver, intake_data: Data, sealer_pool: asyncpg.Pool,
                                                                             admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    other = await closed_complaint(drive, intake_data)
    key = cp.signing_key(cp.new_seal_key())
    sealed = await cp.seal(sealer_pool, key, ORIGIN)
    assert (await verify(drive, None)).ok
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1", cid))
    result = await verify(drive, None, published=[sealed], trusted_public_key=cp.public_key_of(key))
    found = kinds(result)
    assert ("missing_in_log", 0) in found
    assert {b.kind for b in result.checkpoint_breaks} >= {"checkpoint_count", "checkpoint_root"}
    assert result.by_complaint[other].ok


async def test_two_swapped_events_are_caught_at_both_places(drive: Driver, intake_data: Data,
                                                            admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    a, b = [r["sequence"] for r in await rows(admin, cid) if r["type"] == "MessageLogged"][:2]
    await as_superuser(admin,
                       ("UPDATE complaint_events SET sequence = 999999 WHERE complaint_id = $1 AND sequence = $2",
                        cid, a),
                       ("UPDATE complaint_events SET sequence = $2 WHERE complaint_id = $1 AND sequence = $3",
                        cid, a, b),
                       ("UPDATE complaint_events SET sequence = $2 WHERE complaint_id = $1 AND sequence = 999999",
                        cid, b))
    found = kinds(await verify(drive, [cid]))
    assert {("rewritten_event", a), ("rewritten_event", b), ("hash_mismatch", a), ("hash_mismatch", b)} <= found


async def test_an_inserted_event_with_a_forged_chain_is_caught(drive: Driver, intake_data: Data,
                                                               admin: asyncpg.Connection) -> None:
    cid = await closed_complaint(drive, intake_data)
    stored = [dict(r) for r in await rows(admin, cid)]
    message = next(r for r in stored if r["type"] == "MessageLogged")
    invented = {**message, "sequence": stored[-1]["sequence"] + 1,
                "payload": {**message["payload"], "sender": "customer"}}
    [forged] = rechain(cid, [invented], stored[-1]["hash"])
    await as_superuser(admin, insert(forged))
    found = kinds(await verify(drive, [cid]))
    assert ("unwitnessed_event", forged["sequence"]) in found
    assert not any(k in {"hash_mismatch", "broken_link", "gap"} for k, _ in found)


async def test_a_withdrawn_published_checkpoint_is_caught(drive: Driver, intake_data: Data, sealer_pool: asyncpg.Pool,
                                                          admin: asyncpg.Connection) -> None:
    await closed_complaint(drive, intake_data)
    key = cp.signing_key(cp.new_seal_key())
    sealed = await cp.seal(sealer_pool, key, ORIGIN)
    async with admin.transaction():
        await admin.execute("ALTER TABLE complaint_checkpoints DISABLE TRIGGER USER")
        await admin.execute("DELETE FROM complaint_checkpoints")
        await admin.execute("ALTER TABLE complaint_checkpoints ENABLE TRIGGER USER")
    result = await verify(drive, None, published=[sealed])
    assert [b.kind for b in result.checkpoint_breaks] == ["checkpoint_withdrawn"]


async def test_a_checkpoint_signed_with_another_key_is_refused(drive: Driver, intake_data: Data,
                                                              sealer_pool: asyncpg.Pool) -> None:
    await closed_complaint(drive, intake_data)
    trusted = cp.signing_key(cp.new_seal_key())
    await cp.seal(sealer_pool, cp.signing_key(cp.new_seal_key()), ORIGIN)
    result = await verify(drive, None, trusted_public_key=cp.public_key_of(trusted))
    assert [b.kind for b in result.checkpoint_breaks] == ["checkpoint_signature"]


async def test_a_bundle_verifies_offline_and_fails_when_any_byte_changes(drive: Driver, intake_data: Data,
                                                                         sealer_pool: asyncpg.Pool) -> None:
    cid = await closed_complaint(drive, intake_data)
    await closed_complaint(drive, intake_data)
    key = cp.signing_key(cp.new_seal_key())
    await cp.seal(sealer_pool, key, ORIGIN)
    data = (await bundles.export(drive.store.pool, cid)).to_bytes()
    good = bundles.verify(data, cp.public_key_of(key))
    assert good.ok and good.events == len(await drive.store.read(cid)) and good.sealed_upto == good.events
    assert not bundles.verify(data, cp.public_key_of(cp.signing_key(cp.new_seal_key()))).ok
    rng = random.Random(7)
    for index in sorted(set(rng.sample(range(len(data)), 400)) | {0, len(data) - 1}):
        for replacement in {(data[index] + 1) % 256, ord("0") if data[index] != ord("0") else ord("1")}:
            spoiled = data[:index] + bytes([replacement]) + data[index + 1:]
            assert not bundles.verify(spoiled, cp.public_key_of(key)).ok, f"byte {index} changed unnoticed"


async def test_a_bundle_of_a_complaint_never_sealed_says_so(drive: Driver, intake_data: Data) -> None:
    cid = await closed_complaint(drive, intake_data)
    checked = bundles.verify((await bundles.export(drive.store.pool, cid)).to_bytes())
    assert not checked.ok and [b.kind for b in checked.breaks] == ["unsealed"]
