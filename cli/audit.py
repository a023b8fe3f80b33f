"""The auditor's commands: verify, export, seal, erase-customer (timeline and report beside them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audit import bundle as bundles
from audit import checkpoints as cp
from audit.verify import Verification, Verifier
from cli.common import client, console, err, read_input, run
from eventlog import PostgresEventStore
from eventlog.connect import create_pool
from settings import Settings


@asynccontextmanager
async def log_pool(url: str | None = None) -> AsyncIterator[asyncpg.Pool]:
    """Connections as the application role (reading), or as ``url``'s role (sealing, erasing)."""
    pool = await create_pool(url or Settings().require_database(), min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def _published(path: Path | None) -> list[cp.Checkpoint]:
    """Published checkpoints: one JSON object per line, as `complaints seal` prints them."""
    if path is None:
        return []
    lines = [line for line in read_input(str(path)).decode().splitlines() if line.strip()]
    return [cp.Checkpoint.model_validate_json(line) for line in lines]


def _print_breaks(result: Verification | bundles.BundleCheck) -> None:
    table = Table(title="Breaks", show_lines=False)
    for column in ("complaint", "sequence", "kind", "detail"):
        table.add_column(column)
    for b in result.breaks:
        table.add_row(b.complaint_id, str(b.sequence) if b.sequence else "-", f"[red]{b.kind}[/red]", b.detail)
    console.print(table)


def verify(
    complaint_ids: Annotated[list[str] | None, typer.Argument(help="Complaints to verify.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every complaint in the log or in Temporal, and every "
                                                      "checkpoint.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The result as JSON.")] = False,
    bundle: Annotated[Path | None, typer.Option(help="Verify an exported bundle offline (no server).")] = None,
    checkpoints: Annotated[Path | None, typer.Option(help="Published checkpoints (JSON lines) that the log "
                                                          "must still extend.")] = None,
    public_key: Annotated[str | None, typer.Option(help="The seal public key you trust, as `complaints seal "
                                                        "--public-key` printed it (default: "
                                                        f"${cp.PUBLIC_KEY_ENV}). Without one, no signature is "
                                                        "called verified (exit 3).")] = None,
    log_only: Annotated[bool, typer.Option("--log-only", help="Chains and checkpoints only, without "
                                                             "Temporal as the second witness.")] = False,
    since_checkpoint: Annotated[bool, typer.Option(
        "--since-checkpoint", help="With --all --log-only: only what was appended since the newest checkpoint a "
                                   "full verify proved (kept in --state), in time proportional to that.")] = False,
    state: Annotated[Path | None, typer.Option(
        help="Where a full verify keeps what it proved, and --since-checkpoint starts from (default: "
             "COMPLAINTS_VERIFY_STATE, else ~/.cache/complaints/verified-<origin>.json).",
        show_default=False)] = None,
) -> None:
    """Prove complaints' histories: chain, log against workflow, replay, both witnesses, checkpoints.
    A closed complaint whose history retention removed is checked against its archived witness.
    Exit 1 when anything breaks; 3 when nothing broke but a checkpoint's or an archived witness's signature
    could not be checked against a trusted public key (so who signed it is not proven)."""
    import os

    trusted = public_key or os.environ.get(cp.PUBLIC_KEY_ENV)
    if trusted:
        try:
            cp.TrustedKey.parse(trusted)
        except (ValueError, IndexError) as error:
            err.print(f"[red]refused:[/red] public key: {error}")
            raise typer.Exit(2) from None
    if bundle is not None:
        checked = bundles.verify(read_input(str(bundle)), trusted)
        unchecked = checked.ok and not checked.signature_checked
        if as_json:
            console.print_json(json.dumps({"ok": checked.ok, "complaint_id": checked.complaint_id,
                                           "events": checked.events, "sealed_upto": checked.sealed_upto,
                                           "signature_checked": checked.signature_checked,
                                           "breaks": [b.model_dump() for b in checked.breaks]}))
        elif unchecked:
            console.print(f"[yellow]not verified[/yellow]: the bundle of {checked.complaint_id} is consistent "
                          f"({checked.events} events, a proof up to #{checked.sealed_upto}), but its checkpoint's "
                          "signature was NOT checked against a trusted key: anyone can sign a made-up bundle. "
                          f"Pass --public-key (or set {cp.PUBLIC_KEY_ENV}) with the key the log's operator published.")
        elif checked.ok:
            console.print(f"[green]verified[/green] bundle of {checked.complaint_id}: {checked.events} events, "
                          f"sealed up to #{checked.sealed_upto}, signed by the trusted key")
        else:
            _print_breaks(checked)
        raise typer.Exit(1 if not checked.ok else 3 if unchecked else 0)
    if not all_ and not complaint_ids:
        err.print("name complaints, or --all, or --bundle FILE")
        raise typer.Exit(2)
    from audit import incremental

    state_file = state or incremental.state_path(os.environ.get(cp.ORIGIN_ENV))
    if since_checkpoint:
        if not (all_ and log_only) or complaint_ids:
            err.print("[red]refused:[/red] --since-checkpoint goes with --all --log-only")
            raise typer.Exit(2)
        if not trusted:
            err.print(f"[red]refused:[/red] --since-checkpoint needs the trusted public key (--public-key or "
                      f"{cp.PUBLIC_KEY_ENV}): it starts from a checkpoint whose signature must hold")
            raise typer.Exit(2)

    async def remember(pool: Any, result: Verification) -> None:
        """After a full verify that broke nothing, with the trusted key: keep the newest checkpoint proved."""
        if not (all_ and result.ok and trusted and not result.unchecked_signatures):
            return
        try:
            stored, _ = await cp.stored_checkpoints(pool)
            if stored:
                newest = max(stored, key=lambda c: c.position)
                if result.newest_heads is not None and result.newest_heads[0] == newest.position:
                    kept = incremental.VerifiedState.of(newest, result.newest_heads[1])
                else:  # sealed while this run verified
                    kept = await incremental.state_at(PostgresEventStore(pool), newest)
                incremental.save(kept, state_file)
        except (OSError, asyncpg.PostgresError) as error:  # a convenience for the next run: never the verdict
            err.print(f"[yellow]the verified checkpoint was not kept for --since-checkpoint:[/yellow] {error}")

    async def since() -> Verification:
        assert trusted is not None
        async with log_pool() as pool:
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
                          TimeElapsedColumn(), console=err, disable=as_json) as progress:
                task = progress.add_task("events since the checkpoint", total=None)
                state = incremental.load(state_file)
                result, kept = await incremental.verify_since(
                    PostgresEventStore(pool), state, trusted, lambda n: progress.advance(task, n))
            if kept is not state:  # a newer checkpoint verified: the next run starts there
                incremental.save(kept, state_file)
            return result

    async def go() -> Verification:
        if since_checkpoint:
            try:
                return await since()
            except incremental.NoVerifiedCheckpoint as missing:
                err.print(f"[red]refused:[/red] {missing}")
                raise typer.Exit(2) from None
        async with log_pool() as pool:
            temporal = None if log_only else await client()
            verifier = Verifier(PostgresEventStore(pool), temporal, _published(checkpoints), trusted,
                                task_queue=Settings().task_queue, dsn=Settings().require_database())
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, disable=as_json) as progress:
                tasks: dict[str, Any] = {}

                def total(kind: str, n: int) -> None:
                    label = "chains (events)" if kind == "events" else "witnesses (complaints)"
                    tasks[kind] = progress.add_task(label, total=n)

                result = await verifier.verify(
                    None if all_ else list(complaint_ids or []),
                    progress_events=lambda n: progress.advance(tasks["events"], n) if "events" in tasks else None,
                    progress_complaints=lambda n: progress.advance(tasks["complaints"], n)
                    if "complaints" in tasks else None,
                    on_total=total,
                )
            await remember(pool, result)
            return result

    result = run(go())
    if as_json:
        console.print_json(json.dumps(result.as_json()))
    else:
        if result.breaks:
            _print_breaks(result)
        rate = f"{result.events / result.seconds:,.0f} events/s" if result.seconds else ""
        verdict = "[green]all verified[/green]" if result.ok else f"[red]{len(result.breaks)} break(s)[/red]"
        witnessed = result.as_json()["witnessed_by"]
        against = f" ({witnessed['history']} against Temporal's history, {witnessed['archive']} against their " \
                  "archived witness once retention removed it)" if witnessed["archive"] else ""
        console.print(f"{verdict}: {len(result.by_complaint)} complaints{against}, {result.events} events, "
                      f"{result.checkpoints} checkpoints, {result.seconds:.2f} s ({rate})")
        if result.unchecked_signatures:
            console.print(f"[yellow]{result.unchecked_signatures} checkpoint signature(s) NOT checked[/yellow]: no "
                          f"trusted public key (--public-key or {cp.PUBLIC_KEY_ENV}); who signed them is not proven.")
        if result.unchecked_archives:
            console.print(f"[yellow]{result.unchecked_archives} archived witness signature(s) NOT checked[/yellow]: "
                          f"no trusted public key (--public-key or {cp.PUBLIC_KEY_ENV}); an archive is then only as "
                          "good as the database that holds it.")
    unchecked = bool(result.unchecked_signatures or result.unchecked_archives)
    raise typer.Exit(1 if not result.ok else 3 if unchecked else 0)


def export(
    complaint_id: Annotated[str, typer.Argument(help="The complaint to export.")],
    bundle: Annotated[Path, typer.Option(help="Where to write the bundle (JSON).")],
) -> None:
    """Write a complaint's events with the newest checkpoint covering them and a proof of its head."""

    async def go() -> bundles.Bundle:
        async with log_pool() as pool:
            return await bundles.export(pool, complaint_id)

    try:
        written = run(go())
    except LookupError as error:
        err.print(f"[red]not found:[/red] {error}")
        raise typer.Exit(1) from None
    bundle.write_bytes(written.to_bytes())
    sealed = f"sealed up to #{written.proof.sequence} at position {written.checkpoint.position}" \
        if written.checkpoint and written.proof \
        else "[yellow]not covered by any checkpoint: run `complaints seal`[/yellow]"
    console.print(f"wrote {bundle}: {len(written.events)} events of {complaint_id}, {sealed}")


def seal(
    public_key: Annotated[bool, typer.Option("--public-key", help="Only print the note verifier key auditors "
                                                                  "trust (name+keyid+key).")] = False,
) -> None:
    """Sign a checkpoint of the whole log (COMPLAINTS_SEAL_KEY, as COMPLAINTS_LOG_ORIGIN) under the sealer's
    database role (DATABASE_SEALER_URL), store it, and print it for publishing. Refused when the stored row
    is not the one just signed."""
    key = cp.signing_key()
    origin = cp.log_origin()
    if public_key:
        console.print(cp.verifier_key(origin, key), highlight=False)
        return
    url = Settings().require("DATABASE_SEALER_URL")

    async def go() -> cp.Checkpoint:
        async with log_pool(url) as pool:
            return await cp.seal(pool, key, origin)

    try:
        checkpoint = run(go())
    except cp.SealRefused as refused:
        err.print(f"[red]refused:[/red] {refused}")
        raise typer.Exit(1) from None
    err.print(f"sealed position {checkpoint.position}: {checkpoint.events} events of {checkpoint.complaints} "
              "complaints. Publish the line below somewhere the database's administrators cannot change:")
    print(checkpoint.model_dump_json())


def erase_customer(
    customer_id: Annotated[str, typer.Argument(help="The customer's id (never a name).")],
    requested_by: Annotated[str, typer.Option(help="Who asked for the erasure (recorded with it).")],
    legal_basis: Annotated[str, typer.Option(help="Why: the request and its legal basis, e.g. 'UU PDP art. 8, "
                                                  "request 2026-114' (recorded with it).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Right to erasure (UU PDP, GDPR): destroy one customer's keys, recording who asked, why, and which
    database user did it (DATABASE_ERASER_URL). Their personal fields become unreadable for good; every
    chain, fold and report figure stays as it was. Refused (exit 1, nothing destroyed) while a complaint of
    the customer is open: withdraw or close it first. After it, nothing personal is kept for that customer id
    again."""
    from rich.markup import escape

    from eventlog.keys import OpenComplaints
    from eventlog.keys import erase_customer as erase

    if not requested_by.strip() or not legal_basis.strip():
        err.print("[red]refused:[/red] --requested-by and --legal-basis are recorded with the erasure: both are needed")
        raise typer.Exit(2)
    url = Settings().require("DATABASE_ERASER_URL")
    if not yes:
        typer.confirm(f"Destroy every key of customer {customer_id}? This cannot be undone.", abort=True)

    async def go() -> int:
        async with log_pool(url) as pool:
            return await erase(pool, customer_id, requested_by=requested_by, legal_basis=legal_basis)

    try:
        destroyed = run(go())
    except OpenComplaints as refused:
        err.print(f"[red]refused:[/red] {escape(str(refused))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"customer {customer_id}: {destroyed} key(s) destroyed" if destroyed
                  else f"customer {customer_id}: no live key (never seen, or already erased)")


def rotate_master_key() -> None:
    """Re-wrap every live customer key with the newest master key (the last in COMPLAINTS_MASTER_KEY), under
    the eraser's database role (DATABASE_ERASER_URL), while workers run. Rotation: give every worker the new
    key last in COMPLAINTS_MASTER_KEY (old first, comma-separated), run this, then remove the old key. Exit 1
    while some key could not be unwrapped (its master key is not listed): keep that one until they are done."""
    from eventlog.keys import CustomerKeyring, Rotation, master_key

    url = Settings().require("DATABASE_ERASER_URL")
    keys = master_key()

    async def go() -> Rotation:
        async with log_pool(url) as pool:
            return await CustomerKeyring(pool, keys).rotate()

    done = run(go())
    console.print(f"master key {done.master_key_id}: {done.rewrapped} key(s) re-wrapped, {done.current} already "
                  f"wrapped with it, {done.changed} changed meanwhile (destroyed or re-wrapped elsewhere)")
    if done.unavailable:
        shown = ", ".join(done.unavailable[:5]) + ("..." if len(done.unavailable) > 5 else "")
        err.print(f"[red]{len(done.unavailable)} key(s) not re-wrapped[/red], their master key is not in "
                  f"COMPLAINTS_MASTER_KEY: {shown}")
        raise typer.Exit(1)


def timeline(
    complaint_id: Annotated[str, typer.Argument(help="The complaint.")],
    as_json: Annotated[bool, typer.Option("--json", help="The timeline as JSON.")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML file here.")] = None,
) -> None:
    """The complaint's story from the log: who did what when (business days since intake), the conversation
    verbatim, deadlines met or missed, each step's hash, and a verified/broken badge."""
    from audit.timeline import build_timeline, render_html, render_json, render_text
    from eventlog.keys import CustomerKeyring, master_key

    async def go() -> Any:
        async with log_pool() as pool:
            opener = await CustomerKeyring(pool, master_key()).opener()
            store = PostgresEventStore(pool)
            # Verified as verify verifies: the chain, and the workflow's history (or its archived witness).
            verifier = Verifier(store, await client(), task_queue=Settings().task_queue)
            return await build_timeline(store, opener, complaint_id, verifier=verifier)

    story = run(go())
    if not story.entries:
        err.print(f"[red]not found:[/red] the log has no events of complaint {complaint_id!r}")
        raise typer.Exit(1)
    if html is not None:
        html.write_text(render_html(story), encoding="utf-8")
        err.print(f"wrote {html}")
    if as_json:
        console.print_json(json.dumps(render_json(story), ensure_ascii=False))
    else:
        render_text(story, console)
    raise typer.Exit(0 if story.verified else 1)


def report(
    since: Annotated[str | None, typer.Option(help="Only complaints received on or after this date (YYYY-MM-DD).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="The figures as JSON.")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML report with charts.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Forget the live figures and fold the whole log again.")] = False,
    scan: Annotated[bool, typer.Option(help="Read the whole log instead of the live figures (as --since does).")]
    = False,
    follow: Annotated[bool, typer.Option(help="Keep the live figures current as the log grows, until Ctrl-C or "
                                              "SIGTERM (the docker-compose `live-report` service).")] = False,
) -> None:
    """Root causes, churn by cause, business-day times, breaches, satisfaction, reopen rate and remedies,
    from the log alone: the live figures, which the consumer `report` keeps as the log grows (caught up first),
    or a read of the whole log (--scan, --since)."""
    from datetime import date

    from audit import live
    from audit.report import build_report, render_html, render_json, render_text

    try:
        day = date.fromisoformat(since) if since else None
    except ValueError:
        err.print(f"[red]refused:[/red] --since {since!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None

    if rebuild and (scan or day):
        err.print("[red]refused:[/red] --rebuild rebuilds the live figures; --scan and --since read the log instead")
        raise typer.Exit(2)
    if follow:
        run(_follow_report())
        return

    async def go() -> Any:
        async with log_pool() as pool:
            if scan or day:
                return await build_report(PostgresEventStore(pool), day, Settings().require_database())
            figures, events = await (live.rebuild(pool) if rebuild else live.live_report(pool))
            err.print(f"live figures ({'rebuilt, ' if rebuild else ''}{events:,} events folded)")
            return figures

    figures = run(go())
    if html is not None:
        html.write_text(render_html(figures), encoding="utf-8")
        err.print(f"wrote {html}")
    if as_json:
        console.print_json(json.dumps(render_json(figures)))
    else:
        render_text(figures, console)


async def _follow_report() -> None:
    import asyncio
    import signal

    from audit import live

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from worker import consumer_lag

    async with log_pool() as pool, live.following(pool, consumer_lag(live.NAME)) as task:
        err.print("keeping the live report's figures current (Ctrl-C stops)")
        await asyncio.wait([task, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the consumer failed: say why, and exit with it


def archive(
    complaint_ids: Annotated[list[str] | None, typer.Argument(help="Complaints to archive (default: every closed "
                                                                    "one not archived yet).")] = None,
) -> None:
    """Keep a second witness that outlives Temporal's retention: each closed complaint that verifies whole
    against its history gets its witnessed hashes archived, signed with the seal key (COMPLAINTS_SEAL_KEY,
    as COMPLAINTS_LOG_ORIGIN), under the sealer's role (DATABASE_SEALER_URL). Run it more often than the
    namespace's retention period. Exit 1 when a closed complaint does not verify (it is not archived)."""
    from rich.markup import escape

    from audit.verify import Archiving, archive_closed

    key = cp.signing_key()
    origin = cp.log_origin()
    url = Settings().require("DATABASE_SEALER_URL")

    async def go() -> Archiving:
        async with log_pool(url) as pool:
            return await archive_closed(PostgresEventStore(pool), await client(), key, origin,
                                        ids=complaint_ids or None, task_queue=Settings().task_queue)

    done = run(go())
    console.print(f"archived {len(done.archived)}, already archived {len(done.already)}, still running "
                  f"{len(done.running)}, history already gone {len(done.gone)}, refused {len(done.refused)}",
                  highlight=False)
    for complaint_id, breaks in done.refused.items():
        err.print(f"[red]not archived:[/red] {escape(complaint_id)}: " + "; ".join(escape(b.kind) for b in breaks))
    raise typer.Exit(1 if done.refused else 0)
