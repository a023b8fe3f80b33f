"""Reply tokens (identity/reply_tokens.py): the signed part of complaints+<token>@domain. They name their
complaint, survive a mail server that changes their case, fit the 64-octet local part, and refuse to be
altered, re-signed with another key, or used after they expire, saying which."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity.reply_tokens import (
    DEFAULT_TTL,
    MAX_ID_CHARS,
    ForgedReplyToken,
    peek,
    sign,
    token_from_address,
    verify,
)

KEY = b"reply-key-for-the-suite-0123456789"
OTHER = b"another-deployments-reply-key-9876"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
IDS = ["C-1042", "c-1042", "T-1a2b3c4d5e", "CMP-2026.000123_x", "A", "9", "Z" * MAX_ID_CHARS]


@pytest.mark.parametrize("complaint_id", IDS)
def test_a_token_names_its_complaint_in_any_case_and_fits_a_local_part(complaint_id: str) -> None:
    token = sign(complaint_id, KEY, issued=NOW)
    assert verify(token, KEY, now=NOW) == complaint_id
    assert verify(token.upper(), KEY, now=NOW) == complaint_id  # a server that upper- or lower-cases it
    assert token == token.lower() and token.isalnum() and token.isascii()
    assert len(f"complaints+{token}") <= 64
    assert peek(token) == complaint_id


def test_case_is_kept_in_the_id_though_not_in_the_token() -> None:
    assert sign("C-1042", KEY, issued=NOW) != sign("c-1042", KEY, issued=NOW)
    assert verify(sign("c-1042", KEY, issued=NOW).upper(), KEY, now=NOW) == "c-1042"


def test_the_same_day_gives_the_same_token() -> None:
    morning, evening = NOW.replace(hour=0, minute=1), NOW.replace(hour=23, minute=59)
    assert sign("C-1042", KEY, issued=morning) == sign("C-1042", KEY, issued=evening)
    assert sign("C-1042", KEY, issued=morning) != sign("C-1042", KEY, issued=morning + timedelta(days=1))


def test_every_changed_character_is_a_bad_signature_or_malformed() -> None:
    token = sign("C-1042", KEY, issued=NOW)
    for i in range(len(token)):
        for replacement in "a7":
            if token[i] == replacement:
                continue
            altered = token[:i] + replacement + token[i + 1:]
            with pytest.raises(ForgedReplyToken) as caught:
                verify(altered, KEY, now=NOW)
            assert caught.value.reason in ("bad signature", "malformed"), altered


def test_a_flipped_character_is_a_bad_signature() -> None:
    token = sign("C-1042", KEY, issued=NOW)
    flipped = token[:-1] + ("b" if token[-1] != "b" else "c")
    with pytest.raises(ForgedReplyToken, match="bad signature") as caught:
        verify(flipped, KEY, now=NOW)
    assert caught.value.reason == "bad signature"


def test_another_key_is_a_bad_signature() -> None:
    with pytest.raises(ForgedReplyToken) as caught:
        verify(sign("C-1042", OTHER, issued=NOW), KEY, now=NOW)
    assert caught.value.reason == "bad signature"


def test_another_complaint_cannot_be_claimed_with_a_real_signature() -> None:
    """The id and the expiry are both under the MAC: a token for C-1042 does not become C-1043's."""
    token = sign("C-1042", KEY, issued=NOW)
    other = sign("C-1043", KEY, issued=NOW)
    spliced = other[: len(other) - 16] + token[-16:]  # C-1043's id, C-1042's signature (its last 80 bits)
    with pytest.raises(ForgedReplyToken) as caught:
        verify(spliced, KEY, now=NOW)
    assert caught.value.reason == "bad signature"


def test_an_expired_token_says_so() -> None:
    token = sign("C-1042", KEY, issued=NOW)
    assert verify(token, KEY, now=NOW + DEFAULT_TTL - timedelta(seconds=1)) == "C-1042"
    assert verify(token, KEY, now=NOW + DEFAULT_TTL) == "C-1042"  # counted to the end of that day
    with pytest.raises(ForgedReplyToken, match="expired") as caught:
        verify(token, KEY, now=NOW + DEFAULT_TTL + timedelta(days=1))
    assert caught.value.reason == "expired"
    short = sign("C-1042", KEY, issued=NOW, ttl=timedelta(days=1))
    with pytest.raises(ForgedReplyToken, match="expired"):
        verify(short, KEY, now=NOW + timedelta(days=2))


@pytest.mark.parametrize("junk", ["", " ", "abc!def", "0123", "a" * 54, "C-1042", "complaints+abc", "aaaab"])
def test_junk_is_malformed(junk: str) -> None:
    with pytest.raises(ForgedReplyToken) as caught:
        verify(junk, KEY, now=NOW)
    assert caught.value.reason == "malformed"


def test_what_cannot_be_a_token_is_refused_when_signing() -> None:
    with pytest.raises(ValueError, match="at most"):
        sign("C" * (MAX_ID_CHARS + 1), KEY, issued=NOW)
    with pytest.raises(ValueError, match="characters"):
        sign("C 1042", KEY, issued=NOW)
    with pytest.raises(ValueError, match="16 bytes"):
        sign("C-1042", b"short", issued=NOW)
    with pytest.raises(ValueError, match="timezone"):
        sign("C-1042", KEY, issued=NOW.replace(tzinfo=None))


def test_a_reply_address_gives_up_its_token() -> None:
    token = sign("C-1042", KEY, issued=NOW)
    assert token_from_address(f"complaints+{token}@complaints.example") == token
    assert token_from_address(f"<COMPLAINTS+{token.upper()}@COMPLAINTS.EXAMPLE>") == token
    assert token_from_address("complaints@complaints.example") is None
    assert token_from_address(f"sales+{token}@complaints.example") is None
    assert token_from_address("complaints+") is None
