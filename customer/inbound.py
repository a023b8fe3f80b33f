"""Replies come back: an email to a complaint's reply address becomes a message from the customer in that
complaint, kept verbatim (sealed in the log) with its Message-ID.

Which complaint a reply belongs to is proven by its address alone: ``complaints+<token>@<domain>``, whose
token is signed with the deployment's reply key and expires (identity/reply_tokens.py). The threading
headers then say which of our messages it answers: In-Reply-To and References must name messages of that
same complaint, if they name ours at all. A reply that is not to a reply address, or whose token is
malformed, forged, expired or names a complaint the log does not hold, or that refers to another
complaint's messages, is refused: it is recorded in no complaint, and its mailbox marks it for a person.

A reply read twice (a poll interrupted before its mark, a copy in two folders) is kept once: its update's id
is derived from its Message-ID, and the workflow refuses a Message-ID it already keeps.

Nothing personal is logged here: not the address, not a word of the message.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import logging
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, Literal

from temporalio.service import RPCError

import starter
from customer.gateway import Gateway
from customer.mailboxes import RECIPIENT_HEADERS, REPLY_LOCAL_PART, Inbox
from domain import commands as cmd
from domain.intake import Channel
from domain.values import MAX_TEXT_BYTES
from domain.vocabulary import Sender
from eventlog import EventLogUnavailable
from eventlog.connect import CONNECTION_ERRORS
from identity import reply_tokens
from logs import get_logger

log = get_logger(__name__)

_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f\x41-\x7e]{1,250}@[\x21-\x3b\x3d\x3f\x41-\x7e]{1,250}>")
#: What the log's text fields refuse (domain/values.py): C0 and C1 controls, and lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_LOG_UNAVAILABLE: tuple[type[BaseException], ...] = (EventLogUnavailable, *CONNECTION_ERRORS)
_TEMPORAL_UNAVAILABLE: tuple[type[BaseException], ...] = (RPCError, *CONNECTION_ERRORS)
_CUT = "\n[cut: the message was longer than the log keeps]"
#: How many Message-IDs of References are looked at (a long thread's are many; ours are the newest).
_MAX_REFERENCES = 50


@dataclass(frozen=True)
class Reply:
    """What a reply says about itself: its Message-ID, the reply token of the address it was sent to, the
    messages it answers, and its text."""

    message_id: str
    token: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str
    sent_at: datetime | None


@dataclass(frozen=True)
class Outcome:
    """``filed`` (kept in ``complaint_id``), ``duplicate`` (kept already), ``refused`` (kept nowhere, with a
    short reason that names no one)."""

    result: Literal["filed", "duplicate", "refused"]
    reason: str = ""
    complaint_id: str | None = None

    @property
    def mark(self) -> Literal["filed", "refused"]:
        return "refused" if self.result == "refused" else "filed"


class Transient(Exception):
    """The reply could not be handled now (Temporal or the log unreachable): leave it unread, try later."""


def parse(raw: bytes, local: str = REPLY_LOCAL_PART) -> Reply:
    """The reply in ``raw`` (RFC 5322 bytes, as received). The token is taken from the envelope's recipient
    (Delivered-To, X-Original-To) first, then To and Cc."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    token = None
    for header in RECIPIENT_HEADERS:
        for _name, address in getaddresses([str(v) for v in message.get_all(header, [])]):
            token = reply_tokens.token_from_address(address, local)
            if token:
                break
        if token:
            break
    own = _ids(str(message.get("Message-ID", "")))
    message_id = own[0] if own else f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"
    in_reply_to = next(iter(_ids(str(message.get("In-Reply-To", "")))), None)
    references = tuple(_ids(str(message.get("References", ""))))[-_MAX_REFERENCES:]
    try:
        sent_at = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
        if sent_at is not None and sent_at.tzinfo is None:
            sent_at = None
    except (TypeError, ValueError, IndexError):
        sent_at = None
    return Reply(message_id, token, in_reply_to, references, _text(message), sent_at)


class Receiver:
    """Files replies into their complaints through the gateway."""

    def __init__(self, gateway: Gateway, reply_key: bytes, mail_domain: str, local: str = REPLY_LOCAL_PART) -> None:
        self.gateway = gateway
        self.reply_key = reply_key
        self.mail_domain = mail_domain.lower()
        self.local = local

    def complaint_of(self, token: str | None, now: datetime | None = None) -> str | Outcome:
        """The complaint a reply token proves, or the refusal saying why not."""
        if token is None:
            return Outcome("refused", "not addressed to a complaint's reply address")
        try:
            return reply_tokens.verify(token, self.reply_key, now=now or datetime.now(UTC))
        except reply_tokens.ForgedReplyToken as forged:
            return Outcome("refused", f"reply address token {forged.reason}")

    async def file(self, raw: bytes, *, now: datetime | None = None) -> Outcome:
        """File one reply; :class:`Transient` if it cannot be decided now."""
        reply = parse(raw, self.local)
        proven = self.complaint_of(reply.token, now)
        if isinstance(proven, Outcome):
            return self._refused(proven)
        complaint_id = proven
        try:
            story = await self.gateway.story(complaint_id)
        except _LOG_UNAVAILABLE as error:
            raise Transient(f"the event log is unreachable: {type(error).__name__}") from None
        if story is None:
            return self._refused(Outcome("refused", "the reply address names no complaint in the log"))
        if not story.state.is_open:
            return self._refused(Outcome("refused", "the complaint is closed", complaint_id))
        thread = set(story.state.thread)
        named = [m for m in (reply.in_reply_to, *reply.references) if m is not None]
        foreign = [m for m in named if self._ours(m) and m not in thread]
        if foreign:
            return self._refused(Outcome("refused", "refers to a message this complaint was never sent", complaint_id))
        if reply.message_id in thread:
            return Outcome("duplicate", "kept already", complaint_id)
        answers = reply.in_reply_to if reply.in_reply_to in thread else next(
            (m for m in reversed(reply.references) if m in thread), None)
        command = cmd.LogMessage(sender=Sender.customer, channel=Channel.email, text=reply.text,
                                 message_id=reply.message_id, in_reply_to=answers)
        update_id = "reply-" + hashlib.sha256(f"{complaint_id}\n{reply.message_id}".encode()).hexdigest()[:32]
        try:
            await self.gateway.act(story, "log_message", command, update_id=update_id)
        except starter.DecisionRefused as refused:
            if "already kept" in str(refused):
                return Outcome("duplicate", "kept already", complaint_id)
            return self._refused(Outcome("refused", f"the complaint refused it: {refused.kind or 'refused'}",
                                         complaint_id))
        except _TEMPORAL_UNAVAILABLE as error:
            raise Transient(f"Temporal is unreachable: {type(error).__name__}") from None
        log.info("reply filed", complaint_id=complaint_id, threaded=answers is not None)
        return Outcome("filed", complaint_id=complaint_id)

    def _ours(self, message_id: str) -> bool:
        return message_id.rstrip(">").rpartition("@")[2].lower() == self.mail_domain

    @staticmethod
    def _refused(outcome: Outcome) -> Outcome:
        log.warning("reply refused", complaint_id=outcome.complaint_id, reason=outcome.reason)
        return outcome

    async def poll(self, inbox: Inbox) -> list[Outcome]:
        """Handle every unread reply in ``inbox`` once; a transient failure leaves the rest for the next poll."""
        outcomes = []
        for key, raw in await inbox.unread():
            try:
                outcome = await self.file(raw)
            except Transient as error:
                log.warning("replies wait", reason=str(error))
                break
            await inbox.mark(key, outcome.mark)
            outcomes.append(outcome)
        return outcomes

    async def watch(self, inbox: Inbox, every: float, stop: asyncio.Event) -> None:
        """Poll ``inbox`` every ``every`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.poll(inbox)
            except Exception as error:  # noqa: BLE001 - a bad poll must not stop the next one
                log.error("reading replies failed", error=type(error).__name__)
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except TimeoutError:
                pass


def _ids(header: str) -> list[str]:
    return _MSG_ID.findall(header)


def _text(message: EmailMessage) -> str:
    """The reply's text as the customer wrote it: its plain-text part (else its HTML's text), line ends made
    \\n, characters the log does not keep (other controls) dropped, cut to what the log keeps."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        text = ""
    else:
        try:
            content = part.get_content()
        except (LookupError, UnicodeError, ValueError):
            content = part.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]
        text = str(content)
        if part.get_content_subtype() == "html":
            text = _html_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or not _CONTROL.match(ch))
    text = text.strip() or "(an empty message)"
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        keep = MAX_TEXT_BYTES - len(_CUT.encode())
        text = text.encode("utf-8")[:keep].decode("utf-8", "ignore") + _CUT
    return text


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in ("br", "p", "div", "tr", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts))


class InboundRoute:
    """An inbound SMTP route (aiosmtpd handler): the MX, or a relay's forward, hands replies straight to the
    gateway. A recipient that is not a valid reply address is refused at RCPT (550: the sending server
    bounces it, nothing is kept); an accepted reply is filed before the 250 is given, so the sender retries
    (451) while Temporal or the log is unreachable, and gets 550 for a reply its complaint refuses."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(self, server: object, session: object, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        proven = self.receiver.complaint_of(reply_tokens.token_from_address(address, self.receiver.local))
        if isinstance(proven, Outcome):
            Receiver._refused(proven)
            return "550 5.1.1 Not a reply address of an open complaint"
        if len(envelope.rcpt_tos) >= 1:
            return "452 4.5.3 One reply address per message"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        # The envelope names the address the reply was proven by: put it first, as a delivery agent would.
        head = "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos).encode()
        try:
            outcome = await self.receiver.file(head + raw)
        except Transient:
            return "451 4.3.0 Try again later"
        if outcome.result == "refused":
            return "550 5.7.1 Refused: " + outcome.reason[:100]
        return "250 2.0.0 Filed"


def start_inbound_route(receiver: Receiver, host: str, port: int, *, hostname: str) -> Any:
    """Start :class:`InboundRoute` on ``host:port`` (aiosmtpd's Controller, its own thread); returns the
    controller (``.stop()``). Messages are bounded at 10 MB."""
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    if port == 0:  # aiosmtpd needs the number before it binds
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
    loop = asyncio.get_running_loop()
    route = InboundRoute(receiver)
    controller = Controller(_OnLoop(route, loop), hostname=host, port=port, server_hostname=hostname,
                            ready_timeout=10, data_size_limit=10 * 1024 * 1024)
    controller.start()
    return controller


class _OnLoop:
    """aiosmtpd runs on its own thread and loop; filing runs on the gateway's (its Temporal client's) loop."""

    def __init__(self, route: InboundRoute, loop: asyncio.AbstractEventLoop) -> None:
        self.route = route
        self.loop = loop

    async def handle_RCPT(self, *args: Any) -> str:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.route.handle_RCPT(*args), self.loop))

    async def handle_DATA(self, *args: Any) -> str:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.route.handle_DATA(*args), self.loop))
