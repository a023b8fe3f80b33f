"""complaints: submit and drive complaints, run the embedded stack, audit the log.

Exit codes: 0 done; 1 something failed or was not found (a complaint whose run failed); 2 input or decision
refused (nothing was started or recorded).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

import logs
from cli import decisions
from cli.common import ComplaintArg, console, err, print_state, read_input, run
from cli.common import client as temporal_client
from domain import commands as cmd
from settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="The event log's database.")
dev_app = typer.Typer(no_args_is_help=True, help="The embedded stack (PostgreSQL + Temporal dev server).")
app.add_typer(db_app, name="db")
app.add_typer(dev_app, name="dev")


token_app = typer.Typer(no_args_is_help=True, help="Credentials: tokens naming a principal and its role.")
app.add_typer(token_app, name="token")


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False,
    token: Annotated[str | None, typer.Option(
        "--token", help="Act as the principal this token names (default: COMPLAINTS_TOKEN, which `make up` "
                        "exports). Every start and decision presents it; the log records who it names.",
        show_default=False)] = None,
) -> None:
    import os

    from identity.tokens import TOKEN_ENV

    logs.configure("DEBUG" if verbose else "WARNING")
    if token is not None:
        os.environ[TOKEN_ENV] = token  # read by the client's credential interceptor (identity/client.py)


@token_app.command("issue")
def token_issue(
    subject: Annotated[str, typer.Option(help="Who: an id (ana, CUST-1001, crm-backend).")],
    role: Annotated[str, typer.Option(help="customer | agent | supervisor | intake | auditor")],
    minutes: Annotated[int, typer.Option(help="How long it is valid (at most 1440).")] = 60,
    key_file: Annotated[Path | None, typer.Option(
        help="The issuer's signing key (default: COMPLAINTS_ISSUER_KEY_FILE, the embedded stack's).")] = None,
) -> None:
    """Sign a short-lived token with the development issuer's key (`make up` makes one): for a real
    deployment, tokens come from its identity provider. Prints only the token, for `export COMPLAINTS_TOKEN=`."""
    import os
    from datetime import timedelta

    from domain.principals import SUBJECT_PATTERN, Role
    from identity.tokens import ISSUER_KEY_ENV, IssuerKey

    path = key_file or (Path(os.environ[ISSUER_KEY_ENV]) if os.environ.get(ISSUER_KEY_ENV) else None)
    if path is None:
        err.print(f"[red]refused:[/red] no issuer key: pass --key-file or set {ISSUER_KEY_ENV} (`make up` exports it)")
        raise typer.Exit(2)
    if role not in {r.value for r in Role}:
        err.print(f"[red]refused:[/red] role: not one of {', '.join(Role)}")
        raise typer.Exit(2)
    if not SUBJECT_PATTERN.fullmatch(subject):
        err.print("[red]refused:[/red] subject: letters, digits, . _ @ - only, at most 64")
        raise typer.Exit(2)
    if not 1 <= minutes <= 1440:
        err.print("[red]refused:[/red] minutes: between 1 and 1440 (tokens are short-lived)")
        raise typer.Exit(2)
    print(IssuerKey.from_file(path).issue(subject, role, ttl=timedelta(minutes=minutes)))


@token_app.command("gateway-key")
def token_gateway_key(
    issuer: Annotated[str, typer.Option(help="The gateway's issuer name (the `iss` of the tokens it signs).")] = (
        "complaints-gateway"),
) -> None:
    """Make the customer gateway's signing key. Prints two lines: the key's JSON, a secret for the gateway
    alone (COMPLAINTS_GATEWAY_ISSUER_KEY), then its entry for the workers' COMPLAINTS_TRUSTED_ISSUERS (public),
    which trusts it for the customer role only."""
    from domain.principals import ISSUER_PATTERN
    from identity.tokens import IssuerKey

    if not ISSUER_PATTERN.fullmatch(issuer) or ";" in issuer:
        err.print("[red]refused:[/red] issuer: a plain name or URL")
        raise typer.Exit(2)
    key = IssuerKey.generate(issuer)
    print(key.to_json())
    print(json.dumps(key.trusted(roles=["customer"])))


# --- the customer's side ------------------------------------------------------------------------------------


@app.command()
def gateway() -> None:
    """Serve the customer's page and read their replies into their complaints, until Ctrl-C or SIGTERM (the
    docker-compose `gateway` service). Configured by the environment: COMPLAINTS_PAGE_LISTEN, _PAGE_URL,
    _LINK_KEY, _GATEWAY_ISSUER_KEY(_FILE), _INBOUND (maildir:/path, imaps://user@host/FOLDER or smtp://host:port),
    _IMAP_PASSWORD, _REPLY_KEY, _MAIL_DOMAIN, DATABASE_URL (the application role), COMPLAINTS_MASTER_KEY and
    COMPLAINTS_CODEC_KEYS, TEMPORAL_ADDRESS."""
    import asyncio
    import signal

    from customer.serve import running_gateway

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logs.forward_core_logs()
        async with running_gateway(Settings()) as running:
            source = running.inbound_address or (type(running.inbox).__name__ if running.inbox else "nowhere")
            console.print(f"customer page on {running.page_address}; replies from {source}")
            await stop.wait()

    logs.configure("INFO")
    run(go())


# --- complaints ---------------------------------------------------------------------------------------------


@app.command()
def submit(
    file: Annotated[str, typer.Argument(help="A complaint JSON file (see examples/), or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Start a complaint's workflow. Submitting the same complaint id again starts nothing: it says where the
    complaint submitted before stands (running, or closed), and exits 1 if that run failed (refused at the door:
    Unauthenticated, Forbidden, ComplaintExists...)."""
    import starter

    intake = run(lambda: starter.parse_intake(read_input(file)))

    async def go() -> starter.Submission:
        return await starter.submit(await temporal_client(), intake, task_queue=Settings().task_queue)

    result = run(go())
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
    elif result.created:
        console.print(f"submitted: [bold]{escape(result.complaint_id)}[/bold] (workflow {escape(result.workflow_id)})")
    elif result.ok:
        where = "running" if result.status == "running" else "closed (its workflow completed)"
        console.print(f"already submitted: [bold]{escape(result.complaint_id)}[/bold] "
                      f"(workflow {escape(result.workflow_id)}): {where}")
    else:
        why = f": {result.failure['type']}: {result.failure['message']}" if result.failure else ""
        err.print(f"[red]{escape(result.status)}:[/red] complaint [bold]{escape(result.complaint_id)}[/bold] was "
                  f"submitted before, but its run {escape(result.status)}{escape(why)} (workflow "
                  f"{escape(result.workflow_id)}, run {escape(result.run_id or '?')}); submitting again starts "
                  "nothing")
    if not result.ok:
        raise typer.Exit(1)


# The decisions: one command per update, generated from its model (domain/commands.py), before the raw `update`.
decisions.register(app)


@app.command()
def update(
    complaint_id: ComplaintArg,
    name: Annotated[str, typer.Argument(help="The update: " + ", ".join(sorted(cmd.COMMANDS)))],
    data: Annotated[str, typer.Argument(help="The argument as JSON, @FILE, or - for stdin.")],
    update_id: decisions.UpdateId = None,
    as_json: decisions.AsJson = False,
) -> None:
    """Send any decision as raw JSON (the same contract a backend or the temporal CLI uses)."""
    import starter

    raw = read_input(data[1:]) if data.startswith("@") else read_input("-") if data == "-" else data.encode()
    command = run(lambda: starter.parse_command(name, raw))
    decisions.decide(complaint_id, name, command, update_id, as_json)


@app.command()
def status(
    complaint_id: ComplaintArg,
    as_json: Annotated[bool, typer.Option("--json", help="The folded state as JSON.")] = False,
) -> None:
    """Where a complaint stands: the same details as the Temporal UI, with deadlines and chain head."""
    import starter

    async def go() -> Any:
        return await starter.status(await temporal_client(), complaint_id)

    print_state(run(go()), as_json)


class Awaiting(StrEnum):
    agent = "agent"


@app.command("list")
def list_complaints(
    status: Annotated[str | None, typer.Option(help="Only this stage, e.g. awaiting_assessment or closed.")] = None,
    breaching: Annotated[bool, typer.Option("--breaching", help="Only those with a breached deadline.")] = False,
    customer: Annotated[str | None, typer.Option(help="Only this customer's (an id).")] = None,
    awaiting: Annotated[Awaiting | None, typer.Option(
        help="Only those waiting for someone: 'agent', messages to deliver by hand (no channel reaches the "
             "customer).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Complaints from Temporal's visibility (the same search attributes as the UI's columns). Piped, the table
    is as wide as its rows (not cut to 80 columns); --json is for programs."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    import starter
    from domain.summary import when

    query = starter.list_query(status=status, breaching=breaching, customer=customer,
                               awaiting_agent=awaiting is Awaiting.agent, task_queue=Settings().task_queue)

    async def go() -> list[starter.Listed]:
        return await starter.find(await temporal_client(), query, limit)

    found = run(go())
    if as_json:
        console.print_json(json.dumps([f.as_dict() for f in found]))
        return
    table = Table(title=f"{len(found)} complaint(s)", caption=Text(query), caption_justify="left")
    for column in ("complaint", "status", "channel", "severity", "verdict", "root cause", "customer",
                   "jurisdiction", "SLA due", "breached", "agent"):
        table.add_column(column, no_wrap=True)
    for f in found:  # cells are Text: what visibility holds is shown as it is, never read as markup
        table.add_row(*(Text(v or "") for v in (f.complaint_id, f.status, f.channel, f.severity, f.verdict,
                                                 f.root_cause, f.customer_id, f.jurisdiction)),
                      Text(when(f.sla_due_at) if f.sla_due_at else ""),
                      Text("yes", style="red") if f.sla_breached else Text("no"),
                      Text("to deliver", style="yellow") if f.awaiting_agent else Text(""))
    if console.is_terminal:
        console.print(table)
        return
    # Piped or redirected, rich would assume 80 columns and elide cells: print the table at its full width.
    wide = Measurement.get(console, console.options.update_width(100_000), table).maximum
    Console(width=max(wide, console.width), highlight=False).print(table)


@app.command()
def schema(
    name: Annotated[str | None, typer.Argument(
        help="Only this one: intake, an update's name, errors, or an error type (e.g. ComplaintRefused).")] = None,
) -> None:
    """JSON Schemas of the contract: the intake (workflow input), every update's argument, and under "errors"
    the details of each error a start or a decision can be refused with (by ApplicationError type: its details
    hold exactly one value of that schema, or none where it is null)."""
    from domain.errors import ERRORS, details_schema
    from domain.intake import ComplaintIntake

    schemas: dict[str, Any] = {"intake": ComplaintIntake.model_json_schema()}
    schemas.update({update: model.model_json_schema() for update, model in cmd.COMMANDS.items()})
    schemas["errors"] = {kind: details_schema(kind) for kind in ERRORS}
    known = {**schemas, **schemas["errors"]}
    if name is not None and name not in known:
        err.print(f"no schema {escape(repr(name))}; known: {', '.join(known)}")
        raise typer.Exit(2)
    print(json.dumps(known[name] if name else schemas, indent=2, ensure_ascii=False))


# --- database and embedded stack ----------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the event log's migrations as the schema owner (DATABASE_ADMIN_URL, or DATABASE_URL) and give each
    role its rights and nothing more: the application role (DATABASE_URL), the sealer (DATABASE_SEALER_URL) and
    the eraser (DATABASE_ERASER_URL). The URLs only name the roles here; their passwords are set elsewhere."""
    from urllib.parse import urlparse

    from eventlog.migrate import migrate

    settings = Settings()
    admin = settings.database_admin_url or settings.require_database()

    def role(url: str | None) -> str | None:
        return urlparse(url).username if url else None

    roles = {"app_role": role(settings.database_url), "sealer_role": role(settings.database_sealer_url),
             "eraser_role": role(settings.database_eraser_url)}
    applied = run(migrate(admin, **roles))
    granted = ", ".join(f"{kind.removesuffix('_role')} to {name}" for kind, name in roles.items() if name)
    console.print(escape(f"migrated: {', '.join(applied) if applied else 'already current'}"
                         + (f"; granted {granted}" if granted else "")))


@dev_app.command("up")
def dev_up(
    data_dir: Annotated[Path, typer.Option(help="Where PostgreSQL and Temporal keep their data.")] = Path(".data/dev"),
    port: Annotated[int, typer.Option(help="Temporal gRPC port (a free one if taken).")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port (a free one if taken).")] = 8233,
) -> None:
    """Start PostgreSQL, Temporal (with its UI) and a worker in the foreground; Ctrl-C stops them all."""
    from cli.up import up

    logs.configure("INFO")
    run(up(data_dir, port, ui_port, console))


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="Keep the demo's data here (default: a temp dir).")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the timeline and report HTML.")] = Path("out"),
) -> None:
    """Start the embedded stack and a worker, drive the example complaints to closure, verify, stop."""
    from cli.demo import demo as run_demo

    logs.configure("WARNING")
    ok = run(run_demo(console, data_dir, out))
    raise typer.Exit(0 if ok else 1)


from cli import audit as _audit  # noqa: E402  (the auditor's commands, kept in their own module)

app.command("verify")(_audit.verify)
app.command("export")(_audit.export)
app.command("seal")(_audit.seal)
app.command("erase-customer")(_audit.erase_customer)
app.command("rotate-master-key")(_audit.rotate_master_key)
app.command("timeline")(_audit.timeline)
app.command("report")(_audit.report)
app.command("archive")(_audit.archive)

from cli.mail import mail as _mail  # noqa: E402  (the embedded stack's mail box, in its own module)

app.command("mail")(_mail)

from cli.webhook import webhook_app as _webhook_app  # noqa: E402  (signed webhooks, in their own module)

app.add_typer(_webhook_app, name="webhook")

def main() -> None:
    """The console script. Once the command is done, the process ends without the interpreter's teardown:
    the Temporal SDK's native runtime can crash while Python finalises (seen about once in 35 runs of a
    short command, SIGSEGV after its output), which would turn a finished command into a failure."""
    import os
    import sys

    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if done.code is not None and not isinstance(done.code, int):
            print(done.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
