"""Deadlines and follow-up dates from real calendars (the ``holidays`` package and the tz database).

Both change with package upgrades, which is why this runs in an activity: the workflow records what was
computed (SlaDeadlinesSet, FollowUpScheduled) and never recomputes it on replay."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import holidays
from holidays.version import __version__ as holidays_version
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import messages as msg
from domain.intake import Jurisdiction
from domain.policies.deadlines import ZONES, Calendar, DefaultPolicy, FollowUpPolicy, Policies

T = TypeVar("T")
#: Holiday categories that close businesses: Indonesia's collective leave (cuti bersama) is "government".
_CATEGORIES: dict[Jurisdiction, tuple[str, ...]] = {Jurisdiction.ID: ("public", "government")}
#: FCA "business day": not a bank holiday "in that part of the United Kingdom"; England and Wales here.
_SUBDIVISIONS: dict[Jurisdiction, str] = {Jurisdiction.GB: "ENG"}


@lru_cache(maxsize=64)
def calendar(jurisdiction: Jurisdiction, first_year: int, last_year: int) -> Calendar:
    years = list(range(first_year, last_year + 1))
    # None (no subdivision, the default categories) is what the package assumes when they are not given.
    days = holidays.country_holidays(jurisdiction.value, subdiv=_SUBDIVISIONS.get(jurisdiction), years=years,
                                     categories=_CATEGORIES.get(jurisdiction))
    name = f"{jurisdiction.value}{'-' + _SUBDIVISIONS[jurisdiction] if jurisdiction in _SUBDIVISIONS else ''}"
    return Calendar(name=f"{name} (holidays {holidays_version})", zone=ZoneInfo(ZONES[jurisdiction]),
                    holidays=frozenset(days.keys()))


def calendar_around(jurisdiction: Jurisdiction, moment: datetime) -> Calendar:
    """Enough years of holidays for any deadline counted from ``moment`` (weeks, at most a few months)."""
    return calendar(jurisdiction, moment.year, moment.year + 1)


def _json_env(name: str) -> dict[str, Any]:
    raw = os.environ.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"{name} is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value


def policies() -> Policies:
    """COMPLAINTS_DEFAULT_POLICY, e.g. ``{"assessment": 3, "final_response": 10, "extension": null}``."""
    return Policies(default=DefaultPolicy(**_json_env("COMPLAINTS_DEFAULT_POLICY")))


def follow_up_policy() -> FollowUpPolicy:
    """COMPLAINTS_FOLLOW_UP, e.g. ``{"after_business_days": 2, "answer_within_business_days": 5}``."""
    return FollowUpPolicy(**_json_env("COMPLAINTS_FOLLOW_UP"))


def _configuration(read: Callable[[], T]) -> T:
    """A policy from the environment; a bad one is the operator's to fix, not something a retry mends."""
    try:
        return read()
    except (ValueError, TypeError) as error:
        raise ApplicationError(f"the deadline configuration is invalid: {error}", type="ConfigurationError",
                               non_retryable=True) from None


@activity.defn(name=msg.COMPUTE_DEADLINES)
async def compute_deadlines(request: msg.DeadlineRequest) -> msg.Schedule:
    return _configuration(lambda: _deadlines(request))


def _deadlines(request: msg.DeadlineRequest) -> msg.Schedule:
    policy = policies().policy(request.jurisdiction, request.channel, request.subject_kind)
    cal = calendar_around(request.jurisdiction, request.received_at)
    if request.reopened_at is not None:
        cal = calendar(request.jurisdiction, request.received_at.year, request.reopened_at.year + 1)
        return msg.Schedule(policy=policy.name, calendar=cal.name,
                            deadlines=policy.reopened(request.received_at, request.reopened_at, cal))
    return msg.Schedule(policy=policy.name, calendar=cal.name,
                        deadlines=policy.deadlines(request.received_at, cal))


@activity.defn(name=msg.PLAN_FOLLOW_UP)
async def plan_follow_up(request: msg.FollowUpRequest) -> msg.FollowUpDates:
    at, answer_by = _configuration(lambda: follow_up_policy().plan(
        request.responded_at, calendar_around(request.jurisdiction, request.responded_at)))
    return msg.FollowUpDates(at=at, answer_by=answer_by)
