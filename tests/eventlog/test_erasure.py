"""Erasure that holds: every field that can carry personal data is sealed (nested ones too, the remedy ledger
too), an erased customer gets no new key, an open complaint is not erased from under its workflow, the
master key rotates without losing a field, and a sealed field that does not open is a break in the
timeline, never a lawful "[erased]". Against a real PostgreSQL, through the real activities and roles."""

from __future__ import annotations

import asyncio
import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV
from rich.console import Console
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities import messages as msg
from activities.eventlog import EventLogActivities
from activities.remedies import RemedyLedger
from audit.timeline import render_text, timeline_from_records
from cli.main import app
from dev.stack import Postgres
from domain import decide
from domain import events as ev
from domain.chain import ChainHead, Draft, Recorded, chain
from domain.intake import ComplaintIntake
from domain.personal import (
    ERASED,
    SEALED_PREFIX,
    UNREADABLE,
    KeyUnavailableError,
    SealedFieldError,
    is_sealed,
    ledger_place,
    open_payload,
    place,
)
from domain.values import Money
from domain.vocabulary import DeadlineKind, Outcome, RemedyKind, RootCause, Sender, Verdict
from eventlog import PostgresEventStore
from eventlog.keys import (
    MASTER_KEY_ENV,
    CustomerKeyring,
    MasterKeys,
    OpenComplaints,
    erase_customer,
    master_key,
)
from tests.eventlog.contract import new_id

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
#: Written into every free text: it must not be readable anywhere in the database.
MARK = "Qx7Mawar"


def intake(cid: str, customer: str) -> ComplaintIntake:
    return ComplaintIntake.model_validate({
        "complaint_id": cid, "customer": {"id": customer, "name": f"Siti {MARK}"},
        "contact": {"email": "siti@example.co.id"}, "channel": "social",
        "subject": {"kind": "order", "title": f"Kettle {MARK}", "reference": f"ORD-{MARK}"},
        "description": f"It leaks at Jl. {MARK} 12.", "severity": "high", "jurisdiction": "ID",
        "occurred_at": "2026-11-20T09:00:00Z",
    })


def offer() -> ev.RemedyOffered:
    return ev.RemedyOffered(options=[
        ev.RemedyOption(id="A", kind=RemedyKind.replacement, description=f"A replacement for 'Kettle {MARK}'",
                        value=Money(amount_minor=4_500_000, currency="IDR")),
        ev.RemedyOption(id="B", kind=RemedyKind.voucher, description=f"A voucher for {MARK}",
                        value=Money(amount_minor=5_400_000, currency="IDR")),
    ], default_option="A", expires_at=NOW + timedelta(days=7))


def free_text_events() -> list[ev.Event]:
    """One of every event whose free text became personal, each carrying MARK."""
    due = NOW + timedelta(days=20)
    return [
        ev.ComplaintAssessed(verdict=Verdict.partially_valid, root_cause=RootCause.product,
                             findings=f"Seal failed ({MARK})", clause=f"Warranty for {MARK}"),
        ev.ApologyIssued(text=f"We are sorry, {MARK}."),
        ev.ConductApologyIssued(text=f"Sorry our agent was curt, {MARK}."),
        ev.ExplanationGiven(sop_reference="SOP 9", text=f"As agreed with {MARK}."),
        offer(),
        ev.RemedyChosen(option_id="A"),
        ev.RemedyFulfilmentFailed(option_id="A", reason=f"no stock at {MARK}'s address"),
        ev.ComplaintEscalated(to=f"supervisor:{MARK}", reason=f"{MARK} called twice", awaits_supervisor=True),
        ev.SlaExtended(kind=DeadlineKind.final_response, previous_due_at=due, due_at=due + timedelta(days=10),
                       warn_at=due + timedelta(days=8), reason=f"waiting for {MARK}'s receipt",
                       notice=f"Dear {MARK}, we need ten more days."),
        ev.ComplaintClosed(outcome=Outcome.resolved, root_cause=RootCause.product, satisfaction=None,
                           note=f"Refunded {MARK} at the branch."),
    ]


def append_request(cid: str, customer: str, head: ChainHead, events: list[ev.Event],
                   actor: str = "agent:ana") -> msg.AppendEvents:
    return msg.AppendEvents(complaint_id=cid, customer_id=customer, head=head, occurred_at=NOW,
                            drafts=[Draft.of(e, actor) for e in events])


async def append(keyring: CustomerKeyring, store: PostgresEventStore, cid: str, customer: str,
                 events: list[ev.Event], head: ChainHead | None = None) -> list[Recorded]:
    if head is None:
        stored = await store.read(cid)
        head = stored[-1].head if stored else ChainHead()
    appended = await ActivityEnvironment().run(EventLogActivities(store, keyring).append_events,
                                               append_request(cid, customer, head, events))
    return appended.records


async def receive(keyring: CustomerKeyring, store: PostgresEventStore, cid: str, customer: str) -> list[Recorded]:
    return await append(keyring, store, cid, customer, decide.receive(intake(cid, customer), NOW, None))


async def close(keyring: CustomerKeyring, store: PostgresEventStore, cid: str, customer: str) -> None:
    await append(keyring, store, cid, customer, [
        ev.ComplaintWithdrawn(reason=None),
        ev.ComplaintClosed(outcome=Outcome.withdrawn, root_cause=None, satisfaction=None)])


@pytest.fixture
def keyring(app_pool: asyncpg.Pool) -> CustomerKeyring:
    return CustomerKeyring(app_pool, master_key())


def sealed_paths(record: Recorded) -> list[tuple[str, Any]]:
    """(label, value) of every declared personal field present in a record's payload."""
    found: list[tuple[str, Any]] = []
    for path in ev.EVENT_TYPES[record.type].personal:
        if path == "options[].description":
            found += [(f"options.{i}.description", o["description"]) for i, o in enumerate(record.payload["options"])]
        elif record.payload.get(path) is not None:
            found.append((path, record.payload[path]))
    return found


# --- (c) every free text sealed ----------------------------------------------------------------------------


async def test_every_field_that_can_hold_personal_data_is_sealed_and_opens_to_what_was_written(
    store: PostgresEventStore, keyring: CustomerKeyring, admin: asyncpg.Connection
) -> None:
    cid, customer = new_id(), f"cust-{new_id()}"
    events = decide.receive(intake(cid, customer), NOW, None) + free_text_events()
    records = await append(keyring, store, cid, customer, events)
    dump = await admin.fetchval("SELECT string_agg(payload::text, ' ') FROM complaint_events WHERE complaint_id = $1",
                                cid)
    assert MARK not in dump
    labels = set()
    for record in records:
        for label, value in sealed_paths(record):
            assert is_sealed(value), f"{record.type}.{label}"
            labels.add(f"{record.type}.{label}")
    assert labels >= {
        "ComplaintReceived.subject_title", "ComplaintReceived.subject_reference", "ComplaintAcknowledged.text",
        "ComplaintAssessed.clause", "ApologyIssued.text", "ConductApologyIssued.text", "ExplanationGiven.text",
        "RemedyOffered.options.0.description", "RemedyOffered.options.1.description",
        "RemedyFulfilmentFailed.reason", "ComplaintEscalated.to", "ComplaintEscalated.reason",
        "SlaExtended.reason", "SlaExtended.notice", "ComplaintClosed.note",
    }
    opener = await keyring.opener()
    stored = await store.read(cid)
    written = [Draft.of(e, "agent:ana").payload for e in events]
    assert [open_payload(r.type, r.payload, cid, r.sequence, opener) for r in stored] == written
    # A sealed item moved to another item of the list does not open there.
    remedies = next(r for r in stored if r.type == "RemedyOffered")
    with pytest.raises(SealedFieldError):
        opener.open(remedies.payload["options"][0]["description"],
                    place(cid, remedies.sequence, "RemedyOffered", "options.1.description"))
    # Nested sealing is deterministic: a retried append is recognised, not divergent.
    again = await ActivityEnvironment().run(EventLogActivities(store, keyring).append_events,
                                            append_request(cid, customer, ChainHead(), events))
    assert [r.hash for r in again.records] == [r.hash for r in records]
    assert len(await store.read(cid)) == len(events)


async def test_text_that_looks_sealed_is_sealed_too(store: PostgresEventStore, keyring: CustomerKeyring) -> None:
    cid, customer = new_id(), f"cust-{new_id()}"
    await receive(keyring, store, cid, customer)
    typed = f"{SEALED_PREFIX}0000000000000000:{MARK}"
    [logged] = await append(keyring, store, cid, customer, [ev.MessageLogged(sender=Sender.customer,
                                                                             channel="email", text=typed, at=NOW)])
    assert logged.payload["text"] != typed and MARK not in logged.payload["text"]
    opened = open_payload(logged.type, logged.payload, cid, logged.sequence, await keyring.opener())
    assert opened["text"] == typed


async def test_events_written_before_a_field_became_personal_read_as_they_were(
    store: PostgresEventStore, keyring: CustomerKeyring
) -> None:
    cid, customer = new_id(), f"cust-{new_id()}"
    head = (await receive(keyring, store, cid, customer))[-1].head
    # As an older worker wrote them: these fields unsealed.
    old = chain(head, cid, NOW, [Draft.of(e, "agent:ana") for e in free_text_events()[-3:]])
    await store.append(old)
    story = timeline_from_records(cid, await store.read(cid), await keyring.opener())
    assert story.verified, story.breaks
    assert story.entries[-1].text == f"Closed: resolved. Refunded {MARK} at the branch."
    assert story.subject == f"Kettle {MARK}"


# --- the remedy ledger's description ---------------------------------------------------------------------


async def test_the_ledger_keeps_the_remedy_description_sealed_with_the_customers_key(
    store: PostgresEventStore, keyring: CustomerKeyring, app_pool: asyncpg.Pool, admin: asyncpg.Connection,
    eraser_pool: asyncpg.Pool,
) -> None:
    cid, customer = new_id(), f"cust-{new_id()}"
    await receive(keyring, store, cid, customer)
    [offered] = await append(keyring, store, cid, customer, [offer()])
    folded = ev.RemedyOffered.model_validate(offered.payload)  # as the workflow's state holds it: sealed
    ledger = RemedyLedger(app_pool, keyring)
    request = msg.FulfilmentRequest(complaint_id=cid, option=folded.options[0])
    receipt = await ActivityEnvironment().run(ledger.fulfil_remedy, request)
    assert (await ActivityEnvironment().run(ledger.fulfil_remedy, request)).reference == receipt.reference
    # A provider's caller may hand the description in plaintext: sealed as well.
    plain = msg.FulfilmentRequest(complaint_id=cid, option=offer().options[1])
    await ActivityEnvironment().run(ledger.fulfil_remedy, plain)
    rows = {r["option_id"]: r["description"] for r in
            await admin.fetch("SELECT option_id, description FROM complaint_remedy_fulfilments WHERE complaint_id = $1",
                              cid)}
    assert all(is_sealed(d) and MARK not in d for d in rows.values())
    opener = await keyring.opener()
    assert opener.open(rows["A"], ledger_place(cid, 0, "A")) == f"A replacement for 'Kettle {MARK}'"
    assert opener.open(rows["B"], ledger_place(cid, 0, "B")) == f"A voucher for {MARK}"
    # A description the complaint was never offered is refused, not ordered.
    forged = folded.options[0].model_copy(update={"description": folded.options[1].description})
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(ledger.fulfil_remedy, msg.FulfilmentRequest(complaint_id=cid, option=forged,
                                                                                    offer_round=1))
    assert refused.value.non_retryable
    await close(keyring, store, cid, customer)
    await erase_customer(eraser_pool, customer, requested_by="dpo", legal_basis="request")
    assert (await keyring.opener()).open(rows["A"], ledger_place(cid, 0, "A")) is None


# --- (b) an erased customer gets no new key ----------------------------------------------------------------


async def test_personal_data_for_an_erased_customer_is_refused_for_good_and_writes_nothing(
    store: PostgresEventStore, keyring: CustomerKeyring, eraser_pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    first, customer = new_id(), f"cust-{new_id()}"
    await receive(keyring, store, first, customer)
    await close(keyring, store, first, customer)
    assert await erase_customer(eraser_pool, customer, requested_by="dpo", legal_basis="request") == 1
    later = new_id()
    with pytest.raises(ApplicationError) as refused:
        await receive(keyring, store, later, customer)
    assert refused.value.type == "CustomerErased" and refused.value.non_retryable
    assert await store.read(later) == []
    live = "SELECT count(*) FROM complaint_customer_keys WHERE customer_id = $1 AND erased_at IS NULL"
    assert await admin.fetchval(live, customer) == 0
    # Not even through the key function itself.
    async with keyring.pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError, match="was erased") as error:
            await conn.fetch("SELECT * FROM complaint_customer_key($1, 'k-new', '\\x00')", customer)
    assert error.value.sqlstate == "CE010"
    # A key made for them after their erasure (before this rule) is not used either.
    await admin.execute("INSERT INTO complaint_customer_keys (key_id, customer_id, wrapped_key) VALUES ($1, $2, $3)",
                        "k-late", customer, b"\x00" * 60)
    with pytest.raises(ApplicationError, match="was erased"):
        await receive(keyring, store, later, customer)
    # What carries nothing personal needs no key, and is not refused.
    await append(keyring, store, first, customer, [ev.SlaWarningRaised(kind=DeadlineKind.final_response, due_at=NOW)])


# --- (d) no erasure from under an open complaint -------------------------------------------------------------


def cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(app, args, env=env)


async def test_a_customer_with_an_open_complaint_is_not_erased_until_it_is_closed(
    database: Postgres, store: PostgresEventStore, keyring: CustomerKeyring, eraser_pool: asyncpg.Pool,
    admin: asyncpg.Connection,
) -> None:
    customer = f"cust-{new_id()}"
    done, still_open = new_id(), new_id()
    await receive(keyring, store, done, customer)
    await close(keyring, store, done, customer)
    await receive(keyring, store, still_open, customer)
    with pytest.raises(OpenComplaints, match=f"open complaints \\({still_open}\\)"):
        await erase_customer(eraser_pool, customer, requested_by="dpo", legal_basis="request")
    env = {"DATABASE_ERASER_URL": database.eraser_url}
    args = ["erase-customer", customer, "--requested-by", "dpo:rina", "--legal-basis", "UU PDP art. 8", "--yes"]
    outcome = await asyncio.to_thread(cli, args, env)
    assert outcome.exit_code == 1 and "refused" in outcome.output and still_open in outcome.output, outcome.output
    assert await admin.fetchval("SELECT count(*) FROM complaint_erasures WHERE customer_id = $1", customer) == 0
    assert await admin.fetchval("SELECT count(*) FROM complaint_customer_keys WHERE customer_id = $1"
                                " AND erased_at IS NULL", customer) == 1
    await close(keyring, store, still_open, customer)
    outcome = await asyncio.to_thread(cli, args, env)
    assert outcome.exit_code == 0 and "1 key(s) destroyed" in outcome.output, outcome.output


# --- (f) master key rotation ---------------------------------------------------------------------------------


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


async def legacy_key(pool: asyncpg.Pool, customer: str, master: bytes) -> str:
    """A customer key wrapped as before master key ids: nonce and ciphertext only."""
    key_id, key, nonce = secrets.token_hex(8), AESGCMSIV.generate_key(256), secrets.token_bytes(12)
    wrapped = nonce + AESGCM(master).encrypt(nonce, key, key_id.encode())
    async with pool.acquire() as conn:
        await conn.fetch("SELECT * FROM complaint_customer_key($1, $2, $3)", customer, key_id, wrapped)
    return key_id


async def test_the_master_key_rotates_and_what_was_sealed_before_still_opens_without_the_old_key(
    database: Postgres, store: PostgresEventStore, app_pool: asyncpg.Pool, eraser_pool: asyncpg.Pool,
    admin: asyncpg.Connection,
) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    before = CustomerKeyring(app_pool, MasterKeys.of(old))
    legacy_customer, customer, erased = (f"cust-{new_id()}" for _ in range(3))
    await legacy_key(app_pool, legacy_customer, old)
    sealed = {}
    for who in (legacy_customer, customer, erased):
        cid = new_id()
        sealed[cid] = (who, await receive(before, store, cid, who))
        await close(before, store, cid, who)
    await erase_customer(eraser_pool, erased, requested_by="dpo", legal_basis="request")

    env = {"DATABASE_ERASER_URL": database.eraser_url, MASTER_KEY_ENV: f"{b64(old)}, {b64(new)}"}
    outcome = await asyncio.to_thread(cli, ["rotate-master-key"], env)
    assert outcome.exit_code == 0, outcome.output
    assert "2 key(s) re-wrapped" in outcome.output
    rows = await admin.fetch("SELECT customer_id, wrapped_key FROM complaint_customer_keys")
    newest = MasterKeys.of(new).newest[0]
    assert {r["customer_id"]: CustomerKeyring.wrapped_by(r["wrapped_key"]) if r["wrapped_key"] else None
            for r in rows} == {legacy_customer: newest, customer: newest, erased: None}

    # Old key removed from the configuration: everything sealed before opens, the erased stays erased.
    after = CustomerKeyring(app_pool, MasterKeys.of(new))
    opener = await after.opener()
    for cid, (who, records) in sealed.items():
        stored = await store.read(cid)
        opened = open_payload(stored[0].type, stored[0].payload, cid, 1, opener)
        assert opened["customer_name"] == (ERASED if who == erased else f"Siti {MARK}")
        if who != erased:
            # Same data key: a retried append after the rotation seals to the same bytes.
            again = await ActivityEnvironment().run(
                EventLogActivities(store, after).append_events,
                append_request(cid, who, ChainHead(), decide.receive(intake(cid, who), NOW, None)))
            assert [r.hash for r in again.records] == [r.hash for r in records]
    # A worker still holding only the old key cannot open what is re-wrapped: roll the new key out first.
    with pytest.raises(KeyUnavailableError):
        await before.key_for(customer)

    # Again: nothing to do. Only the eraser role may re-wrap, and never a destroyed key.
    assert (await after.rotate(eraser_pool)).rewrapped == 0
    for role in ("complaints_app", "complaints_sealer"):
        conn = await asyncpg.connect(database.url(role))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval("SELECT rewrap_complaint_customer_key('k', '\\x00', '\\x00')")
        finally:
            await conn.close()
    erased_key = await admin.fetchval("SELECT key_id FROM complaint_customer_keys WHERE customer_id = $1", erased)
    async with eraser_pool.acquire() as conn:
        assert not await conn.fetchval("SELECT rewrap_complaint_customer_key($1, $2, $3)", erased_key, b"\x00" * 60,
                                       b"\x01" * 80)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="only be destroyed"):
        await admin.execute("UPDATE complaint_customer_keys SET wrapped_key = '\\x00' WHERE customer_id = $1",
                            customer)


def test_several_master_keys_are_listed_newest_last() -> None:
    from eventlog.keys import master_key_from

    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    keys = master_key_from(f"{b64(old)},{b64(new)}")
    assert keys.newest[1] == new and keys.get(MasterKeys.of(old).newest[0]) == old
    assert master_key_from(b64(old)) == MasterKeys.of(old)
    with pytest.raises(SystemExit, match="32 bytes"):
        master_key_from(f"{b64(old)},{b64(b'short')}")


# --- 11: a sealed field that does not open is a break ----------------------------------------------------------


async def test_a_tampered_or_made_up_sealed_field_is_a_break_and_only_a_destroyed_key_reads_erased(
    store: PostgresEventStore, keyring: CustomerKeyring, eraser_pool: asyncpg.Pool
) -> None:
    cid, customer = new_id(), f"cust-{new_id()}"
    received = await receive(keyring, store, cid, customer)
    description = received[0].payload["description"]
    flipped = description[:-2] + ("A" if description[-2] != "A" else "B") + description[-1]
    forged = [
        {"text": f"{SEALED_PREFIX}{secrets.token_hex(8)}:{description.rpartition(':')[2]}"},  # made-up key id
        {"text": description},  # moved from another place
        {"text": flipped},  # altered
    ]
    # Written through the append function, so the chain itself verifies: only the fields are wrong.
    drafts = [Draft(type="MessageLogged", schema_version=1, actor="agent:mallory",
                    payload={"sender": "agent", "channel": "email", "at": "2026-11-24T09:00:00Z", **f})
              for f in forged]
    await store.append(chain(received[-1].head, cid, NOW, drafts))
    story = timeline_from_records(cid, await store.read(cid), await keyring.opener())
    first_forged = received[-1].sequence + 1
    assert [(b.sequence, b.kind) for b in story.breaks] == [
        (first_forged, "unknown_key"), (first_forged + 1, "sealed_field_tampered"),
        (first_forged + 2, "sealed_field_tampered")]
    assert not story.verified
    assert [e.said for e in story.entries if e.said is not None] == [UNREADABLE] * 3
    render_text(story, Console(record=True, width=160))  # and it renders, no traceback

    await close(keyring, store, cid, customer)
    await erase_customer(eraser_pool, customer, requested_by="dpo", legal_basis="request")
    story = timeline_from_records(cid, await store.read(cid), await keyring.opener())
    # Destroyed: lawful "[erased]", no break. Never issued: still a break.
    assert "(" + ERASED + ")" in story.entries[0].text and story.subject == ERASED
    assert [(b.sequence, b.kind) for b in story.breaks] == [(first_forged, "unknown_key")]
    assert [e.said for e in story.entries if e.said is not None] == [UNREADABLE, ERASED, ERASED]
