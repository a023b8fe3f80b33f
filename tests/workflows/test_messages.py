"""What the customer is told is really sent, in their language (a real Temporal server, a real PostgreSQL, the
embedded stack's real SMTP server): the acknowledgement arrives by email and meets its deadline when sent,
the apology lists the remedies, the follow-up comes on its day, a refused or unreachable relay is recorded and
escalated, a retried send is the same message, and a complaint with no email address hands its messages to
an agent, who delivers them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities import messages as msg
from dev.mailserver import MailServer
from domain.personal import is_sealed
from domain.summary import details
from domain.vocabulary import DeadlineKind, Stage
from eventlog import PostgresEventStore
from identity.reply_tokens import verify
from settings import MailSettings
from tests.workflows.driver import Driver
from tests.workflows.test_paths import valid
from worker import build_worker
from workflows.complaint import ComplaintWorkflow

Data = Callable[..., dict[str, Any]]


@pytest.fixture
async def drive(time_skipping: WorkflowEnvironment, app_pool: asyncpg.Pool, store: PostgresEventStore,
                task_queue: str, mail_server: MailServer) -> AsyncIterator[Driver]:
    async with build_worker(time_skipping.client, app_pool, task_queue,
                            run_options=msg.RunOptions(delivery_attempts=3)):
        yield Driver(time_skipping.client, store, task_queue)


def to(server: MailServer, address: str) -> list[EmailMessage]:
    return [m for m in server.messages() if m["To"] and address in m["To"]]


async def sent(drive: Driver, cid: str, template: str) -> dict[str, Any]:
    state = await drive.wait(cid, lambda s: not any(o.template == template for o in s.outbox))
    assert state is not None
    found = [p for p in await drive.opened(cid) if p.get("template") == template]
    assert found, f"no message event for {template}"
    return found[-1]


async def test_an_indonesian_complaint_is_acknowledged_by_an_indonesian_email(
        drive: Driver, intake_data: Data, mail_server: MailServer) -> None:
    cid = await drive.submit(intake_data("unanswered-letter.json"))  # ID, email, no language given
    message = await sent(drive, cid, "acknowledgement")
    [mail] = [m for m in to(mail_server, "dewi.lestari@example.co.id") if m["Message-ID"] == message["message_id"]]
    assert message["language"] == "id" and message["channel"] == "email" and mail["Content-Language"] == "id"
    assert "Terima kasih" in mail.get_content() and cid in mail.get_content()
    assert message["recipient"] == "dewi.lestari@example.co.id"
    assert message["body"].strip() == mail.get_content().strip() and message["subject"] == mail["Subject"]
    token = mail["Reply-To"].split("+", 1)[1].split("@", 1)[0]  # complaints+<token>@domain
    assert verify(token, MailSettings().reply_key_bytes(), now=datetime.now(UTC)) == cid
    # Met when sent, not when decided: at the MessageSent, which the log sealed (its recipient is personal).
    state = await drive.state(cid)
    ack = state.deadline(DeadlineKind.acknowledgement)
    assert ack is not None and ack.met_at is not None and ack.met_at >= state.acknowledged_at  # type: ignore[operator]
    [raw] = [r for r in await drive.store.read(cid) if r.type == "MessageSent"
             and r.payload["template"] == "acknowledgement"]
    assert all(is_sealed(raw.payload[f]) for f in ("recipient", "subject", "body"))
    await drive.witnesses_agree(cid)
    await drive.send(cid, ComplaintWorkflow.withdraw)


async def test_an_english_customer_gets_the_apology_with_every_option_and_the_follow_up_on_its_day(
        drive: Driver, intake_data: Data, mail_server: MailServer, time_skipping: WorkflowEnvironment) -> None:
    cid = await drive.submit(intake_data("faulty-kettle.json"))  # GB
    await sent(drive, cid, "acknowledgement")
    offered = await drive.send(cid, ComplaintWorkflow.assess, **valid())
    apology = await sent(drive, cid, "apology")
    assert apology["language"] == "en" and "Thank you" in apology["body"]
    assert offered.offer is not None
    for option in offered.offer.options:
        assert f"{option.id}." in apology["body"]
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    waiting = await drive.stage(cid, Stage.awaiting_follow_up)
    assert waiting.follow_up is not None and any(o.template == "follow_up" for o in waiting.outbox)  # not yet
    await time_skipping.sleep(waiting.follow_up.at - await time_skipping.get_current_time() + timedelta(minutes=5))
    follow_up = await sent(drive, cid, "follow_up")  # on its day
    mails = to(mail_server, "oliver.hughes@example.co.uk")
    assert [m["Message-ID"] for m in mails][-1] == follow_up["message_id"]
    assert mails[-1]["In-Reply-To"] == apology["message_id"]  # threaded after the last message sent
    assert mails[0]["Message-ID"] in mails[-1]["References"]
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=5)
    await drive.finished(cid)
    await drive.witnesses_agree(cid)
    await drive.save_history(cid, "messages_sent_valid_path")


async def test_a_refusing_relay_is_recorded_and_a_supervisor_told_and_the_complaint_goes_on(
        drive: Driver, intake_data: Data, mail_server: MailServer) -> None:
    mail_server.refuse_next(10)
    cid = await drive.submit(intake_data("wrong-size.json"))
    failed = await sent(drive, cid, "acknowledgement")
    assert "reason" in failed and "MessageDeliveryFailed" in await drive.types(cid, conversation=True)
    state = await drive.state(cid)
    assert state.escalations  # a supervisor is told why (the reason is sealed in the log: it may name the address)
    assert any("acknowledgement could not be delivered" in str(p.get("reason")) for p in await drive.opened(cid))
    ack = state.deadline(DeadlineKind.acknowledgement)
    assert ack is not None and ack.met_at is None  # nobody was told: not acknowledged
    mail_server.refuse_next(0)
    await drive.send(cid, ComplaintWorkflow.assess, **valid())  # the complaint goes on
    await sent(drive, cid, "apology")
    await drive.witnesses_agree(cid)
    await drive.send(cid, ComplaintWorkflow.withdraw)


async def test_a_send_retried_after_a_lost_reply_is_one_message_event_and_the_same_message_id(
        drive: Driver, intake_data: Data, mail_server: MailServer) -> None:
    mail_server.defer_after_storing_next(1)  # stored, then "451": the sender cannot know it arrived
    cid = await drive.submit(intake_data("unanswered-letter.json"))
    message = await sent(drive, cid, "acknowledgement")
    copies = [m for m in to(mail_server, "dewi.lestari@example.co.id") if m["Message-ID"] == message["message_id"]]
    assert len(copies) == 2  # at least once on the wire, recognisably the same message
    acknowledgements = [p for p in await drive.opened(cid) if p.get("template") == "acknowledgement"]
    assert len(acknowledgements) == 1 and acknowledgements[0]["message_id"] == message["message_id"]
    await drive.witnesses_agree(cid)
    await drive.send(cid, ComplaintWorkflow.withdraw)


async def test_with_no_email_address_an_agent_is_handed_the_message_and_delivering_it_meets_the_deadline(
        drive: Driver, intake_data: Data, mail_server: MailServer) -> None:
    # A public complaint with only a handle: someone must answer it where it was made.
    cid = await drive.submit(intake_data("late-delivery.json", contact={"handle": "@siti.rahma"}))
    handed = await sent(drive, cid, "acknowledgement")
    assert handed["language"] == "id" and "subject" in handed and "recipient" not in handed
    state = await drive.state(cid)
    assert state.agent_tasks and state.deadline(DeadlineKind.acknowledgement).met_at is None  # type: ignore[union-attr]
    assert mail_server.messages() == []
    assert "**Awaiting an agent:** deliver by public and log it: acknowledgement, move request" in details(state)
    await drive.send(cid, ComplaintWorkflow.log_message, sender="agent", channel="social",
                     text="Replied publicly: thanked them, complaint received, asked for a private channel.")
    state = await drive.state(cid)
    assert state.agent_tasks == ["move_request-2"]  # the acknowledgement, delivered; the move request still to do
    assert state.deadline(DeadlineKind.acknowledgement).met_at is not None  # type: ignore[union-attr]
    await drive.witnesses_agree(cid)
    await drive.send(cid, ComplaintWorkflow.withdraw)


async def test_each_move_request_asks_for_its_own_rung(drive: Driver, intake_data: Data,
                                                        mail_server: MailServer) -> None:
    cid = await drive.submit(intake_data("late-delivery.json"))  # public: asked to move to email
    await drive.send(cid, ComplaintWorkflow.move_offline, rung="email", detail="siti.rahma@example.co.id")
    requests = [p for p in await drive.opened(cid) if p.get("template") == "move_request"]
    asked = [e for e in await drive.opened(cid) if "to_rung" in e]
    assert [e["to_rung"] for e in asked] == ["email", "phone"] and len(requests) == 2
    assert requests[0]["subject"] != requests[1]["subject"]  # "continue by email", then "may we call you?"
    await drive.send(cid, ComplaintWorkflow.withdraw)
