"""`make up`: the embedded stack and a worker in the foreground, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

import logs
from audit import live
from customer.serve import running_gateway
from dev.stack import embedded_stack, free_port
from eventlog.connect import create_pool
from settings import Settings
from worker import consumer_lag, running_worker


async def up(data_dir: Path, port: int, ui_port: int, console: Console) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with embedded_stack(data_dir, temporal_port=port, ui_port=ui_port) as stack:
        stack.use()
        metrics = os.environ.get("COMPLAINTS_METRICS_LISTEN") or f"127.0.0.1:{free_port(9464)}"
        settings = Settings(temporal_address=stack.temporal_address, database_url=stack.postgres.app_url,
                            database_admin_url=None, metrics_listen=metrics)
        report_pool = await create_pool(stack.postgres.app_url, max_size=2)
        logs.forward_core_logs()
        try:
            async with running_worker(settings) as worker, running_gateway(settings, client=worker.client) as gateway, \
                    live.following(report_pool, consumer_lag(live.NAME, metrics)):
                mail = (f"Mail (SMTP): {stack.mail.address}, every message kept in {escape(str(stack.mail.maildir))}"
                        " (`complaints mail`); replies to complaints+…@ addresses are filed into their complaint\n"
                        ) if stack.mail else ""
                page = f"Customer page: http://{gateway.page_address} (the messages link to it)\n"
                scrape = f"Metrics:     http://{metrics}/metrics (the worker's, for Prometheus)\n"
                console.print(Panel.fit(
                    f"Temporal UI: [link={stack.ui_url}]{stack.ui_url}[/link]\n"
                    f"Temporal:    {stack.temporal_address}\n"
                    f"{mail}"
                    f"{page}"
                    f"{scrape}"
                    f"Data:        {escape(str(data_dir))}\n\n"
                    "The live report is kept current (`complaints report` answers at once).\n"
                    "Ctrl-C stops the worker, the customer page, Temporal, PostgreSQL and the mail server.",
                    title="complaints: embedded stack up",
                ))
                # The secrets go to a file only this user can read; the screen shows how to use it, never them.
                env_file = stack.write_env(data_dir / "env")
                print("In another shell:", flush=True)
                print(f"  . {env_file.resolve()}", flush=True)
                print("  .venv/bin/complaints submit examples/late-delivery.json", flush=True)
                await stop.wait()
                console.print("stopping...")
        finally:
            await report_pool.close()
    console.print("stopped.")
