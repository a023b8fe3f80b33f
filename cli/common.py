"""What every command shares: consoles, the error-to-exit-code mapping, the Temporal client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

import starter
from codec import connect_temporal
from codec.converter import SealedPayload
from settings import Settings

T = TypeVar("T")

console = Console()
err = Console(stderr=True)
ComplaintArg = Annotated[str, typer.Argument(help="The complaint's id (its workflow is complaint-<id>).")]
By = Annotated[str | None, typer.Option(
    "--by", help="Whose decision, when not yours: 'customer' records what the customer decided (by phone, in "
                 "person) as made on their behalf. The log records you, the authenticated caller.")]


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
    except SealedPayload as error:
        err.print(f"[red]cannot read:[/red] {error}")
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
        err.print(f"[red]cannot read {path}:[/red] {error.strerror}")
        raise typer.Exit(2) from None


def print_state(state: Any, as_json: bool) -> None:
    from cli.render import print_complaint

    if as_json:
        console.print_json(state.model_dump_json())
    else:
        print_complaint(console, state)
