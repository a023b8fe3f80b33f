"""Deadlines counted the way each regulator counts, on real calendars (the ``holidays`` package and the tz
database, built the way ``activities/calendar.py`` builds them); and the remedy catalogue."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import Deadline
from domain.intake import Channel, Jurisdiction, Severity, SubjectKind
from domain.policies.deadlines import (
    ZONES,
    Calendar,
    DefaultPolicy,
    FollowUpPolicy,
    Policies,
    Unit,
    add,
    back,
    business_days_between,
)
from domain.policies.remedies import CURRENCY, DEFAULT_KINDS, GOODWILL_BASE, Catalogue
from domain.values import Money
from domain.vocabulary import DeadlineKind, RemedyKind

JAKARTA, LONDON, NEW_YORK = ZoneInfo("Asia/Jakarta"), ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
BERLIN, SINGAPORE = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Singapore")
ACK, ASSESSMENT, FINAL = DeadlineKind.acknowledgement, DeadlineKind.assessment, DeadlineKind.final_response


def real_calendar(country: str, years: list[int], zone: ZoneInfo, **options: object) -> Calendar:
    days = holidays.country_holidays(country, years=years, **options)  # type: ignore[arg-type]
    return Calendar(name=f"{country} (holidays {holidays.__version__})", zone=zone, holidays=frozenset(days))


# Indonesia's collective leave (cuti bersama) closes businesses: it is the "government" category.
INDONESIA = real_calendar("ID", [2025, 2026], JAKARTA, categories=("public", "government"))
INDONESIA_PUBLIC_ONLY = real_calendar("ID", [2025, 2026], JAKARTA, categories=("public",))
# An FCA business day is not a bank holiday in that part of the UK: England and Wales here.
ENGLAND = real_calendar("GB", [2026, 2027], LONDON, subdiv="ENG")
UNITED_STATES = real_calendar("US", [2026, 2027], NEW_YORK)
GERMANY = real_calendar("DE", [2026, 2027], BERLIN)
SINGAPORE_CALENDAR = real_calendar("SG", [2026, 2027], SINGAPORE)


def end_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=zone)


def deadlines(jurisdiction: Jurisdiction, channel: Channel, subject: SubjectKind, received: datetime,
              calendar: Calendar, policies: Policies | None = None) -> dict[DeadlineKind, Deadline]:
    policy = (policies or Policies()).policy(jurisdiction, channel, subject)
    return {d.kind: d for d in policy.deadlines(received, calendar)}


# --- Indonesia (OJK) ---------------------------------------------------------------------------------------------

FRIDAY_BEFORE_IDUL_FITRI = datetime(2025, 3, 28, 10, 0, tzinfo=JAKARTA)


def test_the_calendar_knows_the_holidays_the_counting_below_relies_on() -> None:
    # Collective leave around Nyepi and Idul Fitri 1446 H, public holidays in between, Good Friday, Labour Day.
    for day in (date(2025, 3, 28), date(2025, 3, 31), date(2025, 4, 1), date(2025, 4, 2), date(2025, 4, 3),
                date(2025, 4, 4), date(2025, 4, 7), date(2025, 4, 18), date(2025, 5, 1)):
        assert not INDONESIA.is_business_day(day), day
    for day in (date(2025, 4, 8), date(2025, 4, 21), date(2025, 4, 22)):
        assert INDONESIA.is_business_day(day), day


def test_a_written_complaint_received_on_the_friday_before_idul_fitri_is_answered_by_22_april() -> None:
    # Received Friday 28 March 2025, itself collective leave (for Nyepi). Counting starts the day after:
    #   29 Mar Sat (Nyepi), 30 Sun, 31 Mar + 1 Apr Idul Fitri, 2-4 Apr collective leave, 5-6 weekend,
    #   7 Apr collective leave: no working day for ten days.
    #   Working days: 8 (1), 9 (2), 10 (3), 11 (4), 14 (5), 15 (6), 16 (7), 17 (8) April;
    #   18 Apr Good Friday, 19-20 weekend; 21 (9), 22 (10). The 10th working day is Tuesday 22 April 2025.
    found = deadlines(Jurisdiction.ID, Channel.email, SubjectKind.order, FRIDAY_BEFORE_IDUL_FITRI, INDONESIA)
    final = found[FINAL]
    assert final.due_at == end_of(date(2025, 4, 22), JAKARTA)
    assert "OJK POJK 22/2023" in final.rule and final.rule.startswith("10 business days")
    assert found[ACK].due_at == end_of(date(2025, 4, 8), JAKARTA)  # the 1st working day
    assert found[ASSESSMENT].due_at == end_of(date(2025, 4, 14), JAKARTA)  # the 5th


def test_a_written_complaint_in_indonesia_may_be_extended_once_by_ten_more_working_days() -> None:
    # From 22 April: 23 (1), 24 (2), 25 (3), 28 (4), 29 (5), 30 (6); 1 May Labour Day; 2 (7), 5 (8), 6 (9), 7 (10).
    final = deadlines(Jurisdiction.ID, Channel.email, SubjectKind.order, FRIDAY_BEFORE_IDUL_FITRI, INDONESIA)[FINAL]
    assert final.extension is not None
    assert final.extension.due_at == end_of(date(2025, 5, 7), JAKARTA)
    assert final.extension.warn_at == end_of(date(2025, 5, 6), JAKARTA)
    assert "extended once by 10 working days" in final.extension.rule


@pytest.mark.parametrize("channel", [Channel.phone, Channel.in_person])
def test_a_verbal_complaint_in_indonesia_has_five_working_days_and_no_extension(channel: Channel) -> None:
    # 8, 9, 10, 11, 14 April: the 5th working day.
    final = deadlines(Jurisdiction.ID, channel, SubjectKind.order, FRIDAY_BEFORE_IDUL_FITRI, INDONESIA)[FINAL]
    assert final.due_at == end_of(date(2025, 4, 14), JAKARTA)
    assert final.extension is None and "verbal complaints within 5 working days" in final.rule


@pytest.mark.parametrize("channel", [Channel.email, Channel.web, Channel.social])
def test_every_non_verbal_complaint_in_indonesia_counts_as_written(channel: Channel) -> None:
    final = deadlines(Jurisdiction.ID, channel, SubjectKind.service, FRIDAY_BEFORE_IDUL_FITRI, INDONESIA)[FINAL]
    assert final.due_at == end_of(date(2025, 4, 22), JAKARTA)


def test_without_collective_leave_the_count_would_end_a_week_earlier() -> None:
    # Public holidays only: 2, 3, 4 and 7 April count as working days, so the 10th working day is 15 April.
    # Why the calendar must include the "government" category.
    final = deadlines(Jurisdiction.ID, Channel.email, SubjectKind.order, FRIDAY_BEFORE_IDUL_FITRI,
                      INDONESIA_PUBLIC_ONLY)[FINAL]
    assert final.due_at == end_of(date(2025, 4, 15), JAKARTA)


def test_business_days_are_counted_on_the_jurisdictions_clock() -> None:
    # 18:00 UTC on Monday 7 April is 01:00 on Tuesday 8 April in Jakarta: the count starts on Wednesday.
    received = datetime(2025, 4, 7, 18, 0, tzinfo=ZoneInfo("UTC"))
    ack = deadlines(Jurisdiction.ID, Channel.email, SubjectKind.order, received, INDONESIA)[ACK]
    assert ack.due_at == end_of(date(2025, 4, 9), JAKARTA)
    assert ack.due_at.utcoffset() == timedelta(hours=7)


# --- United Kingdom (FCA DISP) -----------------------------------------------------------------------------------

FRIDAY_BEFORE_CHRISTMAS = datetime(2026, 12, 18, 16, 0, tzinfo=LONDON)


def test_the_english_calendar_closes_on_the_25th_26th_and_28th_of_december_2026() -> None:
    assert {date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28), date(2027, 1, 1)} <= ENGLAND.holidays
    assert ENGLAND.is_business_day(date(2026, 12, 24)) and ENGLAND.is_business_day(date(2026, 12, 29))


def test_an_ordinary_uk_complaint_has_eight_weeks() -> None:
    found = deadlines(Jurisdiction.GB, Channel.web, SubjectKind.order, FRIDAY_BEFORE_CHRISTMAS, ENGLAND)
    # Weeks count from the day of receipt, holidays or not: 18 Dec 2026 + 56 days.
    assert found[FINAL].due_at == end_of(date(2027, 2, 12), LONDON)
    assert found[FINAL].extension is None and "DISP 1.6.2R" in found[FINAL].rule


def test_eight_weeks_end_at_local_midnight_across_a_clock_change() -> None:
    received = datetime(2026, 3, 10, 9, 0, tzinfo=LONDON)  # GMT; due in British Summer Time
    final = deadlines(Jurisdiction.GB, Channel.email, SubjectKind.product, received, ENGLAND)[FINAL]
    assert final.due_at == end_of(date(2026, 5, 5), LONDON) and final.due_at.utcoffset() == timedelta(hours=1)


def test_a_uk_payment_complaint_around_christmas_has_fifteen_business_days() -> None:
    # Business days after Friday 18 Dec 2026: 21, 22, 23, 24 Dec (4); 25 Christmas, 26-27 weekend, 28 Boxing Day
    # (observed); 29, 30, 31 Dec (7); 1 Jan; 4-8 Jan (12); 11, 12, 13 Jan (15): Wednesday 13 January 2027.
    final = deadlines(Jurisdiction.GB, Channel.email, SubjectKind.payment, FRIDAY_BEFORE_CHRISTMAS, ENGLAND)[FINAL]
    assert final.due_at == end_of(date(2027, 1, 13), LONDON)
    assert "DISP 1.6.2AR" in final.rule


def test_a_uk_payment_complaint_with_a_holding_reply_has_thirty_five_business_days_from_receipt() -> None:
    # From 13 Jan (15): 14, 15 (17); 18-22 (22); 25-29 (27); 1-5 Feb (32); 8, 9, 10 Feb (35).
    final = deadlines(Jurisdiction.GB, Channel.email, SubjectKind.payment, FRIDAY_BEFORE_CHRISTMAS, ENGLAND)[FINAL]
    assert final.extension is not None and final.extension.due_at == end_of(date(2027, 2, 10), LONDON)
    assert "holding reply" in final.extension.rule


def test_a_uk_complaint_has_until_the_close_of_the_third_business_day_for_a_summary_resolution() -> None:
    found = deadlines(Jurisdiction.GB, Channel.email, SubjectKind.order, FRIDAY_BEFORE_CHRISTMAS, ENGLAND)
    assert found[ASSESSMENT].due_at == end_of(date(2026, 12, 23), LONDON)  # 21, 22, 23 Dec
    assert found[ACK].due_at == end_of(date(2026, 12, 21), LONDON)
    christmas_eve = datetime(2026, 12, 24, 11, 0, tzinfo=LONDON)
    assert deadlines(Jurisdiction.GB, Channel.email, SubjectKind.order, christmas_eve, ENGLAND)[ASSESSMENT].due_at == (
        end_of(date(2026, 12, 31), LONDON))  # 29, 30, 31 Dec


# --- United States (CFPB) ----------------------------------------------------------------------------------------


def test_the_cfpb_counts_fifteen_calendar_days_extendable_to_sixty() -> None:
    received = datetime(2026, 11, 25, 12, 0, tzinfo=NEW_YORK)  # the day before Thanksgiving
    found = deadlines(Jurisdiction.US, Channel.phone, SubjectKind.service, received, UNITED_STATES)
    final = found[FINAL]
    assert final.due_at == end_of(date(2026, 12, 10), NEW_YORK)  # calendar days: Thanksgiving counts
    assert final.extension is not None and final.extension.due_at == end_of(date(2027, 1, 24), NEW_YORK)
    assert found[ASSESSMENT].due_at == final.due_at
    assert found[ACK].due_at == end_of(date(2026, 11, 27), NEW_YORK)  # business days: Thanksgiving does not


def test_the_cfpb_warns_two_calendar_days_ahead() -> None:
    received = datetime(2026, 11, 25, 12, 0, tzinfo=NEW_YORK)
    final = deadlines(Jurisdiction.US, Channel.email, SubjectKind.payment, received, UNITED_STATES)[FINAL]
    assert final.warn_at == end_of(date(2026, 12, 8), NEW_YORK)
    assert final.extension is not None and final.extension.warn_at == end_of(date(2027, 1, 22), NEW_YORK)


# --- the default policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("jurisdiction", [j for j in Jurisdiction if j not in (Jurisdiction.ID, Jurisdiction.GB,
                                                                               Jurisdiction.US)])
def test_other_countries_use_the_default_policy(jurisdiction: Jurisdiction) -> None:
    policy = Policies().policy(jurisdiction, Channel.email, SubjectKind.order)
    assert policy.name == "default" and [r.amount for r in policy.rules] == [1, 5, 15]
    assert jurisdiction in ZONES and jurisdiction in CURRENCY


def test_the_default_policy_counts_business_days_on_the_countrys_own_calendar() -> None:
    received = datetime(2026, 12, 23, 9, 0, tzinfo=BERLIN)
    found = deadlines(Jurisdiction.DE, Channel.email, SubjectKind.order, received, GERMANY)
    # 24 Dec is a working day in Germany's federal calendar; 25 and 26 Dec are holidays; 1 Jan too.
    # 24, 28, 29, 30, 31 Dec (5), 4-8 Jan (10), 11-15 Jan (15).
    assert found[ASSESSMENT].due_at == end_of(date(2026, 12, 31), BERLIN)
    assert found[FINAL].due_at == end_of(date(2027, 1, 15), BERLIN)
    # The default extension: 10 more business days after the due date.
    assert found[FINAL].extension is not None
    assert found[FINAL].extension.due_at == end_of(date(2027, 1, 29), BERLIN)


def test_the_default_policy_is_configurable() -> None:
    house = Policies(default=DefaultPolicy(acknowledgement=2, assessment=3, final_response=10, extension=None,
                                           warn_before=2, name="house"))
    received = datetime(2026, 8, 5, 9, 0, tzinfo=SINGAPORE)  # Wednesday; Sunday 9 Aug is National Day
    found = deadlines(Jurisdiction.SG, Channel.email, SubjectKind.order, received, SINGAPORE_CALENDAR, house)
    # 6, 7 Aug; (8-9 weekend, 10 Aug National Day observed); 11, 12, 13, 14, 17, 18, 19, 20 Aug.
    assert found[ACK].due_at == end_of(date(2026, 8, 7), SINGAPORE)
    assert found[ASSESSMENT].due_at == end_of(date(2026, 8, 11), SINGAPORE)
    assert found[FINAL].due_at == end_of(date(2026, 8, 20), SINGAPORE) and found[FINAL].extension is None
    assert found[FINAL].warn_at == end_of(date(2026, 8, 18), SINGAPORE)  # two business days before
    assert found[FINAL].rule == "10 business days — house policy (configurable)"
    assert house.policy(Jurisdiction.SG, Channel.email, SubjectKind.order).name == "house"


def test_a_configured_default_does_not_touch_the_regulated_jurisdictions() -> None:
    house = Policies(default=DefaultPolicy(final_response=2, name="house"))
    assert house.policy(Jurisdiction.ID, Channel.email, SubjectKind.order).name == "OJK"
    assert house.policy(Jurisdiction.GB, Channel.email, SubjectKind.order).name == "FCA"
    assert house.policy(Jurisdiction.US, Channel.email, SubjectKind.order).name == "CFPB"


# --- warnings --------------------------------------------------------------------------------------------------


def test_a_warning_comes_one_business_day_before_the_deadline() -> None:
    found = deadlines(Jurisdiction.ID, Channel.email, SubjectKind.order, FRIDAY_BEFORE_IDUL_FITRI, INDONESIA)
    assert found[FINAL].warn_at == end_of(date(2025, 4, 21), JAKARTA)
    assert found[ASSESSMENT].warn_at == end_of(date(2025, 4, 11), JAKARTA)  # Friday before Monday 14th
    uk = deadlines(Jurisdiction.GB, Channel.email, SubjectKind.payment, FRIDAY_BEFORE_CHRISTMAS, ENGLAND)
    assert uk[FINAL].warn_at == end_of(date(2027, 1, 12), LONDON)
    assert uk[FINAL].extension is not None and uk[FINAL].extension.warn_at == end_of(date(2027, 2, 9), LONDON)


def test_a_warning_skips_back_over_holidays_to_the_last_business_day() -> None:
    christmas_eve = datetime(2026, 12, 24, 11, 0, tzinfo=LONDON)
    ack = deadlines(Jurisdiction.GB, Channel.email, SubjectKind.order, christmas_eve, ENGLAND)[ACK]
    assert ack.due_at == end_of(date(2026, 12, 29), LONDON)
    assert ack.warn_at == end_of(date(2026, 12, 24), LONDON)  # not 28, 27, 26 or 25 Dec


def test_a_warning_before_an_eight_week_deadline_is_a_business_day_before_it() -> None:
    final = deadlines(Jurisdiction.GB, Channel.web, SubjectKind.order, FRIDAY_BEFORE_CHRISTMAS, ENGLAND)[FINAL]
    assert final.warn_at == end_of(date(2027, 2, 11), LONDON)


def test_back_counts_calendar_days_as_they_come() -> None:
    due = end_of(date(2026, 12, 29), LONDON)
    assert back(due, 2, Unit.calendar_days, ENGLAND) == end_of(date(2026, 12, 27), LONDON)
    assert back(due, 1, Unit.business_days, ENGLAND) == end_of(date(2026, 12, 24), LONDON)


# --- counting helpers -------------------------------------------------------------------------------------------


def test_business_days_between_count_like_deadlines() -> None:
    start = datetime(2025, 3, 27, 10, 0, tzinfo=JAKARTA)
    assert business_days_between(start, start, INDONESIA) == 0
    assert business_days_between(start, add(start, 10, Unit.business_days, INDONESIA), INDONESIA) == 10
    assert business_days_between(start, datetime(2025, 4, 9, 9, 0, tzinfo=JAKARTA), INDONESIA) == 2
    assert business_days_between(datetime(2025, 4, 9, 9, 0, tzinfo=JAKARTA), start, INDONESIA) == -2


@given(st.dates(date(2024, 10, 1), date(2027, 3, 31)), st.integers(-400, 400),
       st.sampled_from(["INDONESIA", "ENGLAND"]), st.frozensets(st.integers(0, 6), max_size=3))
def test_business_days_are_counted_as_the_day_by_day_count_would(start: date, span: int, place: str,
                                                                 weekend: frozenset[int]) -> None:
    """The count by whole weeks and a search of the holidays gives what walking day by day gives, whatever the
    span, the holidays (weekend ones included) and the weekend."""
    calendar = {"INDONESIA": INDONESIA, "ENGLAND": ENGLAND}[place]
    calendar = Calendar(name=calendar.name, zone=calendar.zone, holidays=calendar.holidays, weekend=weekend)
    end = start + timedelta(days=span)
    first, last = min(start, end), max(start, end)
    walked = sum(1 for n in range(1, (last - first).days + 1) if calendar.is_business_day(first + timedelta(days=n)))
    moment = datetime.combine(start, time(12), tzinfo=calendar.zone)
    assert business_days_between(moment, datetime.combine(end, time(12), tzinfo=calendar.zone), calendar) == (
        walked if end >= start else -walked)


def test_calendar_days_and_weeks_count_from_the_day_of_receipt() -> None:
    start = datetime(2026, 12, 18, 23, 30, tzinfo=LONDON)
    assert add(start, 0, Unit.calendar_days, ENGLAND) == end_of(date(2026, 12, 18), LONDON)
    assert add(start, 7, Unit.calendar_days, ENGLAND) == add(start, 1, Unit.weeks, ENGLAND)


# --- follow-up -------------------------------------------------------------------------------------------------


def test_a_follow_up_is_asked_on_the_third_business_day_and_answered_within_five() -> None:
    at, answer_by = FollowUpPolicy().plan(datetime(2026, 12, 23, 15, 0, tzinfo=LONDON), ENGLAND)
    assert at == datetime(2026, 12, 30, 9, 0, tzinfo=LONDON)  # 24, 29, 30 Dec
    assert answer_by == end_of(date(2027, 1, 7), LONDON)  # 31 Dec, (1 Jan), 4, 5, 6, 7 Jan
    assert business_days_between(at, answer_by, ENGLAND) == 5


def test_the_follow_up_plan_is_configurable() -> None:
    policy = FollowUpPolicy(after_business_days=1, answer_within_business_days=2, hour=14)
    at, answer_by = policy.plan(datetime(2025, 3, 27, 16, 0, tzinfo=JAKARTA), INDONESIA)
    assert at == datetime(2025, 4, 8, 14, 0, tzinfo=JAKARTA)  # the first working day after Idul Fitri's leave
    assert answer_by == end_of(date(2025, 4, 10), JAKARTA)


# --- the remedy catalogue ---------------------------------------------------------------------------------------


def quote(subject: SubjectKind = SubjectKind.order, *, kinds: list[RemedyKind] | None = None,
          default: RemedyKind | None = None, value: Money | None = None, severity: Severity = Severity.low,
          jurisdiction: Jurisdiction = Jurisdiction.GB) -> tuple[dict[RemedyKind, int], RemedyKind]:
    options, default_id = Catalogue().quote(kinds=kinds, default=default, subject_kind=subject,
                                            subject_title="Late delivery", value=value, severity=severity,
                                            jurisdiction=jurisdiction)
    assert [o.id for o in options] == [chr(ord("A") + i) for i in range(len(options))]
    assert all(type(o.value.amount_minor) is int for o in options)
    [chosen] = [o for o in options if o.id == default_id]
    return {o.kind: o.value.amount_minor for o in options}, chosen.kind


@pytest.mark.parametrize("subject", list(SubjectKind))
def test_every_subject_is_offered_at_least_two_kinds_of_remedy(subject: SubjectKind) -> None:
    by_kind, _ = quote(subject)
    assert len(by_kind) >= 2 and list(by_kind) == list(DEFAULT_KINDS[subject])


@pytest.mark.parametrize("subject", list(SubjectKind))
def test_the_default_remedy_is_not_a_refund(subject: SubjectKind) -> None:
    _, default = quote(subject)
    assert default is not RemedyKind.refund


def test_a_payment_complaint_lists_a_refund_first_but_defaults_to_the_next_option() -> None:
    by_kind, default = quote(SubjectKind.payment)
    assert next(iter(by_kind)) is RemedyKind.refund and default is RemedyKind.service_credit


def test_only_a_refund_on_offer_means_a_refund_default() -> None:
    by_kind, default = quote(kinds=[RemedyKind.refund])
    assert list(by_kind) == [RemedyKind.refund] and default is RemedyKind.refund


def test_a_requested_default_is_honoured_even_if_it_is_a_refund() -> None:
    _, default = quote(kinds=[RemedyKind.refund, RemedyKind.voucher], default=RemedyKind.refund)
    assert default is RemedyKind.refund
    _, default = quote(kinds=[RemedyKind.refund, RemedyKind.voucher])
    assert default is RemedyKind.voucher


def test_the_same_kind_asked_twice_is_offered_once() -> None:
    by_kind, _ = quote(kinds=[RemedyKind.voucher, RemedyKind.voucher, RemedyKind.repair])
    assert list(by_kind) == [RemedyKind.voucher, RemedyKind.repair]


def test_options_are_equivalent_by_kind_and_scaled_by_severity() -> None:
    value = Money(amount_minor=45_000_000, currency="IDR")  # IDR 450,000.00
    by_kind, _ = quote(kinds=list(RemedyKind), value=value, severity=Severity.high, jurisdiction=Jurisdiction.ID)
    high = 45_000_000 * 125 // 100
    assert by_kind == {
        RemedyKind.voucher: high * 120 // 100, RemedyKind.replacement: high, RemedyKind.repair: high,
        RemedyKind.discount: high * 120 // 100, RemedyKind.service_credit: high * 110 // 100,
        RemedyKind.refund: high,
    }


@pytest.mark.parametrize(("severity", "percent"), [(Severity.low, 100), (Severity.medium, 110),
                                                   (Severity.high, 125), (Severity.critical, 150)])
def test_more_severe_complaints_are_offered_more(severity: Severity, percent: int) -> None:
    by_kind, _ = quote(kinds=[RemedyKind.refund, RemedyKind.voucher], severity=severity)
    assert by_kind[RemedyKind.refund] == GOODWILL_BASE["GBP"] * percent // 100
    assert by_kind[RemedyKind.voucher] == GOODWILL_BASE["GBP"] * percent * 120 // 10_000


def test_amounts_stay_whole_minor_units_rounded_down() -> None:
    by_kind, _ = quote(kinds=[RemedyKind.voucher, RemedyKind.service_credit], value=Money(amount_minor=333,
                                                                                           currency="GBP"),
                       severity=Severity.medium)
    assert by_kind == {RemedyKind.voucher: 439, RemedyKind.service_credit: 402}  # 439.56 and 402.93, floored


def test_the_orders_currency_wins_over_the_jurisdictions() -> None:
    options, _ = Catalogue().quote(kinds=None, default=None, subject_kind=SubjectKind.order, subject_title="x",
                                   value=Money(amount_minor=10_000, currency="EUR"), severity=Severity.low,
                                   jurisdiction=Jurisdiction.GB)
    assert {o.value.currency for o in options} == {"EUR"}


@pytest.mark.parametrize("jurisdiction", list(Jurisdiction))
def test_without_a_known_value_the_goodwill_base_is_in_the_local_currency(jurisdiction: Jurisdiction) -> None:
    options, _ = Catalogue().quote(kinds=[RemedyKind.refund, RemedyKind.voucher], default=None,
                                   subject_kind=SubjectKind.order, subject_title="x", value=None,
                                   severity=Severity.low, jurisdiction=jurisdiction)
    currency = CURRENCY[jurisdiction]
    assert options[0].value == Money(amount_minor=GOODWILL_BASE[currency], currency=currency)


def test_each_option_describes_itself_in_its_currency() -> None:
    options, _ = Catalogue().quote(kinds=[RemedyKind.replacement, RemedyKind.voucher], default=None,
                                   subject_kind=SubjectKind.product, subject_title="Kettle", value=None,
                                   severity=Severity.low, jurisdiction=Jurisdiction.JP)
    assert [o.description for o in options] == ["A replacement for 'Kettle', sent at our cost (worth JPY 4,500)",
                                                "A voucher worth JPY 5,400 for your next order"]


def test_a_default_remedy_outside_the_usual_kinds_is_offered_too() -> None:
    # cmd.Assess accepts default_remedy without remedies; the workflow then quotes with kinds=None.
    by_kind, default = quote(SubjectKind.product, default=RemedyKind.voucher)
    assert default is RemedyKind.voucher and len(by_kind) >= 2


def test_any_value_the_intake_accepts_can_be_quoted() -> None:
    # VND 600 billion (about USD 24,000), critical: a voucher at 150% x 120% is 1.08 x 10**12 minor units.
    by_kind, _ = quote(SubjectKind.order, value=Money(amount_minor=600_000_000_000, currency="VND"),
                       severity=Severity.critical, jurisdiction=Jurisdiction.VN)
    assert len(by_kind) >= 2
