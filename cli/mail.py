"""`complaints mail [ID]`: what the embedded stack's mail server holds, sent and received."""

from __future__ import annotations

import json
import os
import unicodedata
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any

import typer

#: Where `make up` keeps the mail server's Maildir, unless COMPLAINTS_MAILDIR (in .data/dev/env) says otherwise.
DEFAULT_MAILDIR = Path(".data/dev/mail")


def mail(
    complaint_id: Annotated[str | None, typer.Argument(
        help="Only this complaint's messages (by X-Complaint-Id, or the reply token they were sent to).",
        show_default=False)] = None,
    show: Annotated[bool, typer.Option("--show", help="Print each message in full: headers and text.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON (with --show: headers and text too).")] = False,
    maildir: Annotated[Path | None, typer.Option(
        help=f"The Maildir to read (default: COMPLAINTS_MAILDIR, which `make up` exports, else {DEFAULT_MAILDIR}).",
        show_default=False)] = None,
) -> None:
    """An operator's tool for the development stack: the messages its mail server accepted, to customers (sent
    by the workers) and replies to complaints+<token>@ addresses, oldest first, with the complaint each belongs
    to. They hold personal data (customers' addresses and words), shown in full. A reply's complaint comes from
    its signed token, checked with COMPLAINTS_REPLY_KEY when that is set ("unverified" when not, "forged" when
    the check fails). A production deployment hands mail to its relay and keeps no such box."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    from cli.common import console, err
    from dev.mailserver import read_maildir

    path = maildir or Path(os.environ.get("COMPLAINTS_MAILDIR") or DEFAULT_MAILDIR)
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        err.print(f"no Maildir at {_clean(str(path))}: start the stack (`make up`) and source its env file, or pass "
                  "--maildir", markup=False, highlight=False)
        raise typer.Exit(1)
    key = os.environ.get("COMPLAINTS_REPLY_KEY") or None
    found = [(describe_message(k, at, m, key), m) for k, at, m in read_maildir(path)]
    if complaint_id is not None:
        found = [(row, m) for row, m in found if row["complaint_id"] == complaint_id]
    rows = [row for row, _m in found]

    if as_json:
        if show:
            for row, message in found:
                row["headers"] = [[name, str(value)] for name, value in message.items()]
                row["text"] = _text(message)
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if show:
        for row, message in found:
            print(f"=== {row['key']} (delivered {row['delivered_at']}, complaint {row['complaint_id'] or '?'})")
            for name, value in message.items():
                print(_clean(f"{name}: {value}"))
            print()
            print(_clean(_text(message)))
            print()
        if not rows:
            print("no messages")
        return
    table = Table(title=f"{len(rows)} message(s) in {path}")
    for column in ("delivered", "direction", "complaint", "from", "to", "subject", "message id"):
        table.add_column(column, no_wrap=column != "subject")
    for row in rows:  # cells are Text: what a message says is shown as it is, never read as markup
        complaint = row["complaint_id"] or ""
        if row["reply_token"] not in (None, "verified"):
            complaint = f"{complaint} ({row['reply_token']})".strip()
        table.add_row(*(Text(_clean(v or "")) for v in (
            row["delivered_at"][:19].replace("T", " "), row["direction"], complaint, row["from"], row["to"],
            row["subject"], row["message_id"])))
    if console.is_terminal:
        console.print(table)
        return
    wide = Measurement.get(console, console.options.update_width(100_000), table).maximum
    Console(width=max(wide, console.width), highlight=False).print(table)


def describe_message(key: str, delivered: datetime, message: EmailMessage, reply_key: str | None) -> dict[str, Any]:
    """One message as a row: who, what, and which complaint (its X-Complaint-Id, or the reply token)."""
    from identity import reply_tokens

    recipients = [str(a.addr_spec) for name in ("To", "Cc")
                  for header in message.get_all(name, []) for a in getattr(header, "addresses", ())]
    recipients += [str(envelope).strip() for envelope in message.get_all("Delivered-To", [])]  # Bcc too
    tokens = [t for t in (reply_tokens.token_from_address(r) for r in recipients) if t]
    complaint_id = None
    status = None
    if tokens:
        direction = "received"
        if reply_key:
            try:
                complaint_id = reply_tokens.verify(tokens[0], reply_key.encode(), now=datetime.now(UTC))
                status = "verified"
            except (reply_tokens.ForgedReplyToken, ValueError) as error:
                status = f"forged: {getattr(error, 'reason', error)}"
        else:
            complaint_id = reply_tokens.peek(tokens[0])
            status = "unverified"
    else:
        direction = "sent"
        complaint_id = str(message["X-Complaint-Id"]) if message["X-Complaint-Id"] else None
    return {
        "key": key,
        "delivered_at": delivered.isoformat(),
        "date": _header(message, "Date"),
        "from": _header(message, "From"),
        "to": _header(message, "To"),
        "subject": _header(message, "Subject"),
        "message_id": _header(message, "Message-ID"),
        "in_reply_to": _header(message, "In-Reply-To"),
        "complaint_id": complaint_id,
        "direction": direction,
        "reply_token": status,
    }


def _header(message: EmailMessage, name: str) -> str | None:
    value = message[name]
    return None if value is None else str(value)


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "(no text part)"
    try:
        content = part.get_content()
    except (LookupError, ValueError) as error:  # an unknown charset, a broken encoding
        return f"(unreadable text: {error})"
    return content if isinstance(content, str) else "(not text)"


def _clean(text: str) -> str:
    """Text from outside as it may reach a terminal: control characters (escape sequences, bidi overrides)
    written out, line breaks and tabs kept."""
    return "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
                   else f"\\u{ord(ch):04x}" for ch in text.replace("\r\n", "\n"))
