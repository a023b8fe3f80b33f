"""Mail to customers, for real: EmailChannel talks SMTP (aiosmtplib) to the embedded stack's mail server
(aiosmtpd), which files every message it accepts in a Maildir; the server refuses, defers, or loses its
acknowledgement when told, and `complaints mail` (run as a subprocess) lists what the box holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from activities.channels import (
    DeliveryDeferred,
    DeliveryRefused,
    EmailChannel,
    MailMisconfigured,
    Outbound,
    message_id,
    reply_address,
)
from dev.mailserver import mail_server as serving
from identity import reply_tokens
from settings import MailSettings

ROOT = Path(__file__).parent.parent.parent
DOMAIN = "complaints.localhost"
SUBJECT = "Keluhan Anda kami terima — nomor C-1042"
BODY = ("Halo Bu Siti,\n\nTerima kasih telah menghubungi kami. Kami mohon maaf atas keterlambatan pengiriman "
        "pesanan Anda (8812). Keluhan Anda kami catat dengan nomor C-1042 dan akan kami tanggapi paling lambat "
        "dalam 5 hari kerja.\n\nSalam hangat,\nLayanan Pelanggan — “Toko Sejahtera”\n")
#: RFC 5322 msg-id in its strict form: "<" dot-atom-text "@" dot-atom-text ">".
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
MSG_ID = re.compile(rf"^<{ATEXT}(\.{ATEXT})*@{ATEXT}(\.{ATEXT})*>$")


def outbound(complaint_id: str = "C-1042", key: str = "acknowledgement-1", **changes: Any) -> Outbound:
    fields: dict[str, Any] = {
        "complaint_id": complaint_id, "message_id": message_id(complaint_id, key, DOMAIN),
        "to": "Siti Rahayu <siti.rahayu@contoh.co.id>", "subject": SUBJECT, "body": BODY, "language": "id-ID"}
    return Outbound(**{**fields, **changes})


def reply_key() -> bytes:
    return MailSettings().reply_key_bytes()


async def test_a_message_reaches_the_box_with_every_header_and_its_text_intact(mail_server: Any) -> None:
    first = message_id("C-1042", "acknowledgement-1", DOMAIN)
    earlier = "<CAF=3Dxyz.123@mail.contoh.co.id>"  # the customer's own message, as their mail program named it
    message = outbound(key="assessment-1", in_reply_to=earlier, references=[first, earlier])

    delivered = await EmailChannel().send(message)

    [got] = mail_server.messages()
    assert isinstance(got, EmailMessage)
    assert got["Message-ID"] == message.message_id == "<C-1042.assessment-1@complaints.localhost>"
    assert got["In-Reply-To"] == earlier
    assert got["References"].split() == [first, earlier]
    assert got["Subject"] == SUBJECT
    assert got["To"].addresses[0].addr_spec == "siti.rahayu@contoh.co.id"
    assert got["To"].addresses[0].display_name == "Siti Rahayu"
    assert got["From"].addresses[0].addr_spec == "complaints@complaints.localhost"
    assert got["Delivered-To"] == "siti.rahayu@contoh.co.id"  # the envelope: the server's own record
    assert got["Content-Language"] == "id-ID"
    assert got["X-Complaint-Id"] == "C-1042"
    sent_at = got["Date"].datetime
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 60
    assert got.get_content_type() == "text/plain" and got.get_content_charset() == "utf-8"
    assert got.get_content() == BODY  # every character: em dash, curly quotes, line breaks
    # Replies go to a signed address that names the complaint, whatever case the customer's server keeps.
    reply_to = got["Reply-To"].addresses[0]
    assert reply_to.domain == DOMAIN and len(reply_to.username) <= 64
    token = reply_tokens.token_from_address(reply_to.addr_spec)
    assert token is not None
    assert reply_tokens.verify(token, reply_key(), now=datetime.now(UTC)) == "C-1042"
    assert reply_tokens.verify(token.upper(), reply_key(), now=datetime.now(UTC)) == "C-1042"
    # The relay's queue id ("250 ... queued as <key>"): here, the Maildir's name for the file.
    assert delivered.provider_id in os.listdir(mail_server.maildir / "new")


async def test_a_refusing_server_is_a_permanent_refusal(mail_server: Any) -> None:
    mail_server.refuse_next()
    with pytest.raises(DeliveryRefused, match=r"550"):
        await EmailChannel().send(outbound())
    assert mail_server.messages() == []
    await EmailChannel().send(outbound())  # the next one goes: only the refused one was refused
    assert len(mail_server.messages()) == 1


async def test_a_deferring_server_is_a_transient_failure_and_the_retry_goes(mail_server: Any) -> None:
    mail_server.defer_next(2)
    for _ in range(2):
        with pytest.raises(DeliveryDeferred, match=r"451") as caught:
            await EmailChannel().send(outbound())
        assert not isinstance(caught.value, DeliveryRefused)
    assert mail_server.messages() == []
    await EmailChannel().send(outbound())
    assert [m["Message-ID"] for m in mail_server.messages()] == [outbound().message_id]


async def test_no_server_is_a_transient_failure(tmp_path: Path) -> None:
    with serving(tmp_path / "mail", port=0) as server:
        port = server.port
    settings = MailSettings(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=5, reply_key="k" * 32)
    with pytest.raises(DeliveryDeferred, match=r"(?i)connect"):
        await EmailChannel(settings).send(outbound())


async def test_the_mail_server_in_a_process_of_its_own_files_what_it_takes_and_stops_with_its_block(
        tmp_path: Path) -> None:
    """The bench's relay (dev.mailserver.mail_server_process): a real SMTP server in a child process."""
    from dev.mailserver import mail_server_process, read_maildir

    with mail_server_process(tmp_path / "relay") as (host, port):
        settings = MailSettings(smtp_host=host, smtp_port=port, smtp_timeout=5, reply_key="k" * 32)
        message = outbound()
        await EmailChannel(settings).send(message)
        [(_key, _at, got)] = read_maildir(tmp_path / "relay")
        assert got["Message-ID"] == message.message_id and got["Subject"] == SUBJECT
    with pytest.raises(DeliveryDeferred, match=r"(?i)connect"):  # stopped: nothing listens there any more
        await EmailChannel(settings).send(outbound())


async def test_an_acknowledgement_lost_after_delivery_leaves_two_copies_of_one_message(mail_server: Any) -> None:
    """The server stores the message, then answers 451 (its acknowledgement lost): the sender cannot know and
    retries. The customer gets it twice, as the same message: one Message-ID, which mail programs collapse."""
    message = outbound()
    mail_server.defer_after_storing_next()
    with pytest.raises(DeliveryDeferred):
        await EmailChannel().send(message)
    await EmailChannel().send(message)  # the retry, of the very same Outbound
    copies = mail_server.messages()
    assert len(copies) == 2
    assert {c["Message-ID"] for c in copies} == {message.message_id}
    assert {c["Reply-To"] for c in copies} == {reply_address("C-1042")}  # the same reply address, same day
    assert all(c.get_content() == BODY for c in copies)


async def test_what_cannot_be_written_is_refused_before_anything_is_sent(mail_server: Any) -> None:
    for bad in ({"to": "not an address"}, {"to": "a@b.example, c@d.example"},
                {"to": "x@y.example\r\nBcc: everyone@example.com"}, {"to": "sïti@contoh.co.id"},
                {"subject": "Hello\r\nBcc: everyone@example.com"}, {"language": "Bahasa Indonesia"},
                {"in_reply_to": "no brackets"}, {"references": ["<a@b>", "<c d@e>"]}):
        with pytest.raises(DeliveryRefused, match=r"cannot be written"):
            await EmailChannel().send(outbound(**bad))
    assert mail_server.messages() == []


async def test_a_deployments_own_mistakes_wait_for_the_operator(mail_server: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No reply key, credentials over plaintext to a remote relay, a sender or a port that does not parse:
    retried (deferred) until an operator mends it, never given up."""
    monkeypatch.delenv("COMPLAINTS_REPLY_KEY")
    with pytest.raises(MailMisconfigured, match="COMPLAINTS_REPLY_KEY is not set"):
        await EmailChannel().send(outbound())
    remote = MailSettings(smtp_host="smtp.example.com", smtp_user="mailer", smtp_password="s3cret-password",
                          reply_key="k" * 32)
    with pytest.raises(MailMisconfigured, match="STARTTLS") as caught:
        await EmailChannel(remote).send(outbound())
    assert isinstance(caught.value, DeliveryDeferred)
    assert "s3cret" not in repr(remote) and "k" * 32 not in repr(remote)
    monkeypatch.setenv("COMPLAINTS_REPLY_KEY", "k" * 32)
    for name, value in (("COMPLAINTS_MAIL_FROM", "Customer care"), ("COMPLAINTS_MAIL_DOMAIN", "not a domain"),
                        ("COMPLAINTS_SMTP_PORT", "smtp")):
        with monkeypatch.context() as patched:
            patched.setenv(name, value)
            with pytest.raises(MailMisconfigured, match=name):
                await EmailChannel().send(outbound())
    assert mail_server.messages() == []


@pytest.mark.parametrize("complaint_id", [
    "C-1042", "c-1042", "C.1042", "C 1042", "C_1042", "C=1042", "ü-1", "<C@1>", "C\r\nBcc: x", "", "=", "C" * 500,
    "a..b", ".a", "a.",
])
def test_message_ids_are_deterministic_and_valid_whatever_the_complaint_id(complaint_id: str) -> None:
    made = message_id(complaint_id, "acknowledgement-1", DOMAIN)
    assert made == message_id(complaint_id, "acknowledgement-1", DOMAIN)
    assert MSG_ID.fullmatch(made), made
    assert len(made) < 300
    assert made != message_id(complaint_id, "acknowledgement-2", DOMAIN)
    email = EmailMessage()
    email["Message-ID"] = made
    assert email["Message-ID"] == made


def test_message_ids_of_different_complaints_never_meet() -> None:
    ids = ["C-1042", "c-1042", "C.1042", "C 1042", "C_1042", "C=1042", "C=2E1042", "C-1042.acknowledgement", "",
           "=", "=3D"]
    keys = ("acknowledgement-1", "1", "acknowledgement.1", "", "=")
    made = {message_id(i, key, DOMAIN) for i in ids for key in keys}
    assert len(made) == len(ids) * len(keys)
    assert message_id("C-1042", "ack-3", "complaints.example") == "<C-1042.ack-3@complaints.example>"
    with pytest.raises(ValueError, match="domain"):
        message_id("C-1042", "ack-3", "not a domain")


# --- `complaints mail` ---------------------------------------------------------------------------------------


async def _reply(server: Any, to: str, subject: str, text: str, in_reply_to: str | None = None,
                 envelope_to: str | None = None) -> None:
    """A customer's reply, as their mail program would hand it to the server (to ``envelope_to`` if given,
    as a Bcc is: in the envelope only)."""
    email = EmailMessage()
    email["From"] = "Siti Rahayu <siti.rahayu@contoh.co.id>"
    email["To"] = to
    email["Subject"] = subject
    if in_reply_to:
        email["In-Reply-To"] = in_reply_to
    email.set_content(text)
    await aiosmtplib.send(email, hostname=server.host, port=server.port, start_tls=False,
                          recipients=[envelope_to] if envelope_to else None)


def _complaints_mail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "mail", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "250", **(env or {})})


async def test_complaints_mail_lists_filters_and_shows_what_was_sent_and_received(mail_server: Any) -> None:
    await EmailChannel().send(outbound("C-1042"))
    await EmailChannel().send(outbound("C-2001", subject="Tentang [bold]pesanan[/bold] Anda",
                                       to="budi@contoh.co.id"))
    address = reply_address("C-1042")
    await _reply(mail_server, address.upper(), "Re: " + SUBJECT, "Terima kasih, saya tunggu.",
                 in_reply_to=outbound("C-1042").message_id)
    local, _, domain = address.partition("@")
    forged = f"{local[:-1]}{'b' if local[-1] != 'b' else 'c'}@{domain}"  # one character of the token changed
    await _reply(mail_server, forged, "Re: palsu", "Forged.")
    await _reply(mail_server, "complaints@complaints.localhost", "Bcc", "Blind.", envelope_to=reply_address("C-2001"))

    listed = _complaints_mail("--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["direction"], r["complaint_id"], r["reply_token"]) for r in rows] == [
        ("sent", "C-1042", None), ("sent", "C-2001", None), ("received", "C-1042", "verified"),
        ("received", None, "forged: bad signature"), ("received", "C-2001", "verified")]
    assert rows[0]["message_id"] == outbound("C-1042").message_id
    assert rows[0]["subject"] == SUBJECT and rows[0]["to"] == "Siti Rahayu <siti.rahayu@contoh.co.id>"
    assert rows[2]["in_reply_to"] == outbound("C-1042").message_id

    only = json.loads(_complaints_mail("C-1042", "--json").stdout)
    assert [r["key"] for r in only] == [rows[0]["key"], rows[2]["key"]]
    assert json.loads(_complaints_mail("C-9999", "--json").stdout) == []

    # Without the key the token's complaint is only read, and said to be unverified.
    unkeyed = json.loads(_complaints_mail("--json", env={"COMPLAINTS_REPLY_KEY": ""}).stdout)
    assert (unkeyed[2]["complaint_id"], unkeyed[2]["reply_token"]) == ("C-1042", "unverified")

    table = _complaints_mail()
    assert table.returncode == 0, table.stderr
    assert "5 message(s)" in table.stdout and "Tentang [bold]pesanan[/bold] Anda" in table.stdout  # not markup
    assert "forged" in table.stdout

    shown = _complaints_mail("C-1042", "--show")
    assert shown.returncode == 0, shown.stderr
    assert "Terima kasih, saya tunggu." in shown.stdout and "Layanan Pelanggan — “Toko Sejahtera”" in shown.stdout
    assert "Content-Language: id-ID" in shown.stdout and "budi@" not in shown.stdout

    full = json.loads(_complaints_mail("C-2001", "--show", "--json").stdout)
    assert full[0]["text"] == BODY and ["X-Complaint-Id", "C-2001"] in full[0]["headers"]


def test_complaints_mail_without_a_box_says_where_it_looked(tmp_path: Path) -> None:
    done = _complaints_mail("--maildir", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "no Maildir at" in done.stderr


def test_terminal_escapes_in_a_message_are_written_out(mail_server: Any) -> None:
    """A message is text from anyone: --show prints it without letting it drive the operator's terminal."""
    import smtplib

    with smtplib.SMTP(mail_server.host, mail_server.port) as smtp:
        smtp.sendmail("x@example.com", ["complaints@complaints.localhost"],
                      b"Subject: hi\r\nX-Complaint-Id: C-1\r\n\r\nclear \x1b[2Jscreen\r\n")
    shown = _complaints_mail("--show")
    assert "\x1b" not in shown.stdout and "\\u001b[2Jscreen" in shown.stdout
