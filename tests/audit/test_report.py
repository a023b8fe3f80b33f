"""The report's figures, from the log alone, against complaints driven for real; unchanged by erasure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calendar import calendar_around
from audit import live, parts
from audit.report import (
    COUNTERS,
    NUMBERS,
    Report,
    build_report,
    percentile,
    render_html,
    render_json,
    report_from_records,
)
from domain.policies.deadlines import business_days_between
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from eventlog.keys import OpenComplaints, erase_customer
from tests.workflows.driver import Driver
from tests.workflows.test_paths import invalid, valid
from workflows.complaint import ComplaintWorkflow

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def drive(time_skipping: WorkflowEnvironment, store: PostgresEventStore, worker: Worker, task_queue: str) -> Driver:
    return Driver(time_skipping.client, store, task_queue)


async def five_paths(drive: Driver, data: Callable[..., Any]) -> dict[str, str]:
    ids = {}
    ids["valid"] = cid = await drive.submit(data())  # ID, social
    await drive.send(cid, ComplaintWorkflow.assess, **valid())
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="B")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=5)
    ids["leaves"] = cid = await drive.submit(data("gym-contract.json"))  # ID, web
    await drive.send(cid, ComplaintWorkflow.assess, **invalid(root_cause="service"))
    await drive.send(cid, ComplaintWorkflow.choose_option, option="leave")
    ids["stays"] = cid = await drive.submit(data("roaming-charges.json"))  # US, phone
    await drive.send(cid, ComplaintWorkflow.assess, **invalid())
    await drive.send(cid, ComplaintWorkflow.choose_option, option="stay")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=2)  # reopened...
    await drive.send(cid, ComplaintWorkflow.assess, **valid(root_cause="product"))
    await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    await drive.stage(cid, Stage.awaiting_follow_up)
    await drive.send(cid, ComplaintWorkflow.record_follow_up, satisfaction=3)
    ids["withdrawn"] = cid = await drive.submit(data("wrong-size.json"))  # GB, web
    await drive.send(cid, ComplaintWorkflow.withdraw)
    now = datetime.now(UTC)
    ids["late"] = await drive.submit(data("unanswered-letter.json", occurred_at=(now - timedelta(days=31)).isoformat(),
                                          received_at=(now - timedelta(days=30)).isoformat()))  # ID, email: breached
    await drive.wait(ids["late"], lambda s: sum(d.breached for d in s.deadlines) == 3)
    return ids


async def test_the_report_counts_what_happened(drive: Driver, intake_data: Callable[..., Any], database: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ids = await five_paths(drive, intake_data)
    late = await drive.state(ids["late"])
    assert late.acknowledged_at is not None
    late_days = business_days_between(late.received_at, late.acknowledged_at,
                                      calendar_around(late.jurisdiction, late.received_at))
    assert late_days >= 15  # thirty calendar days, less weekends and holidays
    report = await build_report(drive.store)
    figures = render_json(report)
    assert (figures["complaints"], figures["open"]) == (5, 1)
    assert figures["events"] == await drive.store.count()
    causes = {(r["root_cause"], r["verdict"], r["channel"]): r["complaints"]
              for r in figures["by_root_cause_verdict_channel"]}
    assert causes == {("third_party", "valid", "social"): 1, ("service", "invalid", "web"): 1,
                      ("product", "valid", "phone"): 1, ("unassessed", "unassessed", "web"): 1,
                      ("unassessed", "unassessed", "email"): 1}
    assert figures["churn_by_category"] == {"service": 1}
    assert figures["satisfaction"] == {"1": 0, "2": 1, "3": 1, "4": 0, "5": 1}
    assert (figures["assessed"], figures["reopened"]) == (3, 1) and figures["reopen_rate"] == pytest.approx(1 / 3)
    assert {(r["jurisdiction"], r["deadline"]): r["breaches"] for r in figures["sla_breaches"]} == {
        ("ID", "acknowledgement"): 1, ("ID", "assessment"): 1, ("ID", "final_response"): 1}
    assert {(r["kind"], r["how"]): r["count"] for r in figures["remedies"]} == {
        ("discount", "chosen"): 1, ("service_credit", "chosen"): 1}
    # Read in parts by processes of their own (as `complaints report` reads), the figures are the same.
    monkeypatch.setenv(parts.PROCESSES_ENV, "3")
    assert render_json(await build_report(drive.store, dsn=database.app_url)) == figures
    assert figures["outcomes"] == {"resolved": 2, "customer_left": 1, "withdrawn": 1}
    assert figures["business_days"]["acknowledgement"] == {"median": 0, "p90": late_days, "n": 5}
    assert figures["business_days"]["resolution"]["n"] == 4 and figures["business_days"]["resolution"]["median"] == 0


async def test_since_keeps_only_complaints_received_from_that_day(drive: Driver, intake_data: Callable[..., Any]
                                                                  ) -> None:
    ids = await five_paths(drive, intake_data)
    del ids
    today = datetime.now(UTC).date()
    assert render_json(await build_report(drive.store, today - timedelta(days=1)))["complaints"] == 4
    assert render_json(await build_report(drive.store, date(2000, 1, 1)))["complaints"] == 5


async def test_erasure_changes_no_figure(drive: Driver, intake_data: Callable[..., Any], eraser_pool: asyncpg.Pool
                                        ) -> None:
    ids = await five_paths(drive, intake_data)
    before = render_json(await build_report(drive.store))
    for customer in ("cust-4471", "cust-1188", "cust-7310", "cust-3302"):
        await erase_customer(eraser_pool, customer, requested_by="dpo", legal_basis="request")
    # The late complaint is still open: its customer is not erased (nothing destroyed) until it is closed.
    with pytest.raises(OpenComplaints):
        await erase_customer(eraser_pool, "cust-5521", requested_by="dpo", legal_basis="request")
    assert render_json(await build_report(drive.store)) == before
    await drive.send(ids["late"], ComplaintWorkflow.withdraw)
    await drive.finished(ids["late"])
    before = render_json(await build_report(drive.store))
    assert await erase_customer(eraser_pool, "cust-5521", requested_by="dpo", legal_basis="request") == 1
    assert render_json(await build_report(drive.store)) == before


async def test_the_report_from_memory_equals_the_report_from_the_log(drive: Driver, intake_data: Callable[..., Any]
                                                                     ) -> None:
    await five_paths(drive, intake_data)
    records = [p.record async for p in drive.store.scan()]
    assert render_json(report_from_records(records)) == render_json(await build_report(drive.store))


async def test_the_html_shows_the_figures_as_charts_and_needs_nothing_from_the_network(
    drive: Driver, intake_data: Callable[..., Any]
) -> None:
    await five_paths(drive, intake_data)
    page = render_html(await build_report(drive.store))
    assert page.count("<svg") >= 5 and "Customers lost, by cause" in page
    assert "third party" in page and "customer left" in page
    assert "https://" not in page and "<script" not in page and "<link" not in page


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5], 0.9) == 5
    assert (percentile(list(range(1, 11)), 0.5), percentile(list(range(1, 11)), 0.9)) == (5, 9)
    assert percentile(Counter({3: 2, 1: 1, 7: 1}), 0.5) == percentile([1, 3, 3, 7], 0.5) == 3  # a histogram too
    assert percentile(Counter({3: 2, 1: 1, 7: 1}), 0.9) == 7


def test_the_live_figures_keep_every_figure_of_the_report() -> None:
    assert set(NUMBERS) | set(COUNTERS) | {"since"} == {f.name for f in fields(Report)}
    report = Report(events=9, complaints=3, open=1, assessed=2, reopened=1)
    report.causes[("product", "valid", "web")] += 2
    report.acknowledgement_days[4] += 3
    report.satisfaction[5] += 1
    report.remedies[("refund", "chosen")] += 1
    report.outcomes["resolved"] += 2
    assert Report.from_json(json.loads(json.dumps(report.to_json()))) == report


async def test_the_live_report_gives_what_a_scan_of_the_log_gives_and_a_rebuild_again(
        drive: Driver, intake_data: Callable[..., Any]) -> None:
    ids = await five_paths(drive, intake_data)
    pool = drive.store.pool
    await live.subscription(pool, batch=3).catch_up()  # small batches: complaints cut across them
    figures, events = await live.live_report(pool)
    scanned = render_json(await build_report(drive.store))
    assert render_json(figures) == scanned and events == await drive.store.count()
    # The log grows: the live figures follow it (the late complaint withdrawn, closed, settled).
    await drive.send(ids["late"], ComplaintWorkflow.withdraw)
    await drive.finished(ids["late"])
    figures, _ = await live.live_report(pool)
    scanned = render_json(await build_report(drive.store))
    assert render_json(figures) == scanned and scanned["open"] == 0
    rebuilt, events = await live.rebuild(pool)
    assert render_json(rebuilt) == scanned and events == await drive.store.count()


def test_report_answers_from_the_live_figures_and_refuses_rebuild_with_a_scan(database: Any) -> None:
    env = {**os.environ, "DATABASE_URL": database.app_url}
    command = [sys.executable, "-m", "cli.main", "report", "--json"]
    live_run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    scan_run = subprocess.run([*command, "--scan"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert live_run.returncode == scan_run.returncode == 0, live_run.stderr + scan_run.stderr
    assert json.loads(live_run.stdout) == json.loads(scan_run.stdout)
    assert "live figures" in live_run.stderr
    refused = subprocess.run([*command, "--rebuild", "--scan"], capture_output=True, text=True, cwd=ROOT, env=env,
                             timeout=120)
    assert refused.returncode == 2 and "--rebuild" in refused.stderr
