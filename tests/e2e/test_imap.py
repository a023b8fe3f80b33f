"""The IMAP inbox against a real IMAP server: a Dovecot of the test's own (tests/e2e/imap_server.py), into
whose INBOX messages are delivered with APPEND, as a delivery agent would. The inbox lists the unread replies
(and only those) without marking them by reading; filed makes a reply seen, refused seen and flagged; STARTTLS
verifies the server's certificate; a wrong password marks nothing; plain IMAP is for a loopback server only."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest

from customer.mailboxes import ImapInbox, addressed_to_reply, inbox_from
from tests.e2e.imap_server import Dovecot, dovecot

REPLY_TO = "complaints+abc234@complaints.localhost"  # complaints+<token>: a complaint's reply address
OTHER = "someone@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    with dovecot(tmp_path_factory.mktemp("dovecot")) as running:
        yield running


@pytest.fixture
def imap(server: Dovecot) -> Iterator[Dovecot]:
    """The server, its INBOX empty."""
    server.empty()
    yield server


def message(to: str, text: str = "Paket saya belum sampai juga.", **headers: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = "Siti Rahayu <siti.rahayu@contoh.co.id>"
    email["To"] = to
    email["Subject"] = "Re: Keluhan Anda kami terima — nomor C-1042"
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain="contoh.co.id")
    for name, value in headers.items():  # Reply_To=... is Reply-To
        del email[name.replace("_", "-")]
        email[name.replace("_", "-")] = value
    email.set_content(text)
    return email


def starttls_inbox(server: Dovecot, **changes: Any) -> ImapInbox:
    fields: dict[str, Any] = {
        "host": server.host, "user": server.user, "password": server.password, "port": server.port,
        "tls": "starttls", "ssl_context": server.certificate.trusting()}
    return ImapInbox(**{**fields, **changes})


async def test_unread_is_the_replies_only_and_reading_marks_nothing(imap: Dovecot) -> None:
    first = imap.deliver(message(REPLY_TO, "Paket saya belum sampai."))
    other = imap.deliver(message(OTHER, "Not a reply to a complaint."))
    second = imap.deliver(message(f"Layanan Pelanggan <{REPLY_TO}>", "Sudah dua minggu."))
    inbox = starttls_inbox(imap)

    unread = await inbox.unread()

    assert unread == [first, second]  # (UID, the message as delivered), oldest first
    assert all(addressed_to_reply(raw) for _, raw in unread) and not addressed_to_reply(other[1])
    for uid, _ in (first, other, second):
        assert imap.flags(uid) == set()  # read with BODY.PEEK: not \Seen
    assert await inbox.unread() == [first, second]  # read again: still unread


async def test_filed_is_seen_and_no_longer_unread(imap: Dovecot) -> None:
    (filed, _), second = imap.deliver(message(REPLY_TO)), imap.deliver(message(REPLY_TO, "Halo?"))
    inbox = starttls_inbox(imap)

    await inbox.mark(filed, "filed")

    assert imap.flags(filed) == {"\\Seen"}  # seen, not flagged
    assert imap.flags(second[0]) == set()
    assert await inbox.unread() == [second]


async def test_refused_is_seen_and_flagged(imap: Dovecot) -> None:
    (refused, _), second = imap.deliver(message(REPLY_TO)), imap.deliver(message(REPLY_TO, "Halo?"))
    inbox = starttls_inbox(imap)

    await inbox.mark(refused, "refused")

    assert imap.flags(refused) == {"\\Seen", "\\Flagged"}  # a person should look
    assert imap.flags(second[0]) == set()
    assert await inbox.unread() == [second]


async def test_inbox_from_a_plain_loopback_setting_reads_and_marks(imap: Dovecot) -> None:
    reply = imap.deliver(message(REPLY_TO))
    imap.deliver(message(OTHER))

    inbox = inbox_from(f"imap://{imap.user}@{imap.host}:{imap.port}/INBOX?tls=none", imap.password)

    assert isinstance(inbox, ImapInbox)
    assert (inbox.host, inbox.port, inbox.user, inbox.folder, inbox.tls) == (
        imap.host, imap.port, imap.user, "INBOX", "none")
    assert await inbox.unread() == [reply]
    await inbox.mark(reply[0], "filed")
    assert imap.flags(reply[0]) == {"\\Seen"}
    assert await inbox.unread() == []


@pytest.mark.parametrize("password", [None, ""])
def test_inbox_from_an_imap_setting_without_a_password_says_which_setting_is_missing(password: str | None) -> None:
    with pytest.raises(ValueError, match="COMPLAINTS_IMAP_PASSWORD"):
        inbox_from("imap://replies@127.0.0.1:1143/INBOX?tls=none", password)
    with pytest.raises(ValueError, match="COMPLAINTS_IMAP_PASSWORD"):
        inbox_from("imaps://replies@imap.example.com/INBOX", password)


async def test_starttls_verifies_the_servers_certificate(imap: Dovecot) -> None:
    reply = imap.deliver(message(REPLY_TO))

    assert await starttls_inbox(imap).unread() == [reply]  # the test's own certificate, trusted
    await starttls_inbox(imap).mark(reply[0], "refused")
    assert imap.flags(reply[0]) == {"\\Seen", "\\Flagged"}

    # The same server is refused by a client that does not trust its certificate (the system's CAs do not).
    untrusting = starttls_inbox(imap, ssl_context=None)
    with pytest.raises(ssl.SSLCertVerificationError):
        await untrusting.unread()
    with pytest.raises(ssl.SSLCertVerificationError):
        await untrusting.mark(reply[0], "filed")


async def test_a_wrong_password_raises_and_marks_nothing(imap: Dovecot) -> None:
    reply = imap.deliver(message(REPLY_TO))
    wrong = starttls_inbox(imap, password=imap.password + "x")

    with pytest.raises(imaplib.IMAP4.error):
        await wrong.unread()
    with pytest.raises(imaplib.IMAP4.error):
        await wrong.mark(reply[0], "refused")
    with pytest.raises(imaplib.IMAP4.error):
        await inbox_from(f"imap://{imap.user}@{imap.host}:{imap.port}/INBOX?tls=none", "not-the-password").unread()

    assert imap.flags(reply[0]) == set()
    assert await starttls_inbox(imap).unread() == [reply]


async def test_plain_imap_to_a_host_that_is_not_loopback_is_refused_before_connecting() -> None:
    # mail.invalid resolves nowhere (RFC 6761): a ValueError can only come before any connection is tried.
    # (Made inside the raises blocks: refusing it when the inbox is made would do as well.)
    with pytest.raises(ValueError, match="loopback"):
        await ImapInbox("mail.invalid", "replies", "a-password", 143, tls="none").unread()
    with pytest.raises(ValueError, match="loopback"):
        await ImapInbox("mail.invalid", "replies", "a-password", 143, tls="none").mark("1", "filed")
    with pytest.raises(ValueError, match="loopback"):
        await inbox_from("imap://replies@mail.invalid/INBOX?tls=none", "a-password").unread()
    with pytest.raises(ValueError, match="only option"):  # an option it does not know is not silently ignored
        inbox_from("imap://replies@127.0.0.1/INBOX?tls=none&x=1", "a-password")


async def test_our_own_message_to_a_customer_is_not_a_reply(imap: Dovecot) -> None:
    """It names the reply address only in Reply-To (the embedded stack's box keeps every message, ours too)."""
    imap.deliver(message("Siti Rahayu <siti.rahayu@contoh.co.id>", "Keluhan Anda kami terima.",
                         From="Layanan Pelanggan <complaints@complaints.localhost>", Reply_To=REPLY_TO))
    assert await starttls_inbox(imap).unread() == []

