"""Personal fields are sealed at rest with the customer's key; destroying the key erases them, and nothing
else changes: every hash still verifies, the fold is the same."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import messages as msg
from activities.eventlog import EventLogActivities
from domain import decide
from domain import events as ev
from domain.chain import ChainHead, Draft, check_chain
from domain.complaint import fold
from domain.intake import ComplaintIntake
from domain.personal import ERASED, is_sealed, open_payload
from eventlog import PostgresEventStore
from eventlog.keys import CustomerErased, CustomerKeyring, SealedFieldError, erase_customer, master_key
from tests.eventlog.contract import new_id

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SECRET_NAME = "Siti Rahmawati-Unique"


def intake(cid: str, customer: str = "cust-sealed") -> ComplaintIntake:
    return ComplaintIntake.model_validate({
        "complaint_id": cid, "customer": {"id": customer, "name": SECRET_NAME},
        "contact": {"email": "siti.unique@example.co.id", "handle": "@siti"}, "channel": "social",
        "subject": {"kind": "order", "title": "Late delivery", "reference": "8812"},
        "description": "Pesanan saya belum datang; alamat saya Jl. Mawar 12.", "severity": "high",
        "jurisdiction": "ID", "occurred_at": "2026-11-20T09:00:00Z",
    })


def request(cid: str, customer: str = "cust-sealed") -> msg.AppendEvents:
    events = decide.receive(intake(cid, customer), NOW, None)
    return msg.AppendEvents(complaint_id=cid, customer_id=customer, head=ChainHead(), occurred_at=NOW,
                            drafts=[Draft.of(e, "system") for e in events])


@pytest.fixture
def keyring(app_pool: asyncpg.Pool) -> CustomerKeyring:
    return CustomerKeyring(app_pool, master_key())


async def test_personal_fields_are_stored_sealed_and_open_with_the_customers_key(
    store: PostgresEventStore, keyring: CustomerKeyring, admin: asyncpg.Connection
) -> None:
    cid = new_id()
    appended = await ActivityEnvironment().run(EventLogActivities(store, keyring).append_events, request(cid))
    received = appended.records[0]
    for field in ("customer_name", "contact_email", "contact_handle", "description"):
        assert is_sealed(received.payload[field]), field
    # The customer id stays readable (erasure finds the customer's complaints by it); the subject is theirs.
    assert received.payload["customer_id"] == "cust-sealed" and is_sealed(received.payload["subject_title"])
    # Check nothing personal is readable in the database, even to its superuser.
    dump = await admin.fetchval("SELECT string_agg(payload::text, ' ') FROM complaint_events WHERE complaint_id = $1",
                                cid)
    assert SECRET_NAME not in dump and "siti.unique@example.co.id" not in dump and "Mawar" not in dump
    opener = await keyring.opener()
    opened = open_payload(received.type, received.payload, cid, 1, opener)
    assert opened["customer_name"] == SECRET_NAME and opened["contact_email"] == "siti.unique@example.co.id"


async def test_a_retried_append_seals_to_the_same_bytes_and_writes_nothing(
    store: PostgresEventStore, keyring: CustomerKeyring
) -> None:
    cid = new_id()
    activities = EventLogActivities(store, keyring)
    first = await ActivityEnvironment().run(activities.append_events, request(cid))
    again = await ActivityEnvironment().run(activities.append_events, request(cid))
    assert [r.hash for r in again.records] == [r.hash for r in first.records]
    assert len(await store.read(cid)) == len(first.records)


async def test_erasing_a_customer_keeps_the_chain_and_the_fold(
    store: PostgresEventStore, keyring: CustomerKeyring, eraser_pool: asyncpg.Pool
) -> None:
    cid, customer = new_id(), f"cust-{new_id()}"
    received = await ActivityEnvironment().run(EventLogActivities(store, keyring).append_events, request(cid, customer))
    # Closed first: a customer with an open complaint is not erased (its workflow would go on writing).
    closed = [ev.ComplaintWithdrawn(reason="Sorted."), ev.ComplaintClosed(outcome="withdrawn", root_cause=None,
                                                                         satisfaction=None)]
    await ActivityEnvironment().run(EventLogActivities(store, keyring).append_events, msg.AppendEvents(
        complaint_id=cid, customer_id=customer, head=received.records[-1].head, occurred_at=NOW,
        drafts=[Draft.of(e, "system") for e in closed]))
    before = await store.read(cid)
    assert await erase_customer(eraser_pool, customer, requested_by="dpo:rina", legal_basis="UU PDP art. 8") == 1
    after = await store.read(cid)
    assert after == before  # the log itself is untouched
    _, breaks = check_chain(cid, after)
    assert breaks == []
    assert fold(after) == fold(before)
    opened = open_payload(after[0].type, after[0].payload, cid, 1, await keyring.opener())
    assert opened["customer_name"] == ERASED and opened["description"] == ERASED
    assert opened["subject_title"] == ERASED and opened["customer_id"] == customer
    # Erasing twice destroys nothing more, and both requests are on the record.
    assert await erase_customer(eraser_pool, customer, requested_by="dpo:rina", legal_basis="again") == 0
    recorded = await eraser_pool.fetch("SELECT requested_by, legal_basis, database_user, keys_destroyed"
                                       " FROM complaint_erasures WHERE customer_id = $1 ORDER BY id", customer)
    assert [tuple(r) for r in recorded] == [("dpo:rina", "UU PDP art. 8", "complaints_eraser", 1),
                                            ("dpo:rina", "again", "complaints_eraser", 0)]


async def test_a_destroyed_key_cannot_be_restored_even_by_the_owner(
    keyring: CustomerKeyring, admin: asyncpg.Connection, eraser_pool: asyncpg.Pool
) -> None:
    customer = f"cust-{new_id()}"
    key = await keyring.key_for(customer)
    await erase_customer(eraser_pool, customer, requested_by="dpo:rina", legal_basis="test")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await admin.execute("UPDATE complaint_customer_keys SET wrapped_key = '\\x00', erased_at = NULL "
                            "WHERE key_id = $1", key.key_id)
    # Nor does the customer get a new one: nothing personal of theirs is sealed (kept) again.
    with pytest.raises(CustomerErased):
        await keyring.key_for(customer)


async def test_a_sealed_value_moved_to_another_place_does_not_open(
    store: PostgresEventStore, keyring: CustomerKeyring
) -> None:
    cid = new_id()
    appended = await ActivityEnvironment().run(EventLogActivities(store, keyring).append_events, request(cid))
    token = appended.records[0].payload["description"]
    opener = await keyring.opener()
    with pytest.raises(SealedFieldError):
        opener.open(token, f"{cid}/1/ComplaintReceived/customer_name".encode())


def _as_run(run_id: str, *, local: bool = True) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, workflow_run_id=run_id, is_local=local)
    return environment


async def test_the_same_runs_decision_appended_again_at_another_time_returns_the_batch_already_stored(
    store: PostgresEventStore, keyring: CustomerKeyring
) -> None:
    """A local append whose workflow task never completed (its worker killed) runs again with a new
    workflow.now(): the log returns what the first attempt stored, and writes nothing."""
    cid = new_id()
    activities = EventLogActivities(store, keyring)
    first = await _as_run("run-1").run(activities.append_events, request(cid))
    later = request(cid).model_copy(update={"occurred_at": NOW + timedelta(seconds=3)})
    again = await _as_run("run-1").run(activities.append_events, later)
    assert again.records == first.records  # the stored batch, not the recomputed one
    assert not again.decided_before
    assert await store.read(cid) == first.records


def _another(later: msg.AppendEvents, change: str) -> msg.AppendEvents:
    match change:
        case "another decision":
            return later.model_copy(update={"drafts": [*later.drafts[:-1], Draft.of(
                ev.ComplaintWithdrawn(reason="x"), "system")]})
        case "another actor":
            return later.model_copy(update={"drafts": [d.model_copy(update={"actor": "agent:eve"})
                                                       for d in later.drafts]})
        case "a shorter batch":
            return later.model_copy(update={"drafts": later.drafts[:-1]})
        case "another update":
            return later.model_copy(update={"update_id": "C-1/7"})
    raise AssertionError(change)


async def test_another_run_at_the_same_place_is_refused_as_divergent(
    store: PostgresEventStore, keyring: CustomerKeyring
) -> None:
    cid = new_id()
    activities = EventLogActivities(store, keyring)
    first = await _as_run("run-1").run(activities.append_events, request(cid))
    same = request(cid).model_copy(update={"occurred_at": NOW + timedelta(seconds=3)})
    for later in (same, _another(same, "another decision")):  # the same decision, or another, from run-2
        with pytest.raises(ApplicationError) as refused:
            await _as_run("run-2").run(activities.append_events, later)
        assert refused.value.type == "DivergentHistory" and refused.value.non_retryable
    assert await store.read(cid) == first.records


@pytest.mark.parametrize("change", ["another decision", "another actor", "a shorter batch", "another update"])
async def test_another_decision_of_the_same_run_is_not_written_the_batch_it_decided_before_is_returned(
    store: PostgresEventStore, keyring: CustomerKeyring, change: str
) -> None:
    """Temporal lost the workflow task of a local append after it committed (the server killed): the run
    decides again, on inputs that may come in another order, and asks for something else at the same place.
    Nothing of it is written; the log returns the batch the run stored there, marked as decided before (with
    the update that decided it), for the run to fold and decide again on top of."""
    cid = new_id()
    activities = EventLogActivities(store, keyring)
    first = await _as_run("run-1").run(activities.append_events,
                                       request(cid).model_copy(update={"update_id": "C-1/3"}))
    later = _another(request(cid).model_copy(update={"occurred_at": NOW + timedelta(seconds=3),
                                                     "update_id": "C-1/3"}), change)
    returned = await _as_run("run-1").run(activities.append_events, later)
    assert returned.decided_before and returned.decided_by_update == "C-1/3"
    assert returned.records == first.records
    assert await store.read(cid) == first.records
