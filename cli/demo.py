"""`make demo`: the embedded stack, a worker, the example complaints driven down different paths to closure,
then every chain verified against the workflows. Everything started here is stopped here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import Client

import logs
import starter
from cli import customer_demo as customer_side
from customer.serve import running_gateway
from dev.mailserver import MailServer
from dev.stack import embedded_stack
from domain import commands as cmd
from domain.complaint import Complaint
from domain.intake import Channel
from domain.vocabulary import CustomerChoice, RemedyKind, RootCause, Rung, Sender, Stage, Verdict
from identity.client import acting_as
from identity.tokens import IssuerKey
from settings import Settings
from worker import running_worker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
Drive = Callable[[Client, str], Awaitable[None]]


async def wait_for(client: Client, complaint_id: str, done: Callable[[Complaint], bool],
                   timeout: float = 60) -> Complaint:
    """Poll the workflow's state until ``done`` (the workflow acts on its own between decisions)."""
    deadline = time.monotonic() + timeout
    stage = "submitted"
    while True:
        try:
            state = await starter.status(client, complaint_id)
        except starter.NotFound:  # the intake is still being recorded
            state = None
        if state is not None:
            if done(state):
                return state
            stage = state.stage.value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{complaint_id} still at {stage} after {timeout} s")
        await asyncio.sleep(0.1)


# The people who act in the demo, each with a token of the stack's development issuer: agents, a supervisor,
# the customers themselves, and the backend that submits complaints. The log records each as the actor.
_issuer: IssuerKey | None = None
_customers: dict[str, str] = {}
#: The stack's mail server: the demo's customers read their mail there and reply through it.
_mail: MailServer | None = None
#: What the customers did themselves, by mail and on their page, for the summary.
_customer_side: list[tuple[str, str]] = []


def acting(role: str, subject: str) -> contextlib.AbstractContextManager[None]:
    assert _issuer is not None, "the demo's issuer is set when the stack starts"
    return acting_as(_issuer.issue(subject, role, ttl=timedelta(minutes=30)))


def agent(name: str) -> contextlib.AbstractContextManager[None]:
    return acting("agent", name)


def supervisor(name: str = "budi") -> contextlib.AbstractContextManager[None]:
    return acting("supervisor", name)


def customer(cid: str) -> contextlib.AbstractContextManager[None]:
    """The complaint's own customer (their page or their reply, in the product)."""
    return acting("customer", _customers[cid])


async def _follow_up(client: Client, cid: str, satisfaction: int, comment: str) -> None:
    await wait_for(client, cid, lambda s: s.stage is Stage.awaiting_follow_up)
    with customer(cid):
        await starter.send(client, cid, "record_follow_up",
                           cmd.RecordFollowUp(satisfaction=satisfaction, comment=comment))


async def valid_remedy_chosen(client: Client, cid: str) -> None:
    """Social -> email; the customer replies to our email; valid; she picks a voucher on her page and rates
    the outcome there: the customer's side goes by SMTP and HTTP only, as in life."""
    assert _mail is not None
    with agent("ana"):
        await starter.send(client, cid, "move_offline", cmd.MoveOffline(rung=Rung.email,
                                                                        detail="siti.rahma@example.co.id"))
    asked = await customer_side.received(_mail, cid, "move_request")
    reply_id = customer_side.reply(_mail, asked, "Paket saya belum sampai. Saya butuh barangnya untuk acara "
                                                 "hari Sabtu.")
    await wait_for(client, cid, lambda s: reply_id in s.thread)  # read back from the mailbox by the gateway
    _customer_side.append((cid, "replied by email (SMTP), threaded to our message"))
    with agent("ana"):
        await starter.send(client, cid, "log_message", cmd.LogMessage(
            sender=Sender.agent, channel=Channel.email,
            text="Terima kasih sudah menunggu, Bu Siti. Kami sudah cek dengan kurir: paketnya tertahan di gudang "
                 "transit."))
        await starter.assess(client, cid, cmd.Assess(
            verdict=Verdict.valid, root_cause=RootCause.third_party,
            findings="Courier held the parcel at the transit hub for 7 days; our 2-day promise was broken.",
            clause="Delivery promise: 2 working days within Java"))
    apology = await customer_side.received(_mail, cid, "apology")
    status, _page = await asyncio.to_thread(customer_side.answer_on_page, customer_side.link_in(apology),
                                            {"option": "A"})
    if status != 200:
        raise RuntimeError(f"{cid}: the page refused the remedy choice ({status})")
    _customer_side.append((cid, "chose remedy A on the page (HTTP)"))
    asked = await customer_side.received(_mail, cid, "follow_up")
    status, _page = await asyncio.to_thread(customer_side.answer_on_page, customer_side.link_in(asked),
                                            {"satisfaction": "5",
                                             "comment": "Voucher diterima, terima kasih atas responsnya."})
    if status != 200:
        raise RuntimeError(f"{cid}: the page refused the rating ({status})")
    _customer_side.append((cid, "rated 5/5 on the page (HTTP)"))


async def partially_valid(client: Client, cid: str) -> None:
    """Email -> phone; partly our fault (a faulty switch), partly not (no filter): apology, remedy, explanation.
    The customer chose the replacement on the phone: the agent records it on their behalf."""
    with agent("tom"):
        await starter.send(client, cid, "move_offline", cmd.MoveOffline(rung=Rung.phone, detail="+44 20 7946 0958"))
        await starter.assess(client, cid, cmd.Assess(
            verdict=Verdict.partially_valid, root_cause=RootCause.product,
            findings="The thermostat switch is a known fault in batch 55; limescale from use without a filter "
                     "also contributed.",
            sop_reference="KT-200 manual, section 4 (filter)",
            remedies=[RemedyKind.repair, RemedyKind.replacement, RemedyKind.refund]))
        await starter.choose_remedy(client, cid, cmd.ChooseRemedy(option_id="B", by="customer"))
    await _follow_up(client, cid, 4, "Replacement arrived. Fair enough about the filter.")


async def invalid_stays(client: Client, cid: str) -> None:
    """The plan never covered Canada: explained calmly; the customer stays under the rules."""
    with agent("lee"):
        await starter.assess(client, cid, cmd.Assess(
            verdict=Verdict.invalid, root_cause=RootCause.customer_misunderstanding,
            findings="FLEX-20 covers US only; roaming add-on was offered by SMS at the border and declined.",
            clause="FLEX-20 terms, section 3.2", sop_reference="Roaming SOP R-7"))
    with customer(cid):
        await starter.send(client, cid, "choose_option", cmd.ChooseOption(option=CustomerChoice.stay))
    await _follow_up(client, cid, 3, "OK, I understand now. I'll add the roaming pack next time.")


async def invalid_leaves(client: Client, cid: str) -> None:
    """The freeze rules were followed; the customer takes the way out without penalty: churn recorded."""
    with agent("rina"):
        await starter.send(client, cid, "apologise_for_conduct", cmd.ApologiseForConduct(
            text="Kami mohon maaf atas nada staf kami di meja depan. Itu tidak sesuai standar kami."))
        await starter.assess(client, cid, cmd.Assess(
            verdict=Verdict.invalid, root_cause=RootCause.customer_misunderstanding,
            findings="Freeze requested on day 3 of the cycle; terms apply freezes from the next cycle.",
            clause="Membership terms 6.1", sop_reference="SOP Keanggotaan 6.1"))
    with customer(cid):
        await starter.send(client, cid, "choose_option", cmd.ChooseOption(
            option=CustomerChoice.leave, reason="Memilih berhenti tanpa penalti."))


async def withdrawn(client: Client, cid: str) -> None:
    """The customer found the right size in the parcel and withdrew."""
    with customer(cid):
        await starter.send(client, cid, "log_message", cmd.LogMessage(
            sender=Sender.customer, channel=Channel.email, text="Sorry, the size 10 was in the second bag."))
        await starter.send(client, cid, "withdraw", cmd.Withdraw(reason="Found the right item in the parcel."))


async def sla_breach(client: Client, cid: str) -> None:
    """A letter received weeks ago and entered late: deadlines already breached, escalated at once; then put right."""
    await wait_for(client, cid, lambda s: s.sla_breached)
    with supervisor("budi"):
        await starter.assess(client, cid, cmd.Assess(
            verdict=Verdict.valid, root_cause=RootCause.service,
            findings="Double debit confirmed; the letter was misfiled in the branch post room.",
            remedies=[RemedyKind.refund, RemedyKind.service_credit], default_remedy=RemedyKind.refund))
    with customer(cid):
        await starter.choose_remedy(client, cid, cmd.ChooseRemedy(option_id="A"))
    await _follow_up(client, cid, 4, "Dana sudah kembali.")


@dataclass(frozen=True)
class Scenario:
    file: str
    path: str
    drive: Drive
    received_days_ago: int | None = None


SCENARIOS = [
    Scenario("late-delivery.json", "valid, remedy chosen", valid_remedy_chosen),
    Scenario("faulty-kettle.json", "partially valid", partially_valid),
    Scenario("roaming-charges.json", "invalid, stays", invalid_stays),
    Scenario("gym-contract.json", "invalid, leaves (churn)", invalid_leaves),
    Scenario("wrong-size.json", "withdrawn", withdrawn),
    Scenario("unanswered-letter.json", "SLA breached", sla_breach, received_days_ago=25),
]


def load(scenario: Scenario) -> Any:
    text = (EXAMPLES / scenario.file).read_text(encoding="utf-8")
    intake = starter.parse_intake(text)
    if scenario.received_days_ago is not None:
        received = datetime.now(UTC) - timedelta(days=scenario.received_days_ago)
        intake = intake.model_copy(update={"received_at": received})
    return intake


async def _complaints(console: Console, env: dict[str, str], *args: str) -> int:
    """Run the `complaints` CLI in its own process, as an auditor would, showing its output."""
    console.print(f"[bold]$ complaints {' '.join(args)}[/bold]")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli.main", *args, env=env)
    return await process.wait()


def _show_mail(console: Console, messages: list[EmailMessage]) -> None:
    """What each customer received, in their language, and what they wrote back, as the stack's mail server
    kept it (`complaints mail` reads the same box)."""
    from cli.mail import describe_message

    table = Table(title="Messages to and from customers (the stack's SMTP server; `complaints mail` shows them)")
    for column in ("complaint", "direction", "channel", "language", "subject"):
        table.add_column(column)
    key = os.environ.get("COMPLAINTS_REPLY_KEY")
    for message in messages:
        row = describe_message("", datetime.now(UTC), message, key)
        table.add_row(escape(row["complaint_id"] or "-"), row["direction"], "email",
                      escape(str(message["Content-Language"] or "-")), escape(str(message["Subject"] or "")))
    console.print(table)


async def demo(console: Console, data_dir: Path | None, out: Path) -> bool:
    from audit import bundle as bundles
    from audit import checkpoints
    from audit.report import build_report
    from audit.report import render_html as report_html
    from audit.timeline import build_timeline
    from audit.timeline import render_html as timeline_html
    from eventlog import PostgresEventStore
    from eventlog.connect import create_pool
    from eventlog.keys import CustomerKeyring, master_key

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="complaints-demo-") as scratch:
        root = data_dir or Path(scratch)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TimeElapsedColumn(), console=console)
        async with embedded_stack(root / "stack", temporal_port=17233, ui_port=18233) as stack:
            stack.use()
            # The follow-up is asked at once (not days later), so the demo's customer can answer it on the page.
            os.environ["COMPLAINTS_FOLLOW_UP"] = json.dumps(
                {"after_business_days": 0, "answer_within_business_days": 5, "hour": 0})
            global _issuer, _mail
            _issuer, _mail = stack.issuer(), stack.mail
            env = {**os.environ, **stack.environment()}
            settings = Settings(temporal_address=stack.temporal_address, database_url=stack.postgres.app_url,
                                database_admin_url=None)
            logs.forward_core_logs()
            async with running_worker(settings) as worker, running_gateway(settings, client=worker.client) as gw:
                console.print(f"customer page: http://{gw.page_address} (links in the messages); replies read "
                              f"from {escape(str(stack.mail.maildir)) if stack.mail else '-'}")
                client = worker.client
                results: list[tuple[Scenario, Complaint]] = []
                with progress:
                    task = progress.add_task("complaints", total=len(SCENARIOS))
                    for scenario in SCENARIOS:
                        intake = load(scenario)
                        _customers[intake.complaint_id] = intake.customer.id
                        progress.update(task, description=f"{intake.complaint_id}: {scenario.path}")
                        with acting("intake", "crm-backend"):  # the backend that submits complaints
                            await starter.submit(client, intake)
                        await scenario.drive(client, intake.complaint_id)
                        state = await wait_for(client, intake.complaint_id, lambda s: not s.is_open)
                        results.append((scenario, state))
                        progress.advance(task)
                table = Table(title="Demo complaints")
                for column in ("complaint", "path", "status", "outcome", "events", "chain head"):
                    table.add_column(column)
                for scenario, state in results:
                    table.add_row(state.complaint_id, scenario.path, state.stage.value,
                                  state.outcome.value if state.outcome else "-", str(state.head.sequence),
                                  state.head.hash[:16])
                console.print(table)
                _show_mail(console, stack.mail.messages() if stack.mail else [])
                done_by_customers = Table(title="What customers did themselves (by email and on their page)")
                done_by_customers.add_column("complaint")
                done_by_customers.add_column("action")
                for cid, action in _customer_side:
                    done_by_customers.add_row(cid, action)
                console.print(done_by_customers)

                pool = await create_pool(stack.postgres.app_url, max_size=2)
                try:
                    sealer = await create_pool(stack.postgres.sealer_url, max_size=1)  # the sealer's own role
                    try:
                        sealed = await checkpoints.seal(sealer, checkpoints.signing_key(stack.seal_key), stack.origin)
                    finally:
                        await sealer.close()
                    console.print(f"sealed checkpoint at position {sealed.position}: {sealed.events} events, "
                                  f"{sealed.complaints} complaints, root {sealed.root[:16]}")
                    first = results[0][1].complaint_id
                    bundle_path = out / f"{first}.bundle.json"
                    bundle_path.write_bytes((await bundles.export(pool, first)).to_bytes())
                    store = PostgresEventStore(pool)
                    opener = await CustomerKeyring(pool, master_key()).opener()
                    timeline_path = out / f"timeline-{first}.html"
                    timeline_path.write_text(timeline_html(await build_timeline(store, opener, first)),
                                             encoding="utf-8")
                    report_path = out / "report.html"
                    report_path.write_text(report_html(await build_report(store)), encoding="utf-8")
                finally:
                    await pool.close()
                verified = await _complaints(console, env, "verify", "--all")
                offline = await _complaints(console, env, "verify", "--bundle", str(bundle_path))
        console.print(f"timeline: {timeline_path.resolve()}")
        console.print(f"report:   {report_path.resolve()}")
        console.print(f"bundle:   {bundle_path.resolve()} (verifies with no server: complaints verify --bundle)")
        console.print(f"Temporal, the codec server and PostgreSQL stopped; data was in {root}" +
                      (" (removed)" if data_dir is None else ""))
        closed = all(state.stage is Stage.closed for _, state in results)
        return closed and verified == 0 and offline == 0
