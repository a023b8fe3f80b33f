"""The timeline tells the story from the log alone, verbatim where people spoke, and says when it is broken."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from rich.console import Console
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from audit.timeline import build_timeline, render_html, render_json, render_text
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from eventlog.keys import CustomerKeyring, erase_customer, master_key
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from workflows.complaint import ComplaintWorkflow

HOSTILE = "<script>alert(1)</script> '; DROP TABLE complaint_events; --\nsecond line"


@pytest.fixture
def drive(time_skipping: WorkflowEnvironment, store: PostgresEventStore, worker: Worker, task_queue: str) -> Driver:
    return Driver(time_skipping.client, store, task_queue)


async def story_of(drive: Driver, cid: str) -> Any:
    opener = await CustomerKeyring(drive.store.pool, master_key()).opener()
    return await build_timeline(drive.store, opener, cid)


async def full_path(drive: Driver, data: dict[str, Any]) -> str:
    cid = await drive.submit(data)
    await drive.send(cid, ComplaintWorkflow.move_offline, rung="email", detail="siti@example.co.id", by="agent:ana")
    await drive.send(cid, ComplaintWorkflow.log_message, sender="customer", channel="email", text=HOSTILE,
                     by="customer")
    await drive.send(cid, ComplaintWorkflow.log_message, sender="agent", channel="email", text="Kami cek dulu, Bu.",
                     by="agent:ana")
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="B")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=5, comment="Terima kasih")
    await drive.finished(cid)
    return cid


async def test_the_timeline_tells_the_whole_story_in_order(drive: Driver, intake_data: Callable[..., Any]) -> None:
    data = intake_data()
    cid = await full_path(drive, data)
    story = await story_of(drive, cid)
    stored = await drive.store.read(cid)
    assert story.verified and [e.sequence for e in story.entries] == [r.sequence for r in stored]
    assert [e.hash for e in story.entries] == [r.hash for r in stored]
    texts = [e.text for e in story.entries]
    assert texts[0].startswith("Complaint received by social from customer cust-4471 (Siti Rahmawati)")
    assert any(t.startswith("Asked the customer to move from public to email") for t in texts)
    assert any(t.startswith("Assessed valid, root cause third party") for t in texts)
    assert "The customer chose remedy B" in texts
    assert texts[-1] == "Closed: resolved, satisfaction 5/5"
    said = [e.said for e in story.entries if e.type == "MessageLogged"]
    assert said == [HOSTILE, "Kami cek dulu, Bu."]  # verbatim, newline and all
    # The whole conversation: what we sent (or handed to an agent to deliver) is there too, word for word.
    sent = [e for e in story.entries if e.type in ("MessageSent", "MessageHandedToAgent")]
    assert sent and all(e.said and "Siti" in e.said for e in sent)
    assert story.entries[0].business_days == 0 and all(e.business_days >= 0 for e in story.entries)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d \+07:00", story.entries[0].local_time)  # Jakarta time
    assert [(d.kind, d.status) for d in story.deadlines] == [
        ("acknowledgement", "met in time"), ("assessment", "met in time"), ("final response", "met in time")]
    # Who: the backend that submitted it, then the agents, each as the token named them.
    actors = [e.actor for e in story.entries]
    assert actors[0] == "intake:suite-backend (https://id.complaints.test)"
    assert "agent:ana (https://id.complaints.test)" in actors and "system" in actors
    # Check the JSON round-trips, and the terminal rendering shows the hostile text as text.
    assert json.loads(json.dumps(render_json(story)))["entries"][0]["hash"] == stored[0].hash
    console = Console(record=True, width=160)
    render_text(story, console)
    assert "<script>alert(1)</script>" in console.export_text()


async def test_the_html_is_self_contained_escaped_and_carries_the_hashes(drive: Driver,
                                                                        intake_data: Callable[..., Any]) -> None:
    cid = await full_path(drive, intake_data())
    story = await story_of(drive, cid)
    page = render_html(story)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#x27;; DROP TABLE complaint_events; --" in page
    assert not re.search(r"(src|href)=[\"']?https?://", page) and "@import" not in page and "<link" not in page
    assert all(e.hash in page for e in story.entries)
    assert "verified" in page and "@media print" in page


async def test_a_tampered_log_shows_a_broken_badge_naming_the_sequence(drive: Driver, intake_data: Callable[..., Any],
                                                                      admin: asyncpg.Connection) -> None:
    cid = await full_path(drive, intake_data())
    async with admin.transaction():
        await admin.execute("ALTER TABLE complaint_events DISABLE TRIGGER complaint_events_append_only")
        await admin.execute("UPDATE complaint_events SET actor = 'agent:mallory' WHERE complaint_id = $1 AND "
                            "sequence = 5", cid)
        await admin.execute("ALTER TABLE complaint_events ENABLE TRIGGER complaint_events_append_only")
    story = await story_of(drive, cid)
    assert not story.verified and [(b.sequence, b.kind) for b in story.breaks] == [(5, "hash_mismatch")]
    assert '<span class="badge bad">broken</span>' in render_html(story)


async def test_after_erasure_personal_fields_read_erased_and_the_story_still_verifies(
    drive: Driver, intake_data: Callable[..., Any], eraser_pool: asyncpg.Pool
) -> None:
    data = intake_data()
    cid = await full_path(drive, data)
    before = await story_of(drive, cid)
    assert await erase_customer(eraser_pool, data["customer"]["id"], requested_by="dpo", legal_basis="request") == 1
    after = await story_of(drive, cid)
    assert after.verified and [e.hash for e in after.entries] == [e.hash for e in before.entries]
    assert "(Siti Rahmawati)" not in after.entries[0].text and "([erased])" in after.entries[0].text
    assert {e.said for e in after.entries if e.said is not None} == {"[erased]"}
    assert "Siti" not in render_html(after)
    assert after.deadlines == before.deadlines
