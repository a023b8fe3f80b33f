"""The customer channel: messages to customers sent as email through an SMTP relay.

Each message is one UTF-8 plain-text email with a deterministic Message-ID (:func:`message_id`): a send that
is retried (the relay's acknowledgement lost, the worker restarted) is recognisably the same message, so the
customer's mail program threads it, and the recipient can tell a duplicate. Replies go to a signed address
per complaint (:func:`reply_address`, identity/reply_tokens.py), set as Reply-To; In-Reply-To and References
thread the conversation.

Failures are sorted for the caller's retry policy: :class:`DeliveryRefused` is permanent (the relay said 5xx,
or the message cannot be written: a bad address), never retried; :class:`DeliveryDeferred` is transient (no
connection, a timeout, 4xx), retried with backoff. A deployment's own mistake (no reply key, credentials or a
sender the relay refuses, no STARTTLS) is :class:`MailMisconfigured`, a kind of DeliveryDeferred: the message waits
until an operator fixes the configuration, instead of being given up.

aiosmtplib is imported when a message is sent, so the models here stay importable anywhere.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from identity import reply_tokens
from logs import get_logger
from settings import MailSettings, is_loopback

log = get_logger(__name__)

#: The local part of every reply address: ``complaints+<token>@<domain>``.
REPLY_LOCAL_PART = "complaints"
#: A relay's reply text names its queue id so (Postfix, aiosmtpd here: "queued as X"; Exim: "id=X").
_QUEUE_ID = re.compile(r"(?:queued as|id=)\s*<?([A-Za-z0-9._@=+-]+)>?", re.IGNORECASE)
#: A BCP 47 tag, loosely: a primary subtag and any number of others (Content-Language, RFC 3282).
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
#: What stays as it is in a Message-ID's left part; anything else is escaped as =XX (its UTF-8 bytes).
_PLAIN = re.compile(r"[A-Za-z0-9_+-]")
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_MAX_LEFT = 200
#: A msg-id as other mail programs write them, leniently: <left@right> in printable ASCII, no space.
_MSG_ID = re.compile(r"^<[\x21-\x3b\x3d\x3f\x41-\x7e]+@[\x21-\x3b\x3d\x3f\x41-\x7e]+>$")


class Outbound(BaseModel):
    """One message to a customer, as the workflow decided it: everything the email is made of."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint_id: str
    #: The full Message-ID header value, "<...@domain>": :func:`message_id`.
    message_id: str
    #: An email address (addr-spec).
    to: str
    subject: str
    #: Plain text.
    body: str
    #: BCP 47; becomes Content-Language.
    language: str
    in_reply_to: str | None = None
    references: list[str] = []


class Delivered(BaseModel):
    """The relay took the message: ``provider_id`` is its queue id from the 250 reply, else the Message-ID."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_id: str


class DeliveryRefused(Exception):
    """Permanent: the relay refused the message (5xx), or it cannot be written (a bad address). Never retry;
    ``str(e)`` is a short reason."""


class DeliveryDeferred(Exception):
    """Transient: no connection, a timeout, or a 4xx reply. Retry with backoff."""


class MailMisconfigured(DeliveryDeferred):
    """The deployment's mail settings are wrong (no reply key, credentials refused, no STARTTLS): transient
    in that the message should go once an operator fixes them, so it is retried, never given up."""


class ChannelAdapter(Protocol):
    name: str

    async def send(self, message: Outbound) -> Delivered: ...


def message_id(complaint_id: str, key: str, domain: str) -> str:
    """The Message-ID of the message ``key`` (e.g. ``acknowledgement-1``) of a complaint: the same arguments
    always give the same id, ``<C-1042.acknowledgement-1@complaints.example>``. Characters a msg-id (RFC 5322)
    cannot hold, and ``.`` and ``=``, are escaped as ``=XX``, so different complaint ids or keys never share
    an id; a very long one is cut and completed with a hash of the whole."""
    if not _DOT_ATOM.fullmatch(domain):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    left = f"{_escape(complaint_id)}.{_escape(key)}"
    if len(left) > _MAX_LEFT:
        digest = hashlib.sha256(f"{complaint_id}\x00{key}".encode()).hexdigest()[:24]
        left = f"{left[:_MAX_LEFT - 25].rstrip('.')}.{digest}"
    return f"<{left}@{domain}>"


def reply_address(complaint_id: str, settings: MailSettings | None = None, *, now: datetime | None = None) -> str:
    """``complaints+<token>@<domain>``: replies to it are the complaint's, proven by the token's signature.
    The token is the same all day (its expiry is counted in whole days), so a retried send keeps it."""
    settings = settings or MailSettings()
    try:
        key = settings.reply_key_bytes()
    except ValueError as error:
        raise MailMisconfigured(str(error)) from None
    ttl = timedelta(days=settings.reply_ttl_days)
    token = reply_tokens.sign(complaint_id, key, issued=now or datetime.now(UTC), ttl=ttl)
    return f"{REPLY_LOCAL_PART}+{token}@{settings.mail_domain}"


def build_email(message: Outbound, settings: MailSettings, *, now: datetime | None = None) -> EmailMessage:
    """The email for ``message``: ValueError if the message cannot be written (a bad address, a header with a
    line break, a language that is not a tag, a complaint id no reply token can carry), MailMisconfigured if
    the settings are to blame."""
    try:
        sender = _address(settings.mail_from, "COMPLAINTS_MAIL_FROM")
        if not _DOT_ATOM.fullmatch(settings.mail_domain):
            raise ValueError(f"COMPLAINTS_MAIL_DOMAIN: not a domain: {settings.mail_domain!r}")
    except ValueError as error:
        raise MailMisconfigured(str(error)) from None
    recipient = _address(message.to, "to")
    if not _LANGUAGE.fullmatch(message.language):
        raise ValueError(f"language: not a BCP 47 tag: {message.language!r}")
    for name, value in [("message_id", message.message_id), ("in_reply_to", message.in_reply_to),
                        *(("references", ref) for ref in message.references)]:
        if value is not None and not _MSG_ID.fullmatch(value):
            raise ValueError(f"{name}: not a Message-ID (<left@right>)")
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    email["To"] = recipient
    email["Subject"] = message.subject
    email["Date"] = format_datetime(now or datetime.now(UTC))
    email["Message-ID"] = message.message_id
    if message.in_reply_to:
        email["In-Reply-To"] = message.in_reply_to
    if message.references:
        email["References"] = " ".join(message.references)
    email["Reply-To"] = reply_address(message.complaint_id, settings, now=now)
    email["X-Complaint-Id"] = message.complaint_id
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a complaint's messages
    email.set_content(message.body, subtype="plain", charset="utf-8", cte="quoted-printable")
    email["Content-Language"] = message.language  # after set_content, which drops every Content-* header
    return email


class EmailChannel:
    """:class:`ChannelAdapter` over SMTP (aiosmtplib): one connection per message, STARTTLS and login as the
    settings say. Without settings, each send reads them from the environment (so a worker built before the
    environment names a relay, or a test's mail server, sends to the one named at the time)."""

    name = "email"

    def __init__(self, settings: MailSettings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> MailSettings:
        try:
            return self._settings or MailSettings()
        except SystemExit as error:  # settings.py's way to say a variable does not parse: not in a worker
            raise MailMisconfigured(str(error.code)) from None

    async def send(self, message: Outbound) -> Delivered:
        import aiosmtplib

        settings = self.settings
        try:
            email = build_email(message, settings)
            envelope_from = _address(settings.mail_from, "COMPLAINTS_MAIL_FROM").addr_spec
            envelope_to = _address(message.to, "to").addr_spec
            data = email.as_bytes(policy=SMTP)
        except (ValueError, TypeError, UnicodeError) as error:
            raise DeliveryRefused(f"cannot be written: {_short(error)}") from None
        if bool(settings.smtp_user) != bool(settings.smtp_password):
            raise MailMisconfigured("COMPLAINTS_SMTP_USER and COMPLAINTS_SMTP_PASSWORD go together")
        if settings.smtp_user and not settings.smtp_starttls and not is_loopback(settings.smtp_host):
            raise MailMisconfigured("credentials over a connection without STARTTLS: set COMPLAINTS_SMTP_STARTTLS=1")
        smtp = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port, timeout=settings.smtp_timeout,
                               start_tls=settings.smtp_starttls, username=settings.smtp_user,
                               password=settings.smtp_password, local_hostname=settings.mail_domain)
        try:
            await smtp.connect()
            try:
                _errors, reply = await smtp.sendmail(envelope_from, [envelope_to], data)
            finally:
                smtp.close()  # the message is taken or not: QUIT would only add a way to fail
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            reason = "; ".join(f"{r.code} {_short(r.message)}" for r in error.recipients)
            if all(code >= 500 for code in codes):
                raise DeliveryRefused(f"recipient refused: {reason}") from None
            raise DeliveryDeferred(f"recipient deferred: {reason}") from None
        except aiosmtplib.SMTPAuthenticationError as error:
            raise MailMisconfigured(f"the relay refused our credentials: {error.code}") from None
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPHeloError) as error:  # our From, our name: every message
            raise MailMisconfigured(f"the relay refused our sender: {error.code} {_short(error.message)}") from None
        except aiosmtplib.SMTPResponseException as error:
            reason = f"{error.code} {_short(error.message)}"
            if 500 <= error.code < 600:
                raise DeliveryRefused(reason) from None
            raise DeliveryDeferred(reason) from None
        except aiosmtplib.SMTPNotSupported as error:
            raise MailMisconfigured(f"the relay does not support it: {_short(error)}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryDeferred(f"{type(error).__name__}: {_short(error)}") from None
        match = _QUEUE_ID.search(reply)
        provider_id = match.group(1) if match else message.message_id
        log.debug("message sent", complaint_id=message.complaint_id, message_id=message.message_id,
                 provider_id=provider_id)
        return Delivered(provider_id=provider_id)


def _escape(text: str) -> str:
    """``text`` as atext, one to one: kept where it may stand, else =XX per UTF-8 byte; the empty text is "="."""
    if not text:
        return "="
    return "".join(ch if _PLAIN.fullmatch(ch) else "".join(f"={b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
                   for ch in text)


def _address(text: str, what: str) -> Address:
    """One address, display name allowed; ValueError unless it is exactly one plain addr-spec."""
    if any(ch in text for ch in "\r\n\x00"):
        raise ValueError(f"{what}: a line break in an address")
    header = SMTP.header_factory("To", text)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if header.defects or len(addresses) != 1:
        raise ValueError(f"{what}: not one email address")
    address: Address = addresses[0]
    if not _DOT_ATOM.fullmatch(address.username) or not _DOT_ATOM.fullmatch(address.domain) \
            or ("." not in address.domain and address.domain != "localhost"):
        raise ValueError(f"{what}: not an email address (ASCII, user@domain)")
    return Address(display_name=address.display_name, username=address.username, domain=address.domain)


def _short(error: object, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
