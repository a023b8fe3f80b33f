"""`complaints webhook ...`: signed webhooks for backends (webhooks/). As the application role
(DATABASE_URL); `run` also needs COMPLAINTS_MASTER_KEY for a webhook that may see personal fields."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

import webhooks
from cli.audit import log_pool
from cli.common import console, err, run

webhook_app = typer.Typer(no_args_is_help=True, help="Signed webhooks: backends told of every event as it happens.")


async def _known(pool: Any, webhook_id: str) -> webhooks.Webhook:
    found = await webhooks.get(pool, webhook_id)
    if found is None:
        err.print(f"[red]no webhook {escape(webhook_id)}[/red] (`complaints webhook list`)")
        raise typer.Exit(1)
    return found


@webhook_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST (http or https).")],
    events: Annotated[list[str] | None, typer.Option("--event", "-e", help="An event type to deliver (repeat; "
                                                                           "default: every type).")] = None,
    personal: Annotated[bool, typer.Option(help="Deliver personal fields opened (else they stay sealed, as "
                                                "auditors see them).")] = False,
) -> None:
    """Subscribe URL to what is appended from now on. Prints the webhook's id and its signing secret (shown
    this once: keep it where the backend verifies signatures)."""
    async def go() -> webhooks.Webhook:
        async with log_pool() as pool:
            return await webhooks.add(pool, url, events or (), personal=personal)

    try:
        made = run(go())
    except ValueError as refused:
        err.print(f"[red]refused:[/red] {escape(str(refused))}")
        raise typer.Exit(2) from None
    console.print_json(json.dumps({"id": made.id, "url": made.url, "events": list(made.events) or "all",
                                   "personal": made.personal, "secret": made.secret}))


@webhook_app.command("remove")
def remove(webhook_id: Annotated[str, typer.Argument(help="The webhook's id.")]) -> None:
    """Stop delivering to a webhook, and forget what it parked."""
    async def go() -> bool:
        async with log_pool() as pool:
            return await webhooks.remove(pool, webhook_id)

    if not run(go()):
        err.print(f"[red]no webhook {escape(webhook_id)}[/red]")
        raise typer.Exit(1)
    console.print(f"removed {escape(webhook_id)}")


@webhook_app.command("list")
def list_() -> None:
    """Every webhook, where its deliveries stand, and what waits parked (never the secrets)."""
    async def go() -> list[dict[str, Any]]:
        async with log_pool() as pool:
            return [await webhooks.status(pool, w) for w in await webhooks.listing(pool)]

    table = Table("id", "url", "events", "handled", "behind", "parked")
    for s in run(go()):
        table.add_row(s["id"], escape(s["url"]), ", ".join(s["events"]) if isinstance(s["events"], list) else "all",
                      str(s["handled"]), str(s["behind"]), str(s["parked"]))
    console.print(table)


@webhook_app.command("status")
def status(webhook_id: Annotated[str, typer.Argument(help="The webhook's id.")]) -> None:
    """Where one webhook's deliveries stand, as JSON: handled, behind, parked (with the last error)."""
    async def go() -> dict[str, Any]:
        async with log_pool() as pool:
            found = await webhooks.status(pool, await _known(pool, webhook_id))
            found["parked_events"] = [{k: str(v) if k == "parked_at" else v for k, v in p.items()}
                                      for p in await webhooks.parked(pool, webhook_id)]
            return found

    console.print_json(json.dumps(run(go())))


@webhook_app.command("replay")
def replay(
    webhook_id: Annotated[str, typer.Argument(help="The webhook's id.")],
    from_position: Annotated[int | None, typer.Option("--from", help="Deliver again every event from this log "
                                                                    "position on (forgetting what was parked).")]
    = None,
) -> None:
    """After the backend is repaired: deliver what was parked, oldest first (exit 1 if some still fail), or
    with --from, move the webhook back to a position (its `run` delivers from there)."""
    from eventlog.keys import CustomerKeyring, master_key

    async def go() -> tuple[int, int]:
        async with log_pool() as pool:
            webhook = await _known(pool, webhook_id)
            if from_position is not None:
                await webhooks.replay_from(pool, webhook, from_position)
                return 0, 0
            keyring = CustomerKeyring(pool, master_key()) if webhook.personal else None
            return await webhooks.Deliverer(pool, webhook, keyring=keyring, attempts=3).replay_parked()

    try:
        delivered, still = run(go())
    except ValueError as refused:
        err.print(f"[red]refused:[/red] {escape(str(refused))}")
        raise typer.Exit(2) from None
    if from_position is not None:
        console.print(f"{escape(webhook_id)} will deliver again from position {from_position}")
        return
    console.print(f"delivered {delivered}, still parked {still}")
    raise typer.Exit(1 if still else 0)


@webhook_app.command("run")
def run_deliveries() -> None:
    """Deliver every webhook's events as they are appended, until Ctrl-C or SIGTERM."""
    from eventlog.keys import CustomerKeyring, master_key
    from settings import Settings

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with log_pool() as pool:
            keyring = None
            try:
                keyring = CustomerKeyring(pool, master_key())
            except (SystemExit, ValueError, KeyError):
                err.print("no master key: webhooks that may see personal fields are not delivered")
            err.print(f"delivering webhooks ({Settings().database_url and 'application role'}); Ctrl-C stops")
            from worker import consumer_lag

            await webhooks.run_all(pool, stop, keyring=keyring, lag=consumer_lag)

    run(go())
