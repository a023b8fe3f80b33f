"""What every command shares: consoles, the error-to-exit-code mapping, the Temporal client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from settings import Settings

T = TypeVar("T")

console = Console()
err = Console(stderr=True)
#: For what a complaint holds (titles, rules, remedies): text, never markup. "Late delivery [/]" is a title.
verbatim = Console(markup=False)
ComplaintArg = Annotated[str, typer.Argument(help="The complaint's id (its workflow is complaint-<id>).")]


def run(work: Coroutine[Any, Any, T] | Callable[[], T]) -> T:
    """Run a command (a coroutine, or a plain callable); map the project's errors to messages and exit codes.
    (The client side is imported only when a command needs it: a command of the log alone starts in a third of
    the time without Temporal's SDK.)"""
    try:
        if callable(work):
            return work()
        return asyncio.run(work)
    except Exception as error:  # mapped below, or raised as it was
        _exit_for(error)
        raise


def _exit_for(error: Exception) -> None:
    """The exit for one of the client side's errors (nothing for any other error). Only a module imported
    can have raised its errors: this imports none."""
    starter, converter = sys.modules.get("starter"), sys.modules.get("codec.converter")
    if starter is not None and isinstance(error, starter.InvalidInput):
        err.print(f"[red]refused:[/red] invalid {escape(error.what)}")
        for e in error.errors:
            err.print(f"  [bold]{escape(e.field)}[/bold]: {escape(e.reason)}")
        raise typer.Exit(2) from None
    if starter is not None and isinstance(error, starter.DecisionRefused):
        kind = f" ({escape(error.kind)})" if error.kind else ""
        err.print(f"[red]refused{kind}:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    if starter is not None and isinstance(error, starter.NotFound):
        err.print(f"[red]not found:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    if converter is not None and isinstance(error, converter.SealedPayload):
        err.print(f"[red]cannot read:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None


async def client(settings: Settings | None = None) -> Any:
    """A client of the Temporal service, with the project's codec. The SDK core's logs go through Python's
    logging (stderr), so that stdout carries what the command prints (JSON with --json), nothing else: every
    command that starts the SDK's runtime first calls logs.forward_core_logs (this, `up`, `demo`, `gateway`)."""
    import logs
    from codec import connect_temporal

    logs.forward_core_logs()
    settings = settings or Settings()
    return await connect_temporal(settings.temporal_address, settings.temporal_namespace)


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as error:
        err.print(f"[red]cannot read {escape(path)}:[/red] {escape(str(error.strerror))}")
        raise typer.Exit(2) from None


def print_state(state: Any, as_json: bool) -> None:
    from cli.render import print_complaint
    from domain.personal import shown

    if as_json:
        console.print_json(state.model_dump_json())
    else:
        # Shown as it is: tables without markup, and the panel's title (which rich always reads as markup)
        # with the subject title escaped. A decision has been recorded by now: its output must not fail.
        print_complaint(verbatim, state.model_copy(update={"subject_title": escape(shown(state.subject_title))}))
