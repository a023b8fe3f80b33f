"""The customer's side without servers: page links (signed, expiring, single-purpose, one spelling each), an
issuer trusted for some roles only (the gateway's), the page's words complete in every language, and a reply's
text and headers read as the customer wrote them."""

from __future__ import annotations

import base64
import json
import re
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities import templates
from customer import links
from customer.inbound import parse
from customer.mailboxes import addressed_to_reply, inbox_from
from domain.vocabulary import RemedyKind
from identity.tokens import IssuerKey, TrustedIssuers, Unauthenticated

KEY = b"a-link-key-of-at-least-16-bytes"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LINK = links.PageLink("C-1001", "remedy", 12, NOW + timedelta(days=7))


def test_a_link_verifies_to_exactly_what_was_signed_until_it_expires() -> None:
    token = LINK.sign(KEY)
    assert links.verify(token, KEY, now=NOW) == LINK
    assert LINK.url("https://care.example.com/", KEY) == f"https://care.example.com/r/{token}"
    with pytest.raises(links.ForgedLink) as expired:
        links.verify(token, KEY, now=LINK.expires)
    assert expired.value.reason == "expired"


def test_a_link_signed_with_another_key_or_altered_anywhere_is_refused() -> None:
    token = LINK.sign(KEY)
    with pytest.raises(links.ForgedLink) as other:
        links.verify(token, b"another-key-16-bytes-or-more", now=NOW)
    assert other.value.reason == "bad signature"
    for i in range(len(token)):
        if token[i] == ".":
            continue
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        with pytest.raises(links.ForgedLink):
            links.verify(changed, KEY, now=NOW)


def test_one_links_purpose_offer_or_complaint_cannot_be_turned_into_anothers() -> None:
    body, mac = LINK.sign(KEY).split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for change in ({"p": "rating"}, {"r": 13}, {"c": "C-1002"}, {"e": fields["e"] + 86_400}):
        forged = base64.urlsafe_b64encode(json.dumps({**fields, **change}).encode()).rstrip(b"=").decode()
        with pytest.raises(links.ForgedLink) as refused:
            links.verify(f"{forged}.{mac}", KEY, now=NOW)
        assert refused.value.reason == "bad signature"


@given(st.text(alphabet=string.printable, max_size=500))
def test_any_other_text_is_refused_as_a_link_never_crashing(text: str) -> None:
    with pytest.raises(links.ForgedLink):
        links.verify(text, KEY, now=NOW)


def test_a_link_has_one_spelling_padding_or_a_second_encoding_is_malformed() -> None:
    token = LINK.sign(KEY)
    for variant in (token + "=", token.replace(".", ".="), " " + token, token + "\n", "x" * 401):
        with pytest.raises(links.ForgedLink) as refused:
            links.verify(variant, KEY, now=NOW)
        assert refused.value.reason in ("malformed", "bad signature")


def test_a_short_key_is_refused_for_signing_and_verifying() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        LINK.sign(b"short")
    with pytest.raises(ValueError, match="16 bytes"):
        links.verify(LINK.sign(KEY), b"short", now=NOW)


def test_an_issuer_trusted_for_the_customer_role_only_cannot_vouch_for_staff() -> None:
    gateway = IssuerKey.generate("https://gateway.example")
    trusted = TrustedIssuers.parse(json.dumps([gateway.trusted(roles=["customer"])]))
    assert trusted.verify(gateway.issue("cust-1", "customer", now=NOW), NOW).name == "customer:cust-1"
    for role in ("agent", "supervisor", "intake", "auditor"):
        with pytest.raises(Unauthenticated, match="trusted only for the role"):
            trusted.verify(gateway.issue("ana", role, now=NOW), NOW)
    with pytest.raises(ValueError, match="roles must be a list of roles"):
        TrustedIssuers.parse(json.dumps([{**gateway.trusted(), "roles": ["root"]}]))
    with pytest.raises(ValueError, match="roles must be a list of roles"):
        TrustedIssuers.parse(json.dumps([{**gateway.trusted(), "roles": "customer"}]))


@pytest.mark.parametrize("language", templates.languages())
def test_every_language_has_every_word_of_the_page_and_a_name_for_every_remedy(language: str) -> None:
    words, english = templates.page_words(language), templates.page_words("en")
    assert set(words) == set(english), f"{language}/page.toml: missing {set(english) - set(words)}"
    assert set(words["kinds"]) == {k.value for k in RemedyKind}
    assert words["lang"] == language
    for key, text in words.items():
        if isinstance(text, str):
            placeholders = set(re.findall(r"{(\w+)}", text))
            assert placeholders == set(re.findall(r"{(\w+)}", english[key])), f"{language}: {key}"


def test_a_reply_without_a_message_id_gets_one_from_its_bytes_and_an_oversized_one_is_cut() -> None:
    raw = ("To: complaints+abc@complaints.localhost\r\nSubject: Re\r\n\r\n" + "kata " * 6000).encode()
    reply = parse(raw)
    assert re.fullmatch(r"<[0-9a-f]{40}@no-message-id\.invalid>", reply.message_id)
    assert parse(raw).message_id == reply.message_id  # the same bytes, the same id: read twice, kept once
    assert len(reply.text.encode()) <= 20_000
    assert reply.text.endswith("[cut: the message was longer than the log keeps]")


@pytest.mark.parametrize(("headers", "expected"), [
    ("Delivered-To: complaints+abc@d.example\nTo: x@y.example", True),
    ("To: Care <complaints@d.example>", True),
    ("To: COMPLAINTS+ABC@d.example", True),
    ("To: siti@contoh.co.id\nReply-To: complaints+abc@d.example", False),  # our own mail to a customer
    ("To: complaints-not@d.example", False),
    ("To: siti@contoh.co.id\nCc: complaints+abc@d.example", True),
])
def test_a_message_is_for_the_complaints_mailbox_by_whom_it_was_delivered_to(headers: str, expected: bool) -> None:
    assert addressed_to_reply((headers + "\nSubject: s\n\nbody").encode()) is expected


@pytest.mark.parametrize(("setting", "error"), [
    ("imaps://host.example/INBOX", "user@host"),
    ("imaps://u@host.example/INBOX", "COMPLAINTS_IMAP_PASSWORD"),
    ("pop3://u@host.example", "not maildir"),
])
def test_an_inbound_setting_that_cannot_work_is_refused_naming_what_is_wrong(setting: str, error: str) -> None:
    password: Any = None if "PASSWORD" in error else "p"
    with pytest.raises(ValueError, match=error):
        inbox_from(setting, password)
