"""`make bench`: every figure of docs/benchmarks.md, measured in one run on the embedded stack."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import logs
from bench import appends, memory, throughput, verification
from bench.figures import Results
from bench.synthetic import template
from bench.write import write
from codec import connect_temporal
from codec.encryption import EncryptionCodec, parse_keys
from dev.mailserver import mail_server_process
from dev.stack import embedded_stack
from eventlog.connect import create_pool
from settings import MailSettings
from worker import build_worker

STEPS = 17
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


SECTIONS = ("throughput", "appends", "verification", "memory")


async def run(console: Console, only: set[str]) -> Results:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="complaints-bench-") as tmp, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console) as progress:
        task = progress.add_task("starting the embedded stack", total=STEPS)

        def advance(done: str) -> None:
            progress.update(task, advance=1, description=done)
            progress.console.log(done)

        async with embedded_stack(Path(tmp) / "stack") as stack:
            stack.use()  # the in-process worker reads the master key as the real one does
            client = await connect_temporal(stack.temporal_address,
                                            codec=EncryptionCodec(parse_keys(stack.codec_keys)))
            pool = await create_pool(stack.postgres.app_url)
            try:
                advance("embedded stack started")
                if "throughput" in only:
                    with mail_server_process(Path(tmp) / "relay") as (host, port):
                        await throughput.measure(client, pool, results, advance,
                                                 mail=MailSettings(smtp_host=host, smtp_port=port))
                else:
                    async with build_worker(client, pool, throughput.QUEUE):
                        await throughput.calibrate(client, pool)
                closed = await pool.fetchval("SELECT complaint_id FROM complaint_events WHERE type = 'ComplaintClosed'"
                                             " ORDER BY position LIMIT 1")
                shape = await template(stack.postgres.admin_url, closed)
                if "appends" in only:
                    await appends.measure(stack.postgres, shape, results, advance)
                if "verification" in only:
                    await verification.measure(stack.postgres, shape, results, advance)
                if "memory" in only:
                    await memory.measure(stack, client, pool, results, advance, log_dir=Path(tmp))
            finally:
                await pool.close()
    return results


def main() -> None:
    """``python -m bench [section...]``: all sections write docs/benchmarks.md; some only print."""
    only = set(sys.argv[1:]) or set(SECTIONS)
    if only - set(SECTIONS):
        sys.exit(f"unknown section(s) {sorted(only - set(SECTIONS))}; choose among {', '.join(SECTIONS)}")
    logs.configure("WARNING")
    console = Console(stderr=True)
    started = time.monotonic()
    results = asyncio.run(run(console, only))
    minutes = (time.monotonic() - started) / 60
    if only == set(SECTIONS):
        write(results, DOC, minutes)
        console.print(f"wrote {DOC} ({minutes:.1f} min)")
    for figure in results.figures:
        ratio = f"{figure.ratio:.2f}" if figure.ratio else "-"
        console.print(f"{figure.name}: {figure.ours:,.2f} vs {figure.baseline or 0:,.2f} {figure.unit} (ratio {ratio})")
    for lever in results.levers:
        console.print(" | ".join(lever))
    unmet = [f for f in results.figures if f.met is False]
    for figure in unmet:
        console.print(f"[yellow]goal not met:[/yellow] {figure.name}: {figure.goal}")
    sys.exit(0)


if __name__ == "__main__":
    main()
