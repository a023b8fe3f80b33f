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

import starter
from codec import connect_temporal
from codec.converter import SealedPayload
from settings import Settings

T = TypeVar("T")

console = Console()
err = Console(stderr=True)
#: For what a complaint holds (titles, rules, remedies): text, never markup. "Late delivery [/]" is a title.
verbatim = Console(markup=False)
ComplaintArg = Annotated[str, typer.Argument(help="The complaint's id (its workflow is complaint-<id>).")]


def run(work: Coroutine[Any, Any, T] | Callable[[], T]) -> T:
    """Run a command (a coroutine, or a plain callable); map the project's errors to messages and exit codes."""
    try:
        if callable(work):
            return work()
        return asyncio.run(work)
    except starter.InvalidInput as error:
        err.print(f"[red]refused:[/red] invalid {escape(error.what)}")
        for e in error.errors:
            err.print(f"  [bold]{escape(e.field)}[/bold]: {escape(e.reason)}")
        raise typer.Exit(2) from None
    except starter.DecisionRefused as error:
        kind = f" ({escape(error.kind)})" if error.kind else ""
        err.print(f"[red]refused{kind}:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    except starter.NotFound as error:
        err.print(f"[red]not found:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    except SealedPayload as error:
        err.print(f"[red]cannot read:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None


async def client(settings: Settings | None = None) -> Any:
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
