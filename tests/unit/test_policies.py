"""Deadlines counted the way each regulator counts, on real calendars; and the remedy catalogue."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from activities.calendar import calendar
from domain.intake import Channel, Jurisdiction, Severity, SubjectKind
from domain.policies.deadlines import DefaultPolicy, FollowUpPolicy, Policies, Unit, add, business_days_between
from domain.policies.remedies import Catalogue
from domain.values import Money
from domain.vocabulary import DeadlineKind, RemedyKind

JAKARTA, LONDON, NEW_YORK = ZoneInfo("Asia/Jakarta"), ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


def end_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=zone)


def due(jurisdiction: Jurisdiction, channel: Channel, subject: SubjectKind, received: datetime) -> dict[str, datetime]:
    policy = Policies().policy(jurisdiction, channel, subject)
    found = policy.deadlines(received, calendar(jurisdiction, received.year, received.year + 1))
    return {d.kind.value: d.due_at for d in found} | {f"{d.kind.value}+": d.extension.due_at
                                                       for d in found if d.extension}


def test_a_written_complaint_on_the_friday_before_idul_fitri() -> None:
    # Friday 28 March 2025 is itself collective leave. Then: 29 Sat (Nyepi), 30 Sun, 31 Mar and 1 Apr Idul
    # Fitri, 2-4 Apr collective leave, 5-6 weekend, 7 Apr collective leave. Working days run 8, 9, 10, 11,
    # 14, 15, 16, 17 Apr; 18 is Good Friday; then 21 and 22 Apr: the 10th working day is 22 April.
    received = datetime(2025, 3, 28, 10, 0, tzinfo=JAKARTA)
    deadlines = due(Jurisdiction.ID, Channel.email, SubjectKind.order, received)
    assert deadlines["final_response"] == end_of(date(2025, 4, 22), JAKARTA)
    assert deadlines["assessment"] == end_of(date(2025, 4, 14), JAKARTA)  # 5th working day
    # Extended once by 10 more working days: 23-25, 28-30 Apr, 1 May is Labour Day, then 2, 5, 6, 7 May.
    assert deadlines["final_response+"].date() == date(2025, 5, 7)


def test_a_verbal_complaint_in_indonesia_has_five_working_days_and_no_extension() -> None:
    received = datetime(2025, 3, 28, 10, 0, tzinfo=JAKARTA)
    deadlines = due(Jurisdiction.ID, Channel.phone, SubjectKind.order, received)
    assert deadlines["final_response"] == end_of(date(2025, 4, 14), JAKARTA)
    assert "final_response+" not in deadlines


def test_a_uk_payment_complaint_around_christmas() -> None:
    # Received Friday 18 Dec 2026. Business days: 21-24 Dec, (25 Christmas, 28 Boxing Day observed), 29-31,
    # (1 Jan), 4-8 Jan, 11-13 Jan: the 15th is 13 January 2027; 35 with a holding reply: 10 February.
    received = datetime(2026, 12, 18, 16, 0, tzinfo=LONDON)
    deadlines = due(Jurisdiction.GB, Channel.email, SubjectKind.payment, received)
    assert deadlines["final_response"] == end_of(date(2027, 1, 13), LONDON)
    assert deadlines["final_response+"] == end_of(date(2027, 2, 10), LONDON)
    assert deadlines["assessment"] == end_of(date(2026, 12, 23), LONDON)  # close of the 3rd business day


def test_an_ordinary_uk_complaint_has_eight_weeks() -> None:
    received = datetime(2026, 12, 18, 16, 0, tzinfo=LONDON)
    deadlines = due(Jurisdiction.GB, Channel.web, SubjectKind.order, received)
    assert deadlines["final_response"] == end_of(date(2027, 2, 12), LONDON)


def test_the_cfpb_counts_calendar_days_and_allows_sixty_when_in_progress() -> None:
    received = datetime(2026, 11, 24, 12, 0, tzinfo=NEW_YORK)
    deadlines = due(Jurisdiction.US, Channel.phone, SubjectKind.service, received)
    assert deadlines["final_response"] == end_of(date(2026, 12, 9), NEW_YORK)
    assert deadlines["final_response+"] == end_of(date(2027, 1, 23), NEW_YORK)


def test_other_countries_use_the_configurable_default_with_their_own_holidays() -> None:
    received = datetime(2026, 12, 23, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    policy = Policies(default=DefaultPolicy(final_response=3, extension=None)).policy(
        Jurisdiction.DE, Channel.email, SubjectKind.order)
    [_, _, final] = policy.deadlines(received, calendar(Jurisdiction.DE, 2026, 2027))
    # 24 Dec is a working day in Germany's federal calendar; 25 and 26 Dec are holidays: 24, 28, 29.
    assert final.due_at.date() == date(2026, 12, 29) and final.extension is None


def test_a_warning_comes_one_business_day_before_the_deadline() -> None:
    received = datetime(2025, 3, 28, 10, 0, tzinfo=JAKARTA)
    policy = Policies().policy(Jurisdiction.ID, Channel.email, SubjectKind.order)
    final = next(d for d in policy.deadlines(received, calendar(Jurisdiction.ID, 2025, 2026))
                 if d.kind is DeadlineKind.final_response)
    assert final.warn_at == end_of(date(2025, 4, 21), JAKARTA)


def test_business_days_between_count_like_deadlines() -> None:
    cal = calendar(Jurisdiction.ID, 2025, 2026)
    start = datetime(2025, 3, 27, 10, 0, tzinfo=JAKARTA)
    assert business_days_between(start, start, cal) == 0
    assert business_days_between(start, add(start, 10, Unit.business_days, cal), cal) == 10
    assert business_days_between(start, datetime(2025, 4, 9, 9, 0, tzinfo=JAKARTA), cal) == 2


def test_a_follow_up_is_asked_after_three_working_days_and_answered_within_five() -> None:
    cal = calendar(Jurisdiction.GB, 2026, 2027)
    at, answer_by = FollowUpPolicy().plan(datetime(2026, 12, 23, 15, 0, tzinfo=LONDON), cal)
    assert at == datetime(2026, 12, 30, 9, 0, tzinfo=LONDON)  # 24, 29, 30 Dec
    assert answer_by == end_of(date(2027, 1, 7), LONDON)  # 31 Dec, (1 Jan), 4, 5, 6, 7 Jan
    assert business_days_between(at, answer_by, cal) == 5


def test_remedies_are_equivalent_options_not_only_money() -> None:
    options, default = Catalogue().quote(kinds=None, default=None, subject_kind=SubjectKind.order,
                                         subject_title="Late delivery", value=Money(amount_minor=450_000_00,
                                                                                    currency="IDR"),
                                         severity=Severity.high, jurisdiction=Jurisdiction.ID)
    assert [o.kind for o in options] == [RemedyKind.voucher, RemedyKind.discount, RemedyKind.refund]
    assert [o.id for o in options] == ["A", "B", "C"] and default == "A"
    by_kind = {o.kind: o.value.amount_minor for o in options}
    assert by_kind[RemedyKind.refund] == 450_000_00 * 125 // 100
    assert by_kind[RemedyKind.voucher] == 450_000_00 * 125 * 120 // 10_000
    assert all(isinstance(o.value.amount_minor, int) and o.value.currency == "IDR" for o in options)


@pytest.mark.parametrize("subject", list(SubjectKind))
def test_every_subject_gets_two_or_more_options_and_a_non_refund_default(subject: SubjectKind) -> None:
    options, default = Catalogue().quote(kinds=None, default=None, subject_kind=subject, subject_title="x",
                                         value=None, severity=Severity.low, jurisdiction=Jurisdiction.GB)
    assert len(options) >= 2 and {o.value.currency for o in options} == {"GBP"}
    assert next(o for o in options if o.id == default).kind is not RemedyKind.refund


def test_only_refunds_asked_for_means_a_refund_default() -> None:
    options, default = Catalogue().quote(kinds=[RemedyKind.refund, RemedyKind.voucher], default=RemedyKind.refund,
                                         subject_kind=SubjectKind.order, subject_title="x", value=None,
                                         severity=Severity.low, jurisdiction=Jurisdiction.US)
    assert next(o for o in options if o.id == default).kind is RemedyKind.refund
