"""The report's figures, from the log alone, against complaints driven for real; unchanged by erasure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calendar import calendar_around
from audit import parts
from audit.report import build_report, percentile, render_html, render_json, report_from_records
from domain.policies.deadlines import business_days_between
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from eventlog.keys import OpenComplaints, erase_customer
from tests.workflows.driver import Driver
from tests.workflows.test_paths import invalid, valid
from workflows.complaint import ComplaintWorkflow


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
