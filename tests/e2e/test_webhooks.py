"""Signed webhooks against a real local HTTP receiver and a real PostgreSQL: the receiver refuses, then times
out, then recovers; every event is delivered, signed, in order per complaint, none lost, and a duplicate only
ever with the same delivery id. What failed past its budget is parked, shown by `webhook status`, and
delivered by `webhook replay`. The doors: what a caller may subscribe, and what a forged delivery looks like."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import webhooks
from domain.personal import is_sealed
from eventlog import PostgresEventStore
from tests.eventlog.contract import new_id, records
from tests.http_receiver import receiving
from tests.workflows.driver import Driver
from webhooks.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from workflows.complaint import ComplaintWorkflow

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Receiver:
    """A backend: answers 503 to the first ``refuse`` requests, then takes ``hang`` seconds over each of the
    next ``hangs`` (longer than the sender waits; it still records them), then 200. Keeps every request it
    accepted, and checks each signature with the secret it was given."""

    secret: str = ""
    refuse: int = 0
    hangs: int = 0
    hang: float = 1.5
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    forged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: Any, raw: bytes) -> int:
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                self.refused += 1
                return 503
            slow = self.hangs > 0
            self.hangs -= slow
        if slow:
            time.sleep(self.hang)
        if not webhooks.verify(self.secret, headers.get(TIMESTAMP_HEADER, ""), raw, headers.get(SIGNATURE_HEADER, ""),
                               time.time()):
            with self.lock:
                self.forged += 1
            return 401
        with self.lock:
            self.accepted.append({"delivery": headers[DELIVERY_HEADER], **json.loads(raw)})
        return 200


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()
    with receiving(state.handle) as base:
        yield state, f"{base}/hooks"


async def test_a_backend_that_refuses_times_out_and_recovers_loses_no_event(
        receiver: tuple[Receiver, str], store: PostgresEventStore, app_pool: asyncpg.Pool, database: Any) -> None:
    backend, url = receiver
    await store.append(records(new_id(), "before"))  # appended before the subscription: not delivered
    webhook = await webhooks.add(app_pool, url)
    backend.secret = webhook.secret
    ids = [new_id() for _ in range(3)]
    for cid in ids:
        await store.append(records(cid, "one", "two", "three"))
    expected = [(p.record.complaint_id, p.record.sequence, p.position) for p in await store.read_all(limit=1000)][1:]

    # The backend is down for longer than the budget of the first event (3 attempts), then slow, then well.
    backend.refuse, backend.hangs = 3, 2
    deliverer = webhooks.Deliverer(app_pool, webhook, attempts=3, backoff=0.01, timeout=0.5)
    handled = await deliverer.subscription().catch_up()
    assert handled == len(expected)
    waiting = await webhooks.parked(app_pool, webhook.id)
    # The first complaint's first event failed past its budget; its later events wait behind it, in order.
    assert [p["position"] for p in waiting] == [pos for cid, _, pos in expected if cid == ids[0]]
    assert waiting[0]["attempts"] == 3 and waiting[0]["last_error"] == "HTTP 503"
    shown = status(database, webhook.id)
    assert shown["parked"] == 3 and shown["behind"] == 0 and shown["last_error"]

    # Repaired: replay delivers what was parked, oldest first.
    assert cli(database, "webhook", "replay", webhook.id).returncode == 0
    assert await webhooks.parked(app_pool, webhook.id) == []

    # Every event, each delivery id naming one event; duplicates (the slow answers the sender gave up on,
    # then sent again) only ever with the same delivery id; every complaint in order.
    for _ in range(100):  # the slow answers are recorded when the backend finishes them
        if len(backend.accepted) >= len(expected) + 2:
            break
        await asyncio.sleep(0.1)
    seen = {(d["complaint_id"], d["sequence"], d["position"]) for d in backend.accepted}
    assert seen == set(expected)
    for d in backend.accepted:
        assert d["delivery"] == d["delivery_id"] == f"{webhook.id}:{d['position']}"
        assert d["event_id"] == f"{d['complaint_id']}/{d['sequence']}"
    assert len(backend.accepted) - len(seen) == 2  # the two slow ones, delivered twice
    for cid in ids:
        firsts = []
        for d in backend.accepted:
            if d["complaint_id"] == cid and d["sequence"] not in firsts:
                firsts.append(d["sequence"])
        assert firsts == [1, 2, 3], cid
    assert backend.forged == 0 and backend.refused == 3


async def test_only_the_events_asked_for_are_delivered_with_personal_fields_sealed(
        receiver: tuple[Receiver, str], store: PostgresEventStore, app_pool: asyncpg.Pool) -> None:
    backend, url = receiver
    webhook = await webhooks.add(app_pool, url, ["ComplaintWithdrawn"])
    backend.secret = webhook.secret
    await store.append(records(new_id(), "one", "two"))  # the contract's records are MessageLogged
    await webhooks.Deliverer(app_pool, webhook, attempts=1).subscription().catch_up()
    assert backend.accepted == []


def test_a_forged_or_stale_delivery_does_not_verify() -> None:
    body = b'{"type":"ComplaintClosed"}'
    now = int(time.time())
    good = webhooks.signature("s3cret", now, body)
    assert webhooks.verify("s3cret", str(now), body, good, now)
    assert not webhooks.verify("other", str(now), body, good, now)  # another secret
    assert not webhooks.verify("s3cret", str(now), body + b" ", good, now)  # another body
    assert not webhooks.verify("s3cret", str(now - 3600), body, webhooks.signature("s3cret", now - 3600, body), now)
    assert not webhooks.verify("s3cret", "yesterday", body, good, now)


@pytest.mark.parametrize(("url", "events", "field"), [
    ("file:///etc/passwd", [], "url"),
    ("ftp://example.com/x", [], "url"),
    ("http://user:pw@example.com/x", [], "url"),
    ("https://example.com/hooks", ["NoSuchEvent"], "events"),
])
def test_a_subscription_a_caller_should_not_make_is_refused_and_nothing_stored(
        database: Any, url: str, events: list[str], field: str) -> None:
    done = cli(database, "webhook", "add", url, *[a for e in events for a in ("--event", e)])
    assert done.returncode == 2 and f"{field}:" in done.stderr
    listed = cli(database, "webhook", "list")
    assert listed.returncode == 0 and "wh_" not in listed.stdout


def cli(database: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database.app_url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def status(database: Any, webhook_id: str) -> dict[str, Any]:
    done = cli(database, "webhook", "status", webhook_id)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def test_webhook_run_delivers_as_events_are_appended(
        receiver: tuple[Receiver, str], store: PostgresEventStore, app_pool: asyncpg.Pool) -> None:
    backend, url = receiver
    webhook = await webhooks.add(app_pool, url)
    backend.secret = webhook.secret
    stop = asyncio.Event()
    running = asyncio.create_task(webhooks.run_all(app_pool, stop, refresh_seconds=0.2, attempts=2, backoff=0.01))
    try:
        cid = new_id()
        await store.append(records(cid, "one"))
        for _ in range(100):
            if backend.accepted:
                break
            await asyncio.sleep(0.1)
        assert [(d["complaint_id"], d["sequence"]) for d in backend.accepted] == [(cid, 1)]
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=30)


async def test_a_complaint_driven_end_to_end_reaches_the_backend_signed_in_order_and_sealed(
        receiver: tuple[Receiver, str], time_skipping: WorkflowEnvironment, worker: Worker,
        store: PostgresEventStore, app_pool: asyncpg.Pool, task_queue: str, intake_data: Callable[..., Any]) -> None:
    backend, url = receiver
    webhook = await webhooks.add(app_pool, url)
    backend.secret = webhook.secret
    drive = Driver(time_skipping.client, store, task_queue)
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await drive.finished(cid)
    await webhooks.Deliverer(app_pool, webhook, attempts=2, backoff=0.01).subscription().catch_up()
    logged = await store.read(cid)
    delivered = [d for d in backend.accepted if d["complaint_id"] == cid]
    assert [(d["type"], d["sequence"]) for d in delivered] == [(r.type, r.sequence) for r in logged]
    assert delivered[-1]["type"] == "ComplaintClosed" and backend.forged == 0
    # Personal fields as auditors see them: sealed, exactly as the log holds them.
    received = delivered[0]["payload"]
    assert received == logged[0].payload and any(is_sealed(v) for v in received.values())


async def test_replay_from_a_position_delivers_again_from_there_with_the_same_delivery_ids(
        receiver: tuple[Receiver, str], store: PostgresEventStore, app_pool: asyncpg.Pool, database: Any) -> None:
    backend, url = receiver
    webhook = await webhooks.add(app_pool, url)
    backend.secret = webhook.secret
    cid = new_id()
    await store.append(records(cid, "one", "two", "three"))
    deliverer = webhooks.Deliverer(app_pool, webhook, attempts=1)
    assert await deliverer.subscription().catch_up() == 3
    first = [d["delivery"] for d in backend.accepted]
    second_position = backend.accepted[1]["position"]
    done = cli(database, "webhook", "replay", webhook.id, "--from", str(second_position))
    assert done.returncode == 0, done.stderr
    assert await deliverer.subscription().catch_up() == 2
    assert [d["delivery"] for d in backend.accepted] == first + first[1:]
    refused = cli(database, "webhook", "replay", webhook.id, "--from", "999999999")
    assert refused.returncode == 2 and "from:" in refused.stderr
    assert cli(database, "webhook", "replay", "wh_forged", "--from", "1").returncode == 1
