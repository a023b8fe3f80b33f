"""Links to the customer's page: signed, expiring, single-purpose.

A link names one complaint, one purpose (choose a remedy, stay or leave, rate the outcome), the log sequence
of the event that made that offer (so a link for an offer that has since been answered, or replaced by a
new one after a reopening, is spent), and when it expires (the offer's own expiry). It carries an
HMAC-SHA256 of all four under the deployment's link key (COMPLAINTS_LINK_KEY): nobody without the key can
make one, or turn one into another.

The token is ``<payload>.<mac>``, both base64url without padding; the payload is a small JSON object. It is
not secret (the complaint id is readable in it), only unforgeable; a page that shows it sends no referrer.

Verification takes the time it is given, never the wall clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from domain.chain import Recorded

Purpose = Literal["remedy", "option", "rating"]
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)
#: A link is short: one longer than this is not read at all.
MAX_TOKEN_CHARS = 400
_CONTEXT = b"complaints-page-link-v1\x00"
_MAC_BYTES = 16
_MIN_KEY_BYTES = 16
Reason = Literal["malformed", "bad signature", "expired"]


class ForgedLink(Exception):
    """A link that does not prove what it claims: ``reason`` is ``malformed``, ``bad signature`` (altered, or
    signed with another key) or ``expired``."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class PageLink:
    complaint_id: str
    purpose: Purpose
    #: The log sequence of the event that made the offer this link answers.
    ref: int
    expires: datetime

    def sign(self, key: bytes) -> str:
        _check_key(key)
        if self.purpose not in PURPOSES:
            raise ValueError(f"a link's purpose is one of {PURPOSES}")
        if self.expires.tzinfo is None:
            raise ValueError("expires must be timezone-aware")
        body = json.dumps({"c": self.complaint_id, "p": self.purpose, "r": self.ref,
                           "e": int(self.expires.timestamp())}, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(_mac(key, body))}"

    def url(self, base_url: str, key: bytes) -> str:
        return f"{base_url.rstrip('/')}/r/{self.sign(key)}"


def verify(token: str, key: bytes, *, now: datetime) -> PageLink:
    """The link ``token`` proves at ``now``, or :class:`ForgedLink` saying why not."""
    _check_key(key)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise ForgedLink("malformed", "not a link token")
    encoded_body, encoded_mac = token.split(".")
    try:
        body, mac = _unb64(encoded_body), _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise ForgedLink("malformed", "not base64url") from None
    if not hmac.compare_digest(_mac(key, body), mac):
        raise ForgedLink("bad signature", "altered, or signed with another key")
    try:
        fields = json.loads(body)
        link = PageLink(complaint_id=str(fields["c"]), purpose=fields["p"], ref=int(fields["r"]),
                        expires=datetime.fromtimestamp(int(fields["e"]), UTC))
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise ForgedLink("malformed", "signed, but not a link") from None
    if link.purpose not in PURPOSES:
        raise ForgedLink("malformed", "no such purpose")
    if now >= link.expires:
        raise ForgedLink("expired", f"expired at {link.expires.isoformat()}")
    return link


def digest(token: str) -> str:
    """A short name for a link (an update id, a log line): its token's sha256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _check_key(key: bytes) -> None:
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the link key must be at least {_MIN_KEY_BYTES} bytes")


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + body, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # one token per link: no second spelling of the same bytes
        raise ValueError("not canonical")
    return data


#: Which message links to which page: the template, the link's purpose, the event that makes the offer, and
#: the field of that event saying until when it can be answered.
OFFERS: dict[str, tuple[Purpose, str, str]] = {
    "apology": ("remedy", "RemedyOffered", "expires_at"),
    "explanation": ("option", "OptionsOffered", "expires_at"),
    "follow_up": ("rating", "FollowUpScheduled", "answer_by"),
}


def offer_of(purpose: Purpose) -> tuple[str, str]:
    """The event type that makes a ``purpose``'s offer, and its expiry field."""
    return next((event, until) for p, event, until in OFFERS.values() if p == purpose)


def for_message(template: str, records: Sequence[Recorded], base_url: str, key: bytes) -> str | None:
    """The page link a message of ``template`` carries (None if it answers nothing on the page): for the
    newest offer of its kind in ``records``, expiring with it."""
    if template not in OFFERS:
        return None
    purpose, event, until = OFFERS[template]
    offered = next((r for r in reversed(records) if r.type == event), None)
    if offered is None:
        return None
    expires = datetime.fromisoformat(str(offered.payload[until]))
    return PageLink(offered.complaint_id, purpose, offered.sequence, expires).url(base_url, key)
