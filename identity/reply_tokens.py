"""Reply tokens: the signed part of a complaint's reply address, ``complaints+<token>@<domain>``.

A token names the complaint it belongs to and when it expires, and carries a truncated HMAC-SHA256 of both
under the deployment's reply key (COMPLAINTS_REPLY_KEY): a reply to it can be filed under that complaint
without trusting anything else the sender wrote, and no one without the key can make one for another
complaint. It is not secret (the id is readable in it), only unforgeable.

It must survive mail systems: local parts are often lower-cased and limited to 64 octets. So the token is
one number written in lower-case base32 (``a``-``z``, ``2``-``7``; read case-insensitively), at most
:data:`MAX_TOKEN_CHARS` characters, packing

- the complaint id, as a bijective base-65 number over the id alphabet (``A-Z a-z 0-9 . _ -``, case kept):
  ids of up to :data:`MAX_ID_CHARS` characters fit;
- the expiry, in whole days since 2000-01-01 UTC (16 bits: until 2179);
- the first 80 bits of HMAC-SHA256(key, version, id, expiry).

Verification takes the time it is given, never the wall clock.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime, timedelta
from typing import Literal

#: How long a reply address works after the message carrying it was sent.
DEFAULT_TTL = timedelta(days=180)
#: The local part is at most 64 octets (RFC 5321) and starts with "complaints+" (11).
MAX_TOKEN_CHARS = 53
#: The characters of a complaint id (domain/values.py), each worth its position + 1.
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
_DIGITS = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_MAC_BITS = 80
_DAY_BITS = 16
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_ID_BITS = MAX_TOKEN_CHARS * 5 - _MAC_BITS - _DAY_BITS
_BASE = len(ID_ALPHABET)
#: The longest complaint id a token carries: the largest n with every id of n characters under 2**_ID_BITS.
MAX_ID_CHARS = max(n for n in range(1, 64) if sum(_BASE**k for k in range(1, n + 1)) < 2**_ID_BITS)
_CONTEXT = b"complaints-reply-token-v1\x00"
_MIN_KEY_BYTES = 16

Reason = Literal["malformed", "bad signature", "expired"]


class ForgedReplyToken(Exception):
    """A reply token that does not prove which complaint it belongs to: ``reason`` is ``malformed``, ``bad
    signature`` (altered, or signed with another key) or ``expired``."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def sign(complaint_id: str, key: bytes, *, issued: datetime, ttl: timedelta = DEFAULT_TTL) -> str:
    """The token for ``complaint_id``, valid from ``issued`` for ``ttl`` (rounded up to the end of that UTC
    day, so that a message signed again the same day gets the very same address)."""
    _check_key(key)
    if not complaint_id or any(ch not in ID_ALPHABET for ch in complaint_id):
        raise ValueError(f"a reply token carries complaint ids of the characters {ID_ALPHABET!r} only")
    if len(complaint_id) > MAX_ID_CHARS:
        raise ValueError(f"a reply token carries complaint ids of at most {MAX_ID_CHARS} characters "
                         f"(the local part of an address is limited), not {len(complaint_id)}")
    if issued.tzinfo is None:
        raise ValueError("issued must be timezone-aware")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    expires_day = math.floor((issued + ttl - _EPOCH) / timedelta(days=1)) + 1
    if not 0 < expires_day < 2**_DAY_BITS:
        raise ValueError("the expiry is out of the token's range (2000-2179)")
    number = _id_number(complaint_id)
    number = (number << _DAY_BITS | expires_day) << _MAC_BITS | _mac(key, complaint_id, expires_day)
    return _base32(number)


def verify(token: str, key: bytes, *, now: datetime) -> str:
    """The complaint id ``token`` names, if it was signed with ``key`` and has not expired at ``now``; else
    :class:`ForgedReplyToken` with the reason. Case does not matter (mail systems lower-case local parts)."""
    _check_key(key)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    text = token.strip().lower()
    if not text or len(text) > MAX_TOKEN_CHARS or any(ch not in _DIGITS for ch in text):
        raise ForgedReplyToken("malformed", f"not a token of at most {MAX_TOKEN_CHARS} base32 characters")
    number = 0
    for ch in text:
        number = number * 32 + _DIGITS.index(ch)
    if _base32(number) != text:
        raise ForgedReplyToken("malformed", "not in canonical form")
    mac = number & (2**_MAC_BITS - 1)
    expires_day = (number >> _MAC_BITS) & (2**_DAY_BITS - 1)
    complaint_id = _id_text(number >> (_MAC_BITS + _DAY_BITS))
    if complaint_id is None:
        raise ForgedReplyToken("malformed", "names no complaint")
    if not hmac.compare_digest(_mac(key, complaint_id, expires_day).to_bytes(_MAC_BITS // 8, "big"),
                               mac.to_bytes(_MAC_BITS // 8, "big")):
        raise ForgedReplyToken("bad signature", "altered, or signed with another key")
    expires = _EPOCH + timedelta(days=expires_day)
    if now >= expires:
        raise ForgedReplyToken("expired", f"expired at {expires.isoformat()}")
    return complaint_id


def peek(token: str) -> str | None:
    """The complaint id a token claims, unverified (for display only: anyone can write any token), or None."""
    text = token.strip().lower()
    if not text or len(text) > MAX_TOKEN_CHARS or any(ch not in _DIGITS for ch in text):
        return None
    number = 0
    for ch in text:
        number = number * 32 + _DIGITS.index(ch)
    return _id_text(number >> (_MAC_BITS + _DAY_BITS))


def token_from_address(address: str, local: str = "complaints") -> str | None:
    """The token of a reply address ``<local>+<token>@domain`` (any case), or None if it is not one."""
    addr = address.strip().strip("<>")
    mailbox, at, _domain = addr.rpartition("@")
    if not at:
        return None
    base, plus, token = mailbox.partition("+")
    if not plus or base.lower() != local.lower() or not token:
        return None
    return token.lower()


def _check_key(key: bytes) -> None:
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the reply key must be at least {_MIN_KEY_BYTES} bytes")


def _mac(key: bytes, complaint_id: str, expires_day: int) -> int:
    message = _CONTEXT + complaint_id.encode("ascii") + b"\x00" + expires_day.to_bytes(2, "big")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return int.from_bytes(digest[: _MAC_BITS // 8], "big")


def _id_number(complaint_id: str) -> int:
    number = 0
    for ch in complaint_id:
        number = number * _BASE + ID_ALPHABET.index(ch) + 1
    return number


def _id_text(number: int) -> str | None:
    chars = []
    while number > 0:
        number, digit = divmod(number - 1, _BASE)
        chars.append(ID_ALPHABET[digit])
    return "".join(reversed(chars)) or None


def _base32(number: int) -> str:
    digits = []
    while True:
        number, digit = divmod(number, 32)
        digits.append(_DIGITS[digit])
        if number == 0:
            return "".join(reversed(digits))
