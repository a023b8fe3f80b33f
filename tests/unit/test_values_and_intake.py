"""What a complaint may say and what it may not smuggle in: field by field, without a server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.errors import field_errors, validate_json
from domain.intake import ComplaintIntake, check_timing
from domain.values import Money

VALID = json.loads((Path(__file__).parent.parent.parent / "examples" / "late-delivery.json").read_text())
INTAKE = TypeAdapter(ComplaintIntake)


def refusal(data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as error:
        validate_json(INTAKE, json.dumps(data) if not isinstance(data, bytes) else data)
    return {e.field: e.reason for e in field_errors(error.value)}


def with_(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def test_a_complaint_in_the_examples_is_valid() -> None:
    intake = validate_json(INTAKE, json.dumps(VALID))
    assert intake.customer.id == "cust-4471" and intake.occurred_at.tzinfo == timezone.utc


def test_text_is_kept_verbatim_even_when_it_looks_like_an_attack() -> None:
    text = "'; DROP TABLE complaint_events; --\n<script>alert(1)</script>\t  trailing  "
    assert validate_json(INTAKE, json.dumps(with_(description=text))).description == text


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f", "\x85"])
def test_control_characters_are_refused_naming_where(bad: str) -> None:
    reasons = refusal(with_(description=f"before{bad}after"))
    assert reasons["description"].startswith("contains a control character")


def test_a_name_may_not_span_lines_though_a_description_may() -> None:
    assert "control character" in refusal(with_(customer={"id": "c-1", "name": "Siti\nRahma"}))["customer.name"]
    validate_json(INTAKE, json.dumps(with_(description="line one\nline two\r\n\ttabbed")))


def test_a_lone_surrogate_is_refused_by_field() -> None:
    raw = json.dumps(VALID).replace("Pesanan", "Pe\\ud800sanan").encode()
    assert "description" in refusal(raw)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_is_refused(text: str) -> None:
    assert "description" in refusal(with_(description=text))


def test_text_is_bounded_in_bytes_of_utf8() -> None:
    validate_json(INTAKE, json.dumps(with_(description="é" * 10_000)))
    assert refusal(with_(description="é" * 10_000 + "x"))["description"] == "is 20001 bytes of UTF-8; the limit is 20000"


@pytest.mark.parametrize(("field", "value"), [
    ("channel", "fax"), ("severity", 3), ("jurisdiction", "Atlantis"), ("jurisdiction", "id"),
    ("complaint_id", "has spaces"), ("complaint_id", 42), ("occurred_at", 1795556763),
    ("occurred_at", "2026-11-10T09:30:00"), ("occurred_at", "1999-12-31T23:59:59Z"), ("priority", "urgent"),
])
def test_each_wrong_field_is_named(field: str, value: Any) -> None:
    assert field in refusal(with_(**{field: value}))


@pytest.mark.parametrize("missing", ["customer", "contact", "channel", "subject", "description", "severity",
                                     "jurisdiction", "occurred_at", "complaint_id"])
def test_each_missing_field_is_named(missing: str) -> None:
    assert refusal({k: v for k, v in VALID.items() if k != missing}) == {missing: "Field required"}


def test_several_wrong_fields_are_all_named_at_once() -> None:
    data = {k: v for k, v in VALID.items() if k != "customer"} | {"channel": "fax", "jurisdiction": "XX"}
    assert set(refusal(data)) == {"customer", "channel", "jurisdiction"}


def test_a_contact_needs_at_least_one_way_to_reach_the_customer() -> None:
    assert "contact" in refusal(with_(contact={}))


@pytest.mark.parametrize("amount", [-1, 12.5, 1.0, "100", True, 10**13])
def test_money_is_whole_non_negative_minor_units(amount: Any) -> None:
    with pytest.raises(ValidationError):
        Money.model_validate_json(json.dumps({"amount_minor": amount, "currency": "IDR"}))


def test_money_reads_in_its_currency() -> None:
    assert str(Money(amount_minor=123456, currency="GBP")) == "GBP 1,234.56"
    assert str(Money(amount_minor=4500, currency="JPY")) == "JPY 4,500"


def test_received_before_it_happened_is_refused_on_received_at() -> None:
    assert refusal(with_(received_at="2026-11-01T00:00:00Z")) == {"received_at": "is before occurred_at"}


def test_timing_against_a_clock() -> None:
    intake = validate_json(INTAKE, json.dumps(VALID))
    assert check_timing(intake, intake.occurred_at + timedelta(days=1)) == []
    future = check_timing(intake, intake.occurred_at - timedelta(days=1))
    assert [(p.field, p.reason) for p in future] == [("occurred_at", "is in the future")]
    ancient = check_timing(intake, intake.occurred_at + timedelta(days=7 * 366))
    assert [(p.field, p.reason) for p in ancient] == [("occurred_at", "is more than six years ago")]
    late = intake.model_copy(update={"received_at": datetime(2026, 11, 11, tzinfo=timezone.utc)})
    assert [p.field for p in check_timing(late, datetime(2028, 1, 1, tzinfo=timezone.utc))] == ["received_at"]
