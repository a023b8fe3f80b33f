"""Regulators' deadlines, counted the way each rule counts.

Pure functions over a :class:`Calendar` (which days are business days, in which time zone). The
calendar comes from the ``holidays`` package and the time-zone database, both of which change with
upgrades, so deadlines are computed in an activity at intake and recorded in ``SlaDeadlinesSet``:
replaying a workflow never recounts them.

A deadline falls at the end (23:59:59.999999 local time) of its last allowed day. Counting in business
days starts on the first business day after the day of receipt, as DISP and POJK both count
("within N working days after receipt"); calendar days and weeks count from the day of receipt.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import cached_property

from domain.events import Deadline, Extension
from domain.intake import Channel, Jurisdiction, SubjectKind
from domain.vocabulary import DeadlineKind


class Unit(StrEnum):
    business_days = "business_days"
    calendar_days = "calendar_days"
    weeks = "weeks"


@dataclass(frozen=True)
class Calendar:
    """Business days of one place: weekends and public holidays, in its time zone."""

    name: str
    zone: tzinfo
    holidays: frozenset[date] = frozenset()
    weekend: frozenset[int] = frozenset({5, 6})

    def is_business_day(self, day: date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    @cached_property
    def _weekday_holidays(self) -> tuple[date, ...]:
        """The holidays that fall on a weekday, in order (those on a weekend are not business days anyway)."""
        return tuple(sorted(day for day in self.holidays if day.weekday() not in self.weekend))

    def business_days_after(self, first: date, last: date) -> int:
        """Business days in (first, last]: whole weeks by arithmetic, the rest of a week day by day, less the
        weekday holidays in between (the report counts two spans for each of a million complaints)."""
        weeks, rest = divmod((last - first).days, 7)
        count = weeks * (7 - len(self.weekend))
        weekday = first.weekday()
        for step in range(1, rest + 1):
            if (weekday + step) % 7 not in self.weekend:
                count += 1
        holidays = self._weekday_holidays
        return count - (bisect_right(holidays, last) - bisect_right(holidays, first))


def _end_of(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=zone)


def add(start: datetime, amount: int, unit: Unit, calendar: Calendar) -> datetime:
    """The end of the ``amount``-th day (or week) after ``start``, as ``unit`` counts on ``calendar``."""
    day = start.astimezone(calendar.zone).date()
    if unit is Unit.calendar_days:
        return _end_of(day + timedelta(days=amount), calendar.zone)
    if unit is Unit.weeks:
        return _end_of(day + timedelta(weeks=amount), calendar.zone)
    counted = 0
    while counted < amount:
        day += timedelta(days=1)
        if calendar.is_business_day(day):
            counted += 1
    return _end_of(day, calendar.zone)


def business_days_between(start: datetime, end: datetime, calendar: Calendar) -> int:
    """Business days from ``start`` to ``end``, counted as deadlines count them: the days after the start's
    local date, up to and including the end's (0 on the same day; negative if ``end`` is earlier)."""
    first, last = start.astimezone(calendar.zone).date(), end.astimezone(calendar.zone).date()
    if last < first:
        return -business_days_between(end, start, calendar)
    return calendar.business_days_after(first, last)


def back(due: datetime, amount: int, unit: Unit, calendar: Calendar) -> datetime:
    """``amount`` days before ``due`` (business days skip weekends and holidays): when to warn."""
    moment = due.astimezone(calendar.zone)
    if unit is not Unit.business_days:
        return moment - timedelta(days=amount)
    counted = 0
    while counted < amount:
        moment -= timedelta(days=1)
        if calendar.is_business_day(moment.date()):
            counted += 1
    return moment


@dataclass(frozen=True)
class Rule:
    """One deadline: ``amount`` ``unit`` after receipt, with its source, and an optional one-off extension
    (``extend_to`` more units counted from receipt, or ``extend_by`` more from the original due date)."""

    kind: DeadlineKind
    amount: int
    unit: Unit
    source: str
    extend_by: int | None = None
    extend_to: int | None = None
    extension_source: str | None = None

    def describe(self) -> str:
        unit = self.unit.value.replace("_", " ")
        return f"{self.amount} {unit.removesuffix('s') if self.amount == 1 else unit} — {self.source}"


@dataclass(frozen=True)
class Policy:
    """A jurisdiction's rules for one complaint, picked by channel and subject where the rule differs."""

    name: str
    rules: tuple[Rule, ...]
    warn_before: int = 1
    warn_unit: Unit = Unit.business_days

    #: Deadlines the regulator counts from the first receipt even after a reopening (its clock keeps running);
    #: every other deadline of a reopened complaint is counted again from the reopening.
    from_receipt: frozenset[DeadlineKind] = frozenset()
    #: Why a reopened complaint's deadlines fall where they do.
    reopen_source: str = "house rule: a reopened complaint is answered as a new one, counted from the reopening"

    def deadlines(self, received_at: datetime, calendar: Calendar) -> list[Deadline]:
        return [self._deadline(rule, received_at, calendar) for rule in self.rules]

    def reopened(self, received_at: datetime, reopened_at: datetime, calendar: Calendar) -> list[Deadline]:
        """The assessment and final-response deadlines of a complaint reopened at ``reopened_at``, each
        saying how it was counted."""
        found = []
        for rule in self.rules:
            if rule.kind is DeadlineKind.acknowledgement:
                continue  # the reopening is the customer's answer to our follow-up: nothing to acknowledge
            if rule.kind in self.from_receipt:
                note = "counted from the first receipt: reopening does not restart the regulator's clock"
                found.append(self._deadline(rule, received_at, calendar, note))
            else:
                found.append(self._deadline(rule, reopened_at, calendar, self.reopen_source))
        return found

    def _deadline(self, rule: Rule, start: datetime, calendar: Calendar, note: str | None = None) -> Deadline:
        due = add(start, rule.amount, rule.unit, calendar)
        extension = None
        if rule.extend_by is not None or rule.extend_to is not None:
            if rule.extend_to is not None:
                extended = add(start, rule.extend_to, rule.unit, calendar)
            else:
                extended = add(due, rule.extend_by or 0, rule.unit, calendar)
            extension = Extension(
                due_at=extended,
                warn_at=back(extended, self.warn_before, self.warn_unit, calendar),
                rule=rule.extension_source or rule.source,
            )
        return Deadline(kind=rule.kind, due_at=due, warn_at=back(due, self.warn_before, self.warn_unit, calendar),
                        rule=rule.describe() + (f"; {note}" if note else ""), extension=extension)


def indonesia(channel: Channel, subject: SubjectKind) -> Policy:
    """OJK, POJK 22/2023 on consumer protection in the financial services sector (complaint handling):
    a verbal complaint is followed up within 5 working days, a written one within 10 working days after
    receipt; the written deadline may be extended once by 10 working days, with written notice to the
    customer before it runs out. Acknowledgement and assessment times are house rules."""
    if channel.is_verbal:
        final = Rule(DeadlineKind.final_response, 5, Unit.business_days,
                     "OJK POJK 22/2023: verbal complaints within 5 working days")
        assess = Rule(DeadlineKind.assessment, 3, Unit.business_days, "house rule: assessed within 3 working days")
    else:
        final = Rule(DeadlineKind.final_response, 10, Unit.business_days,
                     "OJK POJK 22/2023: written complaints within 10 working days",
                     extend_by=10,
                     extension_source="OJK POJK 22/2023: extended once by 10 working days with notice")
        assess = Rule(DeadlineKind.assessment, 5, Unit.business_days, "house rule: assessed within 5 working days")
    ack = Rule(DeadlineKind.acknowledgement, 1, Unit.business_days, "house rule: acknowledged within 1 working day")
    return Policy("OJK", (ack, assess, final), reopen_source=(
        "a reopened complaint is answered as a new one, counted from the reopening (POJK 22/2023 counts from a "
        "complete complaint; the customer's new objection is one)"))


def united_kingdom(channel: Channel, subject: SubjectKind) -> Policy:
    """FCA Handbook DISP 1.6: a prompt written acknowledgement (DISP 1.6.1R) and a final response by the end
    of eight weeks after receipt (DISP 1.6.2R). A complaint resolved by the close of the third business day
    after receipt may instead get a summary resolution communication (DISP 1.5.4R): the assessment
    deadline marks that window. Payment services and e-money complaints: final response by the end of 15
    business days, or 35 with a holding reply that says why (DISP 1.6.2AR)."""
    ack = Rule(DeadlineKind.acknowledgement, 1, Unit.business_days,
               "FCA DISP 1.6.1R: prompt acknowledgement (house rule: 1 business day)")
    assess = Rule(DeadlineKind.assessment, 3, Unit.business_days,
                  "FCA DISP 1.5.4R: summary resolution by close of the 3rd business day")
    if subject is SubjectKind.payment:
        final = Rule(DeadlineKind.final_response, 15, Unit.business_days,
                     "FCA DISP 1.6.2AR: payment services, 15 business days",
                     extend_to=35, extension_source="FCA DISP 1.6.2AR: 35 business days with a holding reply")
    else:
        final = Rule(DeadlineKind.final_response, 8, Unit.weeks, "FCA DISP 1.6.2R: final response within 8 weeks")
    # DISP counts from receipt of the complaint: reopening it does not give the firm a new eight weeks.
    return Policy("FCA", (ack, assess, final), from_receipt=frozenset({DeadlineKind.final_response}))


def united_states(channel: Channel, subject: SubjectKind) -> Policy:
    """CFPB company portal: companies respond within 15 calendar days; where the response says the
    complaint is in progress, the final response is due within 60 calendar days of receipt."""
    ack = Rule(DeadlineKind.acknowledgement, 1, Unit.business_days, "house rule: acknowledged within 1 business day")
    assess = Rule(DeadlineKind.assessment, 15, Unit.calendar_days, "CFPB: response within 15 calendar days")
    final = Rule(DeadlineKind.final_response, 15, Unit.calendar_days, "CFPB: response within 15 calendar days",
                 extend_to=60, extension_source="CFPB: final response within 60 calendar days when in progress")
    return Policy("CFPB", (ack, assess, final), warn_before=2, warn_unit=Unit.calendar_days)


@dataclass(frozen=True)
class DefaultPolicy:
    """For jurisdictions without a specific rule: business days, configurable (COMPLAINTS_DEFAULT_POLICY)."""

    acknowledgement: int = 1
    assessment: int = 5
    final_response: int = 15
    extension: int | None = 10
    warn_before: int = 1
    name: str = "default"

    def __call__(self, channel: Channel, subject: SubjectKind) -> Policy:
        source = f"{self.name} policy (configurable)"
        return Policy(self.name, (
            Rule(DeadlineKind.acknowledgement, self.acknowledgement, Unit.business_days, source),
            Rule(DeadlineKind.assessment, self.assessment, Unit.business_days, source),
            Rule(DeadlineKind.final_response, self.final_response, Unit.business_days, source,
                 extend_by=self.extension, extension_source=f"{source}: one extension"),
        ), warn_before=self.warn_before)


PolicyFor = Callable[[Channel, SubjectKind], Policy]

REGULATED: dict[Jurisdiction, PolicyFor] = {
    Jurisdiction.ID: indonesia,
    Jurisdiction.GB: united_kingdom,
    Jurisdiction.US: united_states,
}


@dataclass(frozen=True)
class Policies:
    """Which policy applies where; the default one is configurable."""

    default: DefaultPolicy = field(default_factory=DefaultPolicy)

    def policy(self, jurisdiction: Jurisdiction, channel: Channel, subject: SubjectKind) -> Policy:
        return REGULATED.get(jurisdiction, self.default)(channel, subject)


@dataclass(frozen=True)
class FollowUpPolicy:
    """When to ask whether the customer is satisfied, and how long they have to answer (configurable,
    COMPLAINTS_FOLLOW_UP)."""

    after_business_days: int = 3
    answer_within_business_days: int = 5
    hour: int = 9

    def plan(self, responded_at: datetime, calendar: Calendar) -> tuple[datetime, datetime]:
        """The follow-up at ``hour`` local time on the Nth business day after the response, and the end of
        the Mth business day after that as the answer deadline."""
        day = add(responded_at, self.after_business_days, Unit.business_days, calendar)
        at = day.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        return at, add(at, self.answer_within_business_days, Unit.business_days, calendar)


#: Where a jurisdiction's business day is counted (the regulator's seat).
ZONES: dict[Jurisdiction, str] = {
    Jurisdiction.ID: "Asia/Jakarta", Jurisdiction.GB: "Europe/London", Jurisdiction.US: "America/New_York",
    Jurisdiction.AU: "Australia/Sydney", Jurisdiction.CA: "America/Toronto", Jurisdiction.DE: "Europe/Berlin",
    Jurisdiction.FR: "Europe/Paris", Jurisdiction.IE: "Europe/Dublin", Jurisdiction.IN: "Asia/Kolkata",
    Jurisdiction.JP: "Asia/Tokyo", Jurisdiction.MY: "Asia/Kuala_Lumpur", Jurisdiction.NL: "Europe/Amsterdam",
    Jurisdiction.NZ: "Pacific/Auckland", Jurisdiction.PH: "Asia/Manila", Jurisdiction.SG: "Asia/Singapore",
    Jurisdiction.TH: "Asia/Bangkok", Jurisdiction.VN: "Asia/Ho_Chi_Minh",
}
