"""Where customers' replies wait to be read: a Maildir (the embedded stack's mail server writes one; so does
any local delivery agent) or an IMAP folder (a production mailbox). Both answer the same two questions:
which messages are unread, and, once one is handled, mark it (filed into its complaint, or refused).

A message is marked only once its outcome is final: one that could not be handled now (Temporal or the log
unreachable) stays unread and is tried again at the next poll.

Marks follow each format's own flags, so any mail program shows them: filed is *seen*; refused is *seen* and
*flagged* (a person should look: a forged, expired or unknown reply address).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import imaplib
import mailbox
import ssl
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from settings import is_loopback

Mark = Literal["filed", "refused"]

#: The local part of the complaints' reply addresses (activities/channels.py writes them).
REPLY_LOCAL_PART = "complaints"


class Inbox(Protocol):
    async def unread(self) -> list[tuple[str, bytes]]:
        """(key, the message as received) of every message not yet handled, oldest first."""
        ...

    async def mark(self, key: str, outcome: Mark) -> None:
        ...


#: The headers that say whom a message was delivered to (never Reply-To: our own mail names a reply address there).
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


def addressed_to_reply(raw: bytes, local: str = REPLY_LOCAL_PART) -> bool:
    """Whether the message was delivered to the complaints' mailbox (``complaints@...`` or a reply address
    ``complaints+<token>@...``), by its envelope (Delivered-To, X-Original-To) or its To and Cc. Mail to anyone
    else (the workers' own messages to customers, in a catch-all box) is not a reply."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    message = email.message_from_bytes(head + b"\n\n", policy=email.policy.compat32)
    addresses = getaddresses([str(v) for h in RECIPIENT_HEADERS for v in message.get_all(h, [])])
    return any(address.rpartition("@")[0].partition("+")[0].lower() == local.lower() for _name, address in addresses)


@dataclass
class MaildirInbox:
    """The replies in a Maildir: messages in ``new/`` addressed to a reply address (the embedded server keeps
    every message it accepts, the workers' own mail to customers too: those are left alone). Handled ones
    move to ``cur/`` with the flag S (seen), and F (flagged) if refused."""

    path: Path
    local: str = REPLY_LOCAL_PART

    def _box(self) -> mailbox.Maildir:
        return mailbox.Maildir(self.path, factory=None, create=False)

    async def unread(self) -> list[tuple[str, bytes]]:
        return await asyncio.to_thread(self._unread)

    def _unread(self) -> list[tuple[str, bytes]]:
        box = self._box()
        found = []
        new = self.path / "new"
        if not new.is_dir():
            return []
        for entry in sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
            key = entry.name.split(":")[0]
            try:
                raw = box.get_bytes(key)
            except (KeyError, FileNotFoundError):  # moved meanwhile
                continue
            if addressed_to_reply(raw, self.local):
                found.append((key, raw))
        return found

    async def mark(self, key: str, outcome: Mark) -> None:
        await asyncio.to_thread(self._mark, key, outcome)

    def _mark(self, key: str, outcome: Mark) -> None:
        box = self._box()
        message = box.get_message(key)
        message.set_subdir("cur")
        message.set_flags("S" if outcome == "filed" else "FS")
        box[key] = message


@dataclass
class ImapInbox:
    """The replies in an IMAP folder: UNSEEN messages (read with BODY.PEEK, so reading marks nothing);
    handled ones get \\Seen, and \\Flagged too if refused. TLS from the start (imaps://, port 993) or by
    STARTTLS (imap://, port 143), verifying the server's certificate; plain only to a loopback address, for
    tests."""

    host: str
    user: str
    password: str = field(repr=False)
    port: int = 993
    folder: str = "INBOX"
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    local: str = REPLY_LOCAL_PART
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def _connect(self) -> imaplib.IMAP4:
        if self.tls == "none" and not is_loopback(self.host):  # refused before a byte is sent in the clear
            raise ValueError("IMAP without TLS is for a loopback server only")
        context = self.ssl_context or ssl.create_default_context()
        if self.tls == "implicit":
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=30)
        else:
            imap = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            if self.tls == "starttls":
                imap.starttls(context)
            imap.login(self.user, self.password)
            status, _ = imap.select(_quoted(self.folder))
            if status != "OK":
                raise ValueError(f"IMAP folder {self.folder!r} cannot be selected")
        except BaseException:
            with contextlib.suppress(Exception):  # a refused login must not leave its socket open
                imap.shutdown()
            raise
        return imap

    async def unread(self) -> list[tuple[str, bytes]]:
        return await asyncio.to_thread(self._unread)

    def _unread(self) -> list[tuple[str, bytes]]:
        imap = self._connect()
        try:
            status, data = imap.uid("SEARCH", "UNSEEN")
            if status != "OK":
                raise OSError("IMAP SEARCH failed")
            found = []
            for uid in (data[0] or b"").split():
                status, parts = imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
                if status == "OK" and isinstance(raw, bytes) and addressed_to_reply(raw, self.local):
                    found.append((uid.decode(), raw))
            return found
        finally:
            _close(imap)

    async def mark(self, key: str, outcome: Mark) -> None:
        await asyncio.to_thread(self._mark, key, outcome)

    def _mark(self, key: str, outcome: Mark) -> None:
        imap = self._connect()
        try:
            flags = "(\\Seen)" if outcome == "filed" else "(\\Seen \\Flagged)"
            status, _ = imap.uid("STORE", key, "+FLAGS", flags)
            if status != "OK":
                raise OSError("IMAP STORE failed")
        finally:
            _close(imap)


def inbox_from(setting: str, password: str | None = None) -> Inbox:
    """COMPLAINTS_INBOUND as an inbox: ``maildir:/path``, ``imaps://user@host[:port][/FOLDER]``, or
    ``imap://user@host[:port][/FOLDER]`` (STARTTLS; ``?tls=none`` for a loopback test server)."""
    if setting.startswith("maildir:"):
        return MaildirInbox(Path(setting.removeprefix("maildir:")))
    parts = urlsplit(setting)
    if parts.scheme in ("imap", "imaps"):
        if not parts.hostname or not parts.username:
            raise ValueError("COMPLAINTS_INBOUND: an IMAP inbox names user@host")
        if not password:
            raise ValueError("COMPLAINTS_IMAP_PASSWORD is not set")
        tls: Literal["implicit", "starttls", "none"] = "implicit" if parts.scheme == "imaps" else "starttls"
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
        if set(query) - {"tls"} or query.get("tls", ["none"]) != ["none"]:
            raise ValueError("COMPLAINTS_INBOUND: the only option of an IMAP inbox is ?tls=none (loopback tests)")
        if query:
            tls = "none"
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        return ImapInbox(parts.hostname, unquote(parts.username), password,
                         parts.port or (993 if parts.scheme == "imaps" else 143), folder, tls)
    raise ValueError(f"COMPLAINTS_INBOUND: not maildir:/path, imaps://user@host or imap://user@host: {setting!r}")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _close(imap: imaplib.IMAP4) -> None:
    try:
        imap.close()
    except imaplib.IMAP4.error:
        pass
    finally:
        imap.logout()
