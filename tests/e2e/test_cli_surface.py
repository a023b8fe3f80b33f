"""The `complaints` CLI as an operator meets it, run as a subprocess against a real dev server and worker:
what `submit` says about a complaint submitted before, text that looks like Rich markup shown as it is, a
decision sent twice decided once, one documented shape for each error's details, the README's words about
raw starts, and `list` in full when piped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from domain import errors
from domain.vocabulary import Stage
from eventlog import PostgresEventStore
from identity.client import acting_as
from settings import workflow_id
from tests.principals import token
from tests.workflows.driver import Driver
from workflows.complaint import ComplaintWorkflow

ROOT = Path(__file__).parent.parent.parent
Cli = Callable[..., Awaitable[subprocess.CompletedProcess[str]]]
Data = Callable[..., dict[str, Any]]


@pytest.fixture
def drive(dev_server: WorkflowEnvironment, store: PostgresEventStore, dev_worker: Worker, task_queue: str) -> Driver:
    return Driver(dev_server.client, store, task_queue)


@pytest.fixture
def cli(drive: Driver) -> Cli:
    """`complaints ...` in a subprocess, its output piped (not a terminal), as a supervisor unless told."""
    address = drive.client.service_client.config.target_host

    async def run(*args: str, as_: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(TEMPORAL_ADDRESS=address, COMPLAINTS_TASK_QUEUE=drive.task_queue,
                   COMPLAINTS_TOKEN=as_ or token("supervisor", "budi"))
        return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cli.main", *args],
                                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)

    return run


def intake_file(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / f"{data['complaint_id']}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


async def execution(drive: Driver, cid: str, *wanted: WorkflowExecutionStatus, timeout: float = 30
                    ) -> WorkflowExecutionStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await starter._execution_status(drive.client, workflow_id(cid))
        if status in wanted:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{cid} is {status.name}, not {wanted}")
        await asyncio.sleep(0.1)


# --- 13: submit says where a complaint submitted before stands -------------------------------------------------


async def test_submitting_again_when_the_run_failed_says_so_and_exits_1(cli: Cli, drive: Driver, intake_data: Data,
                                                                       tmp_path: Path) -> None:
    data = intake_data()
    cid, path = data["complaint_id"], intake_file(tmp_path, data)
    with acting_as(token("auditor", "audrey")):  # an auditor may not submit: the run is refused at the door
        await starter.submit(drive.client, starter.parse_intake(json.dumps(data)), task_queue=drive.task_queue)
    await execution(drive, cid, WorkflowExecutionStatus.FAILED)
    again = await cli("submit", path)
    shown = again.stdout + again.stderr
    assert again.returncode == 1, shown
    assert "failed" in shown and "Forbidden" in shown and "already submitted:" not in shown, shown
    as_json = await cli("submit", path, "--json")
    assert as_json.returncode == 1, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["created"] is False and result["status"] == "failed"
    assert result["failure"]["type"] == "Forbidden"
    assert await drive.store.read(cid) == []


async def test_submitting_again_says_where_the_complaint_stands(cli: Cli, drive: Driver, intake_data: Data,
                                                                tmp_path: Path) -> None:
    data = intake_data()
    cid, path = data["complaint_id"], intake_file(tmp_path, data)
    first = await cli("submit", path)
    assert first.returncode == 0 and "submitted" in first.stdout, first.stderr
    await drive.stage(cid, Stage.awaiting_assessment)  # on COMPLAINTS_TASK_QUEUE, where the worker polls
    running = await cli("submit", path)
    assert running.returncode == 0, running.stderr
    assert "already submitted" in running.stdout and "running" in running.stdout, running.stdout
    assert (await cli("withdraw", cid)).returncode == 0
    await execution(drive, cid, WorkflowExecutionStatus.COMPLETED)
    closed = await cli("submit", path)
    assert closed.returncode == 0, closed.stderr
    assert "already submitted" in closed.stdout and "closed" in closed.stdout, closed.stdout
    assert json.loads((await cli("submit", path, "--json")).stdout)["status"] == "completed"
    assert (await drive.types(cid)).count("ComplaintReceived") == 1


# --- 14: what looks like markup is shown as it is; a decision sent twice is decided once ------------------------


async def test_markup_in_a_title_is_shown_as_it_is_and_a_resent_decision_is_decided_once(
    cli: Cli, drive: Driver, intake_data: Data, tmp_path: Path
) -> None:
    data = intake_data()
    data["subject"] = {**data["subject"], "title": "Late delivery [/]"}
    cid = await drive.submit(data)

    def shown_as_it_is(done: subprocess.CompletedProcess[str]) -> None:
        assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr, done.stderr
        if "Late delivery" in done.stdout:  # where the state holds the title in the clear
            assert "Late delivery [/]" in done.stdout, done.stdout

    status = await cli("status", cid)
    assert status.returncode == 0, status.stderr
    shown_as_it_is(status)

    assess = ("assess", cid, "--verdict", "valid", "--root-cause", "service", "--findings", "Took [bold]9[/] days")
    first = await cli(*assess)
    assert first.returncode == 0, first.stderr
    shown_as_it_is(first)
    # The operator did not see the outcome (a crash, a lost connection) and sends it again: the first outcome.
    again = await cli(*assess, "--json")
    assert again.returncode == 0, again.stderr
    assert "already recorded" in again.stderr
    outcome = json.loads(again.stdout)
    assert outcome["stage"] == "awaiting_remedy_choice"
    assert (await drive.types(cid)).count("ComplaintAssessed") == 1
    # The first outcome: the complaint as the assessment left it (the apology mailed since comes after it).
    records = await drive.store.read(cid)
    assert records[outcome["head"]["sequence"] - 1].type == "RemedyOffered"

    # Another update id is another decision: refused at this stage.
    other = await cli(*assess, "--update-id", "assess-again")
    assert other.returncode == 2, other.stdout + other.stderr
    assert "ComplaintRefused" in other.stderr and "awaiting_remedy_choice" in other.stderr
    # Refusals that name what was sent are shown as it was sent, with exit 2 (not a crash).
    not_offered = await cli("choose-remedy", cid, "[/]")
    assert not_offered.returncode == 2 and "'[/]'" in not_offered.stderr, not_offered.stdout + not_offered.stderr
    unknown_field = await cli("update", cid, "withdraw", json.dumps({"[/]": 1}))
    assert unknown_field.returncode == 2 and "[/]" in unknown_field.stderr, unknown_field.stderr
    assert (await drive.types(cid)).count("ComplaintAssessed") == 1
    assert "ComplaintWithdrawn" not in await drive.types(cid)


# --- 15: one documented shape for each error's details ----------------------------------------------------------


async def test_every_error_has_one_documented_details_shape(cli: Cli, drive: Driver, intake_data: Data) -> None:
    printed = await cli("schema")
    assert printed.returncode == 0, printed.stderr
    documented = json.loads(printed.stdout)["errors"]
    for kind in ("ComplaintRefused", "InvalidInput", "InvalidComplaint", "Unauthenticated", "Forbidden",
                 "PlaintextRefused", "WrongWorkflowId", "InputRefused", "ComplaintExists"):
        assert kind in documented, kind
    assert set(documented["ComplaintRefused"]["properties"]) == {"stage", "reason"}
    assert set(documented["InvalidInput"]["properties"]) == {"errors"}
    assert set(documented["InvalidComplaint"]["properties"]) == {"errors"}
    assert set(documented["Forbidden"]["properties"]) == {"required_roles"}
    one = json.loads((await cli("schema", "ComplaintRefused")).stdout)
    assert one == documented["ComplaintRefused"]

    # A malformed decision (the converter) and a malformed raw start: {errors: [{field, reason}]}.
    cid = await drive.submit(intake_data())
    handle = drive.client.get_workflow_handle(workflow_id(cid))
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update("assess", {"verdict": "maybe"})  # raw JSON, as a backend could send it
    cause = rejected.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
    details = errors.details_of(cause.type, cause.details)
    assert isinstance(details, errors.FieldErrorDetails)
    assert {"verdict", "root_cause", "findings"} <= {e.field for e in details.errors}

    bad = {k: v for k, v in intake_data().items() if k != "customer"}
    started = await drive.client.start_workflow("ComplaintWorkflow", bad, id=workflow_id(bad["complaint_id"]),
                                                task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await started.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput"
    details = errors.details_of(cause.type, cause.details)
    assert isinstance(details, errors.FieldErrorDetails) and "customer" in [e.field for e in details.errors]

    # A decision that does not fit the stage, and one the caller's role may not make.
    with pytest.raises(starter.DecisionRefused) as refused:
        await drive.send(cid, ComplaintWorkflow.choose_remedy, option_id="A")
    assert refused.value.kind == "ComplaintRefused"
    assert errors.details_of(refused.value.kind, refused.value.details) == errors.RefusalDetails(
        stage="awaiting_assessment", reason=refused.value.details[0]["reason"])
    with pytest.raises(starter.DecisionRefused) as forbidden:
        await drive.send(cid, ComplaintWorkflow.close, outcome="resolved", note="n", by="agent:ana")
    assert forbidden.value.kind == "Forbidden"
    assert errors.details_of("Forbidden", forbidden.value.details) == errors.ForbiddenDetails(
        required_roles=["supervisor"])


async def test_refused_starts_carry_their_documented_details(drive: Driver, intake_data: Data) -> None:
    """Needs workflows/complaint.py to give InvalidComplaint and a start's Forbidden their documented details."""
    data = intake_data(occurred_at="2099-01-01T00:00:00Z")  # valid JSON, but in the future by the workflow's clock
    started = await drive.client.start_workflow("ComplaintWorkflow", data, id=workflow_id(data["complaint_id"]),
                                                task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await started.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidComplaint"
    details = errors.details_of(cause.type, cause.details)
    assert isinstance(details, errors.FieldErrorDetails) and details.errors[0].field == "occurred_at"
    assert await drive.store.read(data["complaint_id"]) == []

    data = intake_data()
    with acting_as(token("auditor", "audrey")):  # authenticated, but an auditor may not submit
        refused = await drive.client.start_workflow("ComplaintWorkflow", data, id=workflow_id(data["complaint_id"]),
                                                    task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await refused.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Forbidden"
    details = errors.details_of(cause.type, cause.details)
    assert isinstance(details, errors.ForbiddenDetails) and "intake" in details.required_roles


# --- 16: the README says what a raw start really does ------------------------------------------------------------


async def test_the_readme_names_what_a_raw_start_really_fails_with(drive: Driver, intake_data: Data) -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    named = re.search(r"started with malformed input fails at once with an? `(\w+)` ApplicationError", readme)
    assert named, "the README says how a malformed start fails"
    bad = {**intake_data(), "channel": "fax"}
    started = await drive.client.start_workflow("ComplaintWorkflow", bad, id=workflow_id(bad["complaint_id"]),
                                                task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as failed:
        await started.result()
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == named.group(1)

    # "Starting twice is refused by Temporal" holds only while the complaint runs: once it is closed, Temporal
    # accepts a raw start (its default id reuse policy) and the workflow refuses it, writing nothing.
    assert "Starting the same complaint twice is refused by Temporal" not in readme
    closed = re.search(r"[^.]*once it is closed[^.]*`(\w+)`[^.]*\.", readme)
    assert closed and closed.group(1) == "ComplaintExists", "the README says what a start after closure does"
    cid = await drive.submit(intake_data())
    await drive.send(cid, ComplaintWorkflow.withdraw)
    await execution(drive, cid, WorkflowExecutionStatus.COMPLETED)
    log = await drive.store.read(cid)
    again = await drive.client.start_workflow("ComplaintWorkflow", {**intake_data(), "complaint_id": cid},
                                              id=workflow_id(cid), task_queue=drive.task_queue)
    with pytest.raises(WorkflowFailureError) as refused:
        await again.result()
    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == "ComplaintExists"
    assert await drive.store.read(cid) == log


# --- 17: `list` in full when piped -------------------------------------------------------------------------------


async def test_list_piped_is_not_cut_to_80_columns(cli: Cli, drive: Driver, intake_data: Data) -> None:
    cid = await drive.submit(intake_data())
    deadline = time.monotonic() + 30
    while cid not in (await cli("list", "--json")).stdout:  # visibility is eventually consistent
        assert time.monotonic() < deadline, "the complaint never showed in visibility"
        await asyncio.sleep(0.2)
    listed = await cli("list")
    assert listed.returncode == 0, listed.stderr
    assert "…" not in listed.stdout, listed.stdout
    for shown in (cid, "awaiting_assessment", "jurisdiction", "breached", "cust-4471"):
        assert shown in listed.stdout, (shown, listed.stdout)


async def test_list_awaiting_agent_shows_complaints_whose_messages_an_agent_must_deliver(
        cli: Cli, drive: Driver, intake_data: Data) -> None:
    """A complaint with no email address hands its messages to an agent (AwaitingAgent, a search attribute);
    one with an email address does not; once the agent has delivered them all, it leaves the list."""
    handed = await drive.submit(intake_data("late-delivery.json", contact={"handle": "@siti.rahma"}))
    mailed = await drive.submit(intake_data("unanswered-letter.json"))

    async def awaiting() -> set[str]:
        listed = await cli("list", "--awaiting", "agent", "--json")
        assert listed.returncode == 0, listed.stderr
        return {row["complaint_id"] for row in json.loads(listed.stdout)}

    deadline = time.monotonic() + 30
    while handed not in await awaiting():  # visibility is eventually consistent
        assert time.monotonic() < deadline, "the complaint never showed as awaiting an agent"
        await asyncio.sleep(0.2)
    assert mailed not in await awaiting()
    table = await cli("list", "--awaiting", "agent")
    assert "AwaitingAgent = true" in table.stdout and "to deliver" in table.stdout
    for _task in (await drive.state(handed)).agent_tasks:
        await drive.send(handed, ComplaintWorkflow.log_message, sender="agent", channel="social",
                         text="Delivered by hand, publicly, as the message says.")
    while handed in await awaiting():
        assert time.monotonic() < deadline + 30, "the complaint stayed in the list after its messages went"
        await asyncio.sleep(0.2)
    refused = await cli("list", "--awaiting", "nobody")
    assert refused.returncode == 2 and "nobody" in refused.stderr
    for cid in (handed, mailed):
        await drive.send(cid, ComplaintWorkflow.withdraw)


# --- 18: every decision command, generated from its model, keeps the spellings callers use ----------------------


async def test_every_decision_command_decides_with_the_spellings_callers_use(cli: Cli, drive: Driver,
                                                                            intake_data: Data) -> None:
    """The commands are generated from domain/commands.py: positional arguments (choose-remedy, move-offline,
    choose-option, record-follow-up, apologise), renamed and repeated options (assess --remedy, --sop), model
    defaults (extend-deadline's kind), each deciding against a real worker; a bad value is refused naming the
    field, with exit 2 and nothing sent."""

    async def decided(*args: str) -> dict[str, Any]:
        done = await cli(*args, "--json")
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout)

    # Partially valid: up the ladder, a message, an apology for conduct, an extension, remedies and the rules.
    cid = await drive.submit(intake_data())
    assert (await decided("move-offline", cid, "email", "siti@example.co.id"))["rung"] == "email"
    assert (await decided("log-message", cid, "--sender", "customer", "--channel", "email", "--text",
                          "Still nothing.", "--by", "customer"))["messages"] >= 1
    assert (await decided("apologise", cid, "Sorry for the tone of our reply."))["conduct_apologies"] == 1
    extended = await decided("extend-deadline", cid, "--reason", "Courier investigation.", "--notice",
                             "We need 10 more working days.")
    assert any(d["kind"] == "final_response" and d["extended"] for d in extended["deadlines"]), extended["deadlines"]
    bad = await cli("assess", cid, "--verdict", "partially_valid", "--root-cause", "service", "--findings", "F",
                    "--sop", "SOP 4.2", "--offer-days", "90")
    assert bad.returncode == 2 and "offer_days" in bad.stderr, bad.stdout + bad.stderr
    assessed = await decided("assess", cid, "--verdict", "partially_valid", "--root-cause", "service",
                             "--findings", "Promised 2 days, took 9.", "--sop", "SOP 4.2", "--explanation",
                             "Transit times are estimates.", "--remedy", "voucher", "--remedy", "refund",
                             "--default-remedy", "refund", "--offer-days", "5")
    assert assessed["stage"] == "awaiting_remedy_choice" and assessed["explained"]
    offer = assessed["offer"]
    assert sorted(o["kind"] for o in offer["options"]) == ["refund", "voucher"]
    assert next(o["kind"] for o in offer["options"] if o["id"] == offer["default_option"]) == "refund"
    chosen = next(o["id"] for o in offer["options"] if o["kind"] == "voucher")
    assert (await decided("choose-remedy", cid, chosen, "--by", "customer"))["remedy_option"] == chosen
    await drive.stage(cid, Stage.awaiting_follow_up)
    followed = await decided("record-follow-up", cid, "5", "--comment", "Thanks.", "--by", "customer")
    assert followed["stage"] == "closed" and followed["satisfaction"] == 5

    # Invalid: the customer leaves.
    cid = await drive.submit(intake_data())
    assert (await decided("assess", cid, "--verdict", "invalid", "--root-cause", "customer_misunderstanding",
                          "--findings", "Ordered the wrong size.", "--sop", "Terms 6.1"))["stage"] == \
        "awaiting_option_choice"
    left = await decided("choose-option", cid, "leave", "--reason", "Too strict.", "--by", "customer")
    assert left["choice"] == "leave" and left["stage"] == "closed"

    # Escalated and closed by a supervisor; and a customer who leaves before any assessment.
    cid = await drive.submit(intake_data())
    assert (await decided("escalate", cid, "--to", "supervisor", "--reason", "Regulator named."))["stage"] == \
        "escalated"
    closed = await decided("close", cid, "--outcome", "resolved", "--note", "Refunded at the branch.")
    assert closed["stage"] == "closed" and closed["outcome"] == "resolved"
    cid = await drive.submit(intake_data())
    churned = await decided("record-churn", cid, "--reason", "Moved to a competitor.")
    assert churned["stage"] == "closed" and churned["churn"] == "service"
    assert "ComplaintAssessed" not in await drive.types(cid)
