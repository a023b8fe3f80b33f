"""Replies come back into the complaint, for real: the customer's mail program sends its reply by SMTP to the
embedded stack's mail server, which files it in its Maildir; the gateway reads it from there and keeps it in
its complaint, verbatim and sealed, with its Message-ID, as the customer. A reply that proves no complaint
(no token, a forged, altered or expired one, another complaint's thread) is kept nowhere."""

from __future__ import annotations

import mailbox
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import pytest

from customer.inbound import Receiver, parse
from domain.principals import RecordedActor
from identity import reply_tokens
from settings import MailSettings
from tests.customer.conftest import CustomerSide, Data
from tests.principals import GATEWAY
from workflows.complaint import ComplaintWorkflow

TEXT = ("Terima kasih, tapi paketnya masih belum sampai.\n\nNomor resi: JNE-88123 — “tolong dicek”.\n\n"
        "> Halo Bu Dewi,\n> Keluhan Anda sudah kami terima.\n")


def reply_to(original: EmailMessage, text: str = TEXT, *, to: str | None = None, in_reply_to: bool = True,
             references: list[str] | None = None) -> EmailMessage:
    """A reply as a mail program writes it: to the Reply-To, threaded under the original."""
    message = EmailMessage()
    message["From"] = str(original["To"])
    message["To"] = to or str(original["Reply-To"])
    message["Subject"] = "Re: " + str(original["Subject"])
    message["Message-ID"] = make_msgid(domain="mail.contoh.co.id")
    if in_reply_to:
        message["In-Reply-To"] = str(original["Message-ID"])
    message["References"] = " ".join(references if references is not None else [str(original["Message-ID"])])
    message.set_content(text)
    return message


def send(side: CustomerSide, message: EmailMessage) -> None:
    with smtplib.SMTP(side.mail.host, side.mail.port, timeout=10) as smtp:
        smtp.send_message(message)


async def logged(side: CustomerSide, cid: str) -> list[dict[str, Any]]:
    return [p for p in await side.drive.opened(cid) if "sender" in p and "channel" in p]


def flags(side: CustomerSide) -> dict[str, str]:
    """Message-ID -> Maildir flags of every reply the box holds (S seen: handled; F flagged: refused)."""
    box = mailbox.Maildir(side.mail.maildir, factory=None, create=False)
    return {str(m["Message-ID"]): m.get_flags() for m in (box.get_message(k) for k in box.keys())
            if "Re:" in str(m["Subject"])}


def copies(side: CustomerSide, message_id: str) -> list[str]:
    """The flags of every copy of one message in the box."""
    box = mailbox.Maildir(side.mail.maildir, factory=None, create=False)
    return sorted(m.get_flags() for m in (box.get_message(k) for k in box.keys()) if m["Message-ID"] == message_id)


async def handled(side: CustomerSide, message_id: str, timeout: float = 15) -> str:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "S" in flags(side).get(message_id, ""):
            return flags(side)[message_id]
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{message_id} was not handled")


async def test_a_reply_is_kept_verbatim_in_its_complaint_as_the_customer_threaded_to_our_message(
        customer_side: CustomerSide, intake_data: Data) -> None:
    side = customer_side
    data = intake_data("unanswered-letter.json")
    cid = await side.drive.submit(data)
    ack = await side.received(cid, "acknowledgement")
    reply = reply_to(ack)
    send(side, reply)

    state = await side.drive.wait(cid, lambda s: reply["Message-ID"] in s.thread)
    assert await handled(side, reply["Message-ID"]) == "S"
    [kept] = await logged(side, cid)
    assert kept["sender"] == "customer" and kept["channel"] == "email"
    assert kept["text"] == TEXT.strip()  # verbatim: the quoted part, the curly quotes, the line breaks
    assert kept["message_id"] == reply["Message-ID"] and kept["in_reply_to"] == ack["Message-ID"]
    [record] = [r for r in await side.drive.store.read(cid) if r.type == "MessageLogged"]
    assert record.payload["text"].startswith("sealed:")  # personal: sealed with the customer's key at rest
    actor = RecordedActor.parse(record.actor)
    assert actor.name == f"customer:{data['customer']['id']}" and actor.issuer == GATEWAY.issuer
    assert state.thread[-1] == reply["Message-ID"]  # our next message threads under the customer's reply
    await side.drive.witnesses_agree(cid)

    # The same reply again (a copy, a poll interrupted before its mark): kept once.
    send(side, reply)
    await asyncio_sleep_until(lambda: copies(side, reply["Message-ID"]) == ["S", "S"])
    assert len(await logged(side, cid)) == 1
    await side.drive.send(cid, ComplaintWorkflow.withdraw)
    await side.drive.save_history(cid, "reply_threaded_and_kept_once")


async def test_a_reply_threaded_by_references_only_is_kept_under_the_message_it_names(
        customer_side: CustomerSide, intake_data: Data) -> None:
    side = customer_side
    cid = await side.drive.submit(intake_data("unanswered-letter.json"))
    ack = await side.received(cid, "acknowledgement")
    reply = reply_to(ack, "Baik, saya tunggu.", in_reply_to=False,
                     references=["<older.thread@mail.contoh.co.id>", str(ack["Message-ID"])])
    send(side, reply)
    await side.drive.wait(cid, lambda s: reply["Message-ID"] in s.thread)
    [kept] = await logged(side, cid)
    assert kept["in_reply_to"] == ack["Message-ID"] and kept["text"] == "Baik, saya tunggu."
    await side.drive.send(cid, ComplaintWorkflow.withdraw)


def forged_addresses(cid: str, good: str) -> dict[str, str]:
    """What an attacker, or a mistaken mail system, would send a reply to."""
    key = MailSettings().reply_key_bytes()
    token = reply_tokens.token_from_address(good)
    assert token is not None
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    expired = reply_tokens.sign(cid, key, issued=datetime.now(UTC) - timedelta(days=30), ttl=timedelta(days=1))
    other_key = reply_tokens.sign(cid, b"somebody-elses-reply-key-000000", issued=datetime.now(UTC))
    return {
        "no token": "complaints@complaints.localhost",
        "altered token": f"complaints+{flipped}@complaints.localhost",
        "expired token": f"complaints+{expired}@complaints.localhost",
        "another key's token": f"complaints+{other_key}@complaints.localhost",
        "garbage token": "complaints+../../etc/passwd@complaints.localhost",
    }


async def test_a_reply_that_proves_no_complaint_is_kept_nowhere_and_flagged_for_a_person(
        customer_side: CustomerSide, intake_data: Data) -> None:
    side = customer_side
    cid = await side.drive.submit(intake_data("unanswered-letter.json"))
    other = await side.drive.submit(intake_data("unanswered-letter.json"))
    ack = await side.received(cid, "acknowledgement")
    other_ack = await side.received(other, "acknowledgement")
    before = {c: len(await side.drive.store.read(c)) for c in (cid, other)}

    forged = [reply_to(ack, f"forged: {why}", to=address) for why, address in
              forged_addresses(cid, str(ack["Reply-To"])).items()]
    # A genuine token of one complaint, threaded under another complaint's message: refused, not guessed.
    forged.append(reply_to(ack, "crossed threads", references=[str(other_ack["Message-ID"])], in_reply_to=False))
    for message in forged:
        send(side, message)
    for message in forged:
        assert await handled(side, message["Message-ID"]) == "FS"  # seen and flagged: refused
    assert {c: len(await side.drive.store.read(c)) for c in (cid, other)} == before
    assert await logged(side, cid) == [] and await logged(side, other) == []
    for c in (cid, other):
        await side.drive.send(c, ComplaintWorkflow.withdraw)


async def test_the_inbound_smtp_route_refuses_a_forged_address_at_rcpt_and_files_a_genuine_reply(
        customer_side: CustomerSide, intake_data: Data) -> None:
    """Production's inbound route (COMPLAINTS_INBOUND=smtp://...): the gateway is the MX for reply addresses."""
    from customer.inbound import start_inbound_route

    side = customer_side
    cid = await side.drive.submit(intake_data("unanswered-letter.json"))
    ack = await side.received(cid, "acknowledgement")
    route = start_inbound_route(side.gateway.receiver, "127.0.0.1", 0, hostname="complaints.localhost")
    try:
        forged = forged_addresses(cid, str(ack["Reply-To"]))["altered token"]
        smtp = aiosmtplib.SMTP(hostname=route.hostname, port=route.port, timeout=10)
        await smtp.connect()
        try:
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await smtp.sendmail("dewi@contoh.co.id", [forged], reply_to(ack, to=forged).as_bytes())
            assert refused.value.recipients[0].code == 550
            reply = reply_to(ack, "Lewat jalur masuk SMTP.")
            _errors, answer = await smtp.sendmail("dewi@contoh.co.id", [str(ack["Reply-To"])], reply.as_bytes())
            assert answer.startswith("2.0.0 Filed")
        finally:
            await smtp.quit()
    finally:
        route.stop()
    await side.drive.wait(cid, lambda s: reply["Message-ID"] in s.thread)
    assert [m["text"] for m in await logged(side, cid)] == ["Lewat jalur masuk SMTP."]
    await side.drive.send(cid, ComplaintWorkflow.withdraw)


def test_a_reply_is_read_from_its_envelope_and_threading_headers_and_an_html_only_one_as_text() -> None:
    raw = (b"Delivered-To: complaints+abc234@complaints.localhost\r\nFrom: a@b.example\r\n"
           b"To: Customer care <complaints@complaints.localhost>\r\nSubject: Re: x\r\n"
           b"Message-ID: <m1@b.example>\r\nIn-Reply-To: <C-1.ack-1@complaints.localhost>\r\n"
           b"References: <a@b> <C-1.ack-1@complaints.localhost>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Halo<br>kak</p><script>alert(1)</script>\x07")
    reply = parse(raw)
    assert reply.token == "abc234" and reply.message_id == "<m1@b.example>"
    assert reply.in_reply_to == "<C-1.ack-1@complaints.localhost>"
    assert reply.references == ("<a@b>", "<C-1.ack-1@complaints.localhost>")
    assert reply.text == "Halo\nkak"  # no markup, no script, no control character
    assert Receiver._refused  # the refusal path logs no address (tests/e2e/test_logs.py checks the log lines)


async def asyncio_sleep_until(done: Any, timeout: float = 15) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)
