"""``complaints``: submit and drive complaints, run the embedded stack, audit the log.

Exit codes: 0 done; 1 something failed or was not found; 2 input refused (nothing was started or recorded).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

import logs
import starter
from codec import connect_temporal
from domain import commands as cmd
from settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
db_app = typer.Typer(no_args_is_help=True, help="The event log's database.")
dev_app = typer.Typer(no_args_is_help=True, help="The embedded stack (PostgreSQL + Temporal dev server).")
app.add_typer(db_app, name="db")
app.add_typer(dev_app, name="dev")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

ComplaintArg = Annotated[str, typer.Argument(help="The complaint's id (its workflow is complaint-<id>).")]
By = Annotated[str | None, typer.Option("--by", help="Who decides, e.g. agent:ana.")]


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG.")] = False) -> None:
    logs.configure("DEBUG" if verbose else "WARNING")


def run(work: Awaitable[T] | Callable[[], T]) -> T:
    """Run a command (a coroutine, or a plain callable); map the project's errors to messages and exit codes."""
    try:
        if callable(work):
            return work()
        return asyncio.run(work)  # type: ignore[arg-type]
    except starter.InvalidInput as error:
        err.print(f"[red]refused:[/red] invalid {error.what}")
        for e in error.errors:
            err.print(f"  [bold]{e.field}[/bold]: {e.reason}")
        raise typer.Exit(2) from None
    except starter.DecisionRefused as error:
        err.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(2) from None
    except starter.NotFound as error:
        err.print(f"[red]not found:[/red] {error}")
        raise typer.Exit(1) from None


async def _client(settings: Settings | None = None) -> Any:
    settings = settings or Settings()
    return await connect_temporal(settings.temporal_address, settings.temporal_namespace)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        err.print(f"[red]cannot read {path}:[/red] {error.strerror}")
        raise typer.Exit(2) from None


def _print_state(state: Any, as_json: bool) -> None:
    from cli.render import print_complaint

    if as_json:
        console.print_json(state.model_dump_json())
    else:
        print_complaint(console, state)


# --- complaints ---------------------------------------------------------------------------------------------


@app.command()
def submit(
    file: Annotated[str, typer.Argument(help="A complaint JSON file (see examples/), or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Start a complaint's workflow. Submitting the same complaint id again returns the existing one."""
    intake = run(lambda: starter.parse_intake(_read(file)))

    async def go() -> starter.Submission:
        return await starter.submit(await _client(), intake)

    result = run(go())
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
    else:
        verb = "submitted" if result.created else "already submitted"
        console.print(f"{verb}: [bold]{result.complaint_id}[/bold] (workflow {result.workflow_id})")


def _send(complaint_id: str, name: str, fields: dict[str, Any], as_json: bool = False) -> None:
    command = run(lambda: starter.parse_command(name, {k: v for k, v in fields.items() if v is not None}))

    async def go() -> Any:
        return await starter.send(await _client(), complaint_id, name, command)

    _print_state(run(go()), as_json)


@app.command()
def assess(
    complaint_id: ComplaintArg,
    verdict: Annotated[str, typer.Option(help="valid | invalid | partially_valid")],
    root_cause: Annotated[str, typer.Option(help="product | service | communication | "
                                                 "customer_misunderstanding | third_party")],
    findings: Annotated[str, typer.Option(help="What the assessment found.")],
    clause: Annotated[str | None, typer.Option(help="The promise or agreement clause at stake.")] = None,
    remedy: Annotated[list[str] | None, typer.Option(help="A remedy kind to offer (repeat).")] = None,
    default_remedy: Annotated[str | None, typer.Option(help="Applies if the offer expires.")] = None,
    apology: Annotated[str | None, typer.Option(help="Own words instead of the standard apology.")] = None,
    sop: Annotated[str | None, typer.Option(help="SOP or agreement reference (invalid, partial).")] = None,
    explanation: Annotated[str | None, typer.Option(help="Education text instead of the standard one.")] = None,
    offer_days: Annotated[int | None, typer.Option(help="Days the offer stands (default 7).")] = None,
    by: By = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Record the verdict: valid (apology + remedies), invalid (explanation + options), or partially valid."""
    _send(complaint_id, "assess", {
        "verdict": verdict, "root_cause": root_cause, "findings": findings, "clause": clause,
        "remedies": remedy or None, "default_remedy": default_remedy, "apology": apology,
        "sop_reference": sop, "explanation": explanation, "offer_days": offer_days, "by": by,
    }, as_json)


@app.command("choose-remedy")
def choose_remedy(
    complaint_id: ComplaintArg,
    option: Annotated[str, typer.Argument(help="The offered option's id (A, B, ...).")],
    by: By = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The customer's choice among the remedies offered."""
    _send(complaint_id, "choose_remedy", {"option_id": option, "by": by}, as_json)


@app.command()
def update(
    complaint_id: ComplaintArg,
    name: Annotated[str, typer.Argument(help="The update: " + ", ".join(sorted(cmd.COMMANDS)))],
    data: Annotated[str, typer.Argument(help="The argument as JSON, @FILE, or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Send any decision as raw JSON (the same contract a backend or the temporal CLI uses)."""
    raw = _read(data[1:]) if data.startswith("@") else _read("-") if data == "-" else data.encode()
    command = run(lambda: starter.parse_command(name, raw))

    async def go() -> Any:
        return await starter.send(await _client(), complaint_id, name, command)

    _print_state(run(go()), as_json)


@app.command()
def status(
    complaint_id: ComplaintArg,
    as_json: Annotated[bool, typer.Option("--json", help="The folded state as JSON.")] = False,
) -> None:
    """Where a complaint stands: the same details as the Temporal UI, with deadlines and chain head."""

    async def go() -> Any:
        return await starter.status(await _client(), complaint_id)

    _print_state(run(go()), as_json)


# --- database and embedded stack ----------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the event log's migrations (DATABASE_ADMIN_URL, or DATABASE_URL) and grant the app role."""
    from urllib.parse import urlparse

    from eventlog.migrate import migrate

    settings = Settings()
    admin = settings.database_admin_url or settings.require_database()
    role = urlparse(settings.database_url).username if settings.database_url else None
    applied = run(migrate(admin, app_role=role))
    console.print(f"migrated: {', '.join(applied) if applied else 'already current'}")


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


if __name__ == "__main__":
    app()
