"""``complaints report``: what the complaints teach, from the log alone, read by global position.

Root causes by verdict and channel, churn by cause (product or service: fix what drives customers away,
source 004), acknowledgement and resolution times in business days, deadline breaches by jurisdiction,
satisfaction, reopen rate, remedies chosen. Every figure comes from events and the fold, never from
personal fields, so a customer's erasure changes none of them. A complaint's state is kept only while it
is open: a log of millions of events is read in one pass with bounded memory.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from domain import events as ev
from domain.chain import Recorded
from domain.complaint import Complaint, Folding
from domain.intake import Jurisdiction
from domain.policies.deadlines import Calendar, business_days_between


@lru_cache(maxsize=256)
def _calendar(jurisdiction: Jurisdiction, year: int) -> Calendar:
    from activities.calendar import calendar

    return calendar(jurisdiction, year - 1, year + 1)


def _days(state: Complaint, end: Any) -> int:
    return business_days_between(state.received_at, end, _calendar(state.jurisdiction, state.received_at.year))


def percentile(values: Iterable[int] | Counter[int], p: float) -> int | None:
    """Nearest rank: the smallest value with at least p of the values at or below it. ``values`` may be a
    histogram (value: how many times)."""
    counts = values if isinstance(values, Counter) else Counter(values)
    n = sum(counts.values())
    if not n:
        return None
    rank, seen = max(1, math.ceil(p * n)), 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to n")


@dataclass
class Report:
    since: date | None = None
    events: int = 0
    complaints: int = 0
    open: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    causes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (root cause, verdict, channel)
    churn: Counter[str] = field(default_factory=Counter)
    acknowledgement_days: Counter[int] = field(default_factory=Counter)  # business days: how many complaints
    resolution_days: Counter[int] = field(default_factory=Counter)
    breaches: Counter[tuple[str, str]] = field(default_factory=Counter)  # (jurisdiction, deadline kind)
    satisfaction: Counter[int] = field(default_factory=Counter)
    assessed: int = 0
    reopened: int = 0
    remedies: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, chosen | defaulted)

    def add(self, other: Report) -> None:
        """Take in the figures of another part of the log (other complaints)."""
        self.events += other.events
        self.complaints += other.complaints
        self.open += other.open
        self.assessed += other.assessed
        self.reopened += other.reopened
        self.outcomes.update(other.outcomes)
        self.causes.update(other.causes)
        self.churn.update(other.churn)
        self.breaches.update(other.breaches)
        self.satisfaction.update(other.satisfaction)
        self.remedies.update(other.remedies)
        self.acknowledgement_days.update(other.acknowledgement_days)
        self.resolution_days.update(other.resolution_days)

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.assessed if self.assessed else None

    def to_json(self) -> dict[str, Any]:
        """Every figure (not ``since``) as JSON: what the live report keeps (audit/live.py)."""
        return {**{name: getattr(self, name) for name in NUMBERS},
                **{name: [[list(k) if isinstance(k, tuple) else k, n] for k, n in getattr(self, name).items()]
                   for name in COUNTERS}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        report = cls(**{name: data[name] for name in NUMBERS})
        for name in COUNTERS:
            getattr(report, name).update({tuple(k) if isinstance(k, list) else k: n for k, n in data[name]})
        return report

    def times(self) -> dict[str, dict[str, int | None]]:
        return {name: {"median": percentile(days, 0.5), "p90": percentile(days, 0.9), "n": days.total()}
                for name, days in (("acknowledgement", self.acknowledgement_days),
                                   ("resolution", self.resolution_days))}


#: The report's figures by kind (a test holds these to the dataclass's fields).
NUMBERS = ("events", "complaints", "open", "assessed", "reopened")
COUNTERS = ("outcomes", "causes", "churn", "acknowledgement_days", "resolution_days", "breaches", "satisfaction",
            "remedies")


class ReportBuilder:
    """Feed records in global order; ``finish`` gives the report."""

    def __init__(self, since: date | None = None) -> None:
        self.report = Report(since=since)
        self._open = Folding()  # the complaints still open, folded in place: the builder owns them
        self._skipped: set[str] = set()

    @classmethod
    def resume(cls, report: Report, open_states: dict[str, Complaint]) -> ReportBuilder:
        """Go on from figures taken so far and the folded states of complaints still open (the live report:
        those of a batch's complaints, or every one to settle at the end)."""
        builder = cls(report.since)
        builder.report = report
        for state in open_states.values():
            builder._open.adopt(state)
        return builder

    def open_states(self) -> dict[str, Complaint]:
        """The complaints still open, folded so far."""
        return {cid: self._open.state(cid) for cid in self._open.ids()}

    def add(self, record: Recorded) -> None:
        self.add_row(record.row())

    def add_row(self, row: Sequence[Any]) -> None:
        """One stored row's values in ROW_FIELDS order (what follows them is ignored): no record is built."""
        cid = row[0]
        if cid in self._skipped:
            return
        if row[1] != 1 and cid not in self._open:
            return  # a complaint closed earlier in the log: nothing more counts (a verified log has none)
        state, event = self._open.add(row)
        if row[1] == 1:
            if self.report.since and state.received_at.date() < self.report.since:
                self._open.drop(cid)
                self._skipped.add(cid)
                return
            self.report.complaints += 1
        self.report.events += 1
        self._count(state, event)
        if not state.is_open:
            self._open.drop(cid)
            self._settle(state)

    def _count(self, state: Complaint, event: ev.Event) -> None:
        """The figures an event adds to (most kinds add to none: one lookup)."""
        counts = _COUNTS.get(type(event))
        if counts is not None:
            counts(self.report, state, event)

    def _settle(self, state: Complaint) -> None:
        """Figures taken once per complaint: when it closes, or at the end for those still open."""
        r = self.report
        r.causes[(state.root_cause.value if state.root_cause else "unassessed",
                  state.verdict.value if state.verdict else "unassessed", state.channel.value)] += 1
        r.assessed += state.assessments > 0
        r.reopened += state.reopen_count > 0
        if state.outcome is not None and state.closed_at is not None:
            r.outcomes[state.outcome.value] += 1
            r.resolution_days[_days(state, state.closed_at)] += 1

    def finish(self) -> Report:
        for cid in self._open.ids():
            self._settle(self._open.state(cid))
        self.report.open = len(self._open)
        self._open = Folding()
        return self.report


def _acknowledged(r: Report, state: Complaint, event: ev.ComplaintAcknowledged) -> None:
    if state.acknowledged_at is not None:
        r.acknowledgement_days[_days(state, state.acknowledged_at)] += 1


def _breached(r: Report, state: Complaint, event: ev.SlaBreached) -> None:
    r.breaches[(state.jurisdiction.value, event.kind.value)] += 1


def _followed_up(r: Report, state: Complaint, event: ev.FollowUpRecorded) -> None:
    r.satisfaction[event.satisfaction] += 1


def _churned(r: Report, state: Complaint, event: ev.CustomerChurned) -> None:
    r.churn[event.category.value] += 1


def _remedied(r: Report, state: Complaint, event: ev.RemedyChosen | ev.RemedyDefaulted) -> None:
    option = state.offer.option(event.option_id) if state.offer is not None else None
    if option is not None:
        r.remedies[(option.kind.value, "chosen" if isinstance(event, ev.RemedyChosen) else "defaulted")] += 1


#: What each kind of event adds to the figures (the state is the complaint's after the event).
_COUNTS: dict[type[ev.Event], Callable[[Report, Complaint, Any], None]] = {
    ev.ComplaintAcknowledged: _acknowledged, ev.SlaBreached: _breached, ev.FollowUpRecorded: _followed_up,
    ev.CustomerChurned: _churned, ev.RemedyChosen: _remedied, ev.RemedyDefaulted: _remedied}


def report_from_records(records: Iterable[Recorded], since: date | None = None) -> Report:
    builder = ReportBuilder(since)
    for record in records:
        builder.add(record)
    return builder.finish()


async def build_report(store: Any, since: date | None = None, dsn: str | None = None) -> Report:
    """From the log alone (no Temporal needed), complaint by complaint in global order: on every core when
    ``dsn`` lets processes of their own read parts of it (audit/parts.py)."""
    from audit.parts import across_parts

    report = Report(since=since)
    for part in await across_parts("report", store, dsn, None, since):
        report.add(part)
    return report


def render_json(report: Report) -> dict[str, Any]:
    return {
        "since": report.since.isoformat() if report.since else None,
        "complaints": report.complaints,
        "events": report.events,
        "open": report.open,
        "outcomes": dict(report.outcomes),
        "by_root_cause_verdict_channel": [
            {"root_cause": c, "verdict": v, "channel": ch, "complaints": n}
            for (c, v, ch), n in sorted(report.causes.items())],
        "churn_by_category": dict(report.churn),
        "business_days": report.times(),
        "sla_breaches": [{"jurisdiction": j, "deadline": k, "breaches": n}
                         for (j, k), n in sorted(report.breaches.items())],
        "satisfaction": {str(k): report.satisfaction[k] for k in range(1, 6)},
        "reopen_rate": report.reopen_rate,
        "assessed": report.assessed,
        "reopened": report.reopened,
        "remedies": [{"kind": k, "how": how, "count": n} for (k, how), n in sorted(report.remedies.items())],
    }


def render_text(report: Report, console: Any) -> None:
    from rich.table import Table

    times = report.times()
    console.print(f"{report.complaints} complaints ({report.open} open), {report.events} events"
                  + (f", received since {report.since}" if report.since else ""))
    for title, columns, rows in _tables(report, times):
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(c) for c in row))
        console.print(table)


def _tables(report: Report, times: dict[str, dict[str, int | None]]) -> list[tuple[str, list[str], list[list[Any]]]]:
    rate = f"{report.reopen_rate:.0%}" if report.reopen_rate is not None else "-"
    return [
        ("Complaints by root cause, verdict and channel", ["root cause", "verdict", "channel", "complaints"],
         [[c, v, ch, n] for (c, v, ch), n in sorted(report.causes.items())]),
        ("Churn by root cause category", ["category", "customers lost"],
         [[c, n] for c, n in sorted(report.churn.items())]),
        ("Times in business days", ["measure", "median", "p90", "complaints"],
         [[k, v["median"], v["p90"], v["n"]] for k, v in times.items()]),
        ("Deadline breaches by jurisdiction", ["jurisdiction", "deadline", "breaches"],
         [[j, k, n] for (j, k), n in sorted(report.breaches.items())]),
        ("Satisfaction", ["score", "answers"], [[k, report.satisfaction[k]] for k in range(1, 6)]),
        ("Reopened", ["assessed", "reopened", "rate"], [[report.assessed, report.reopened, rate]]),
        ("Remedies", ["kind", "how", "count"], [[k, how, n] for (k, how), n in sorted(report.remedies.items())]),
        ("Outcomes", ["outcome", "complaints"], [[o, n] for o, n in sorted(report.outcomes.items())]),
    ]


def render_html(report: Report) -> str:
    from audit import html

    return html.report(report, _tables(report, report.times()))
