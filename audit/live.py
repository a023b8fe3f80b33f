"""The live report: the figures of ``complaints report`` kept by a consumer of the log, so that the report
answers at once however long the log (migrations/011_live_report.sql).

The consumer, ``report``, folds each batch of events exactly as the full scan does (:class:`ReportBuilder`)
and writes, in the transaction that moves its position, the figures taken so far (one row) and the folded
state of each complaint still open (one row each). Answering reads those rows, settles the open complaints as
the scan settles them at its end, and gives the same figures as a scan of the log up to the same position;
``complaints report --rebuild`` starts the consumer again from the beginning of the log (a test holds all
three equal). Figures by date (``--since``) are not kept: those still read the whole log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg

from audit.report import Report, ReportBuilder
from domain.complaint import Complaint
from eventlog.store import Positioned
from eventlog.subscriptions import Subscription, position
from logs import get_logger

log = get_logger(__name__)

#: The consumer's name in complaint_consumers.
NAME = "report"


async def _fold(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
    """One batch, in the transaction that moves the consumer's position."""
    assert conn is not None, "the live report is an exactly-once consumer"
    ids = sorted({e.record.complaint_id for e in events})
    stored = await conn.fetchval("SELECT figures FROM complaint_report_figures WHERE id = 1")
    report = Report.from_json(stored) if stored is not None else Report()
    rows = await conn.fetch("SELECT complaint_id, state FROM complaint_report_open WHERE complaint_id = ANY($1)", ids)
    builder = ReportBuilder.resume(report, {r["complaint_id"]: Complaint.model_validate(r["state"]) for r in rows})
    for event in events:
        builder.add(event.record)
    await conn.execute("INSERT INTO complaint_report_figures (id, figures) VALUES (1, $1)"
                       " ON CONFLICT (id) DO UPDATE SET figures = excluded.figures", builder.report.to_json())
    still = builder.open_states()
    await conn.execute("DELETE FROM complaint_report_open WHERE complaint_id = ANY($1)",
                       [cid for cid in ids if cid not in still])
    await conn.executemany("INSERT INTO complaint_report_open (complaint_id, state) VALUES ($1, $2)"
                           " ON CONFLICT (complaint_id) DO UPDATE SET state = excluded.state",
                           [(cid, still[cid].model_dump(mode="json")) for cid in ids if cid in still])


def subscription(pool: asyncpg.Pool, *, batch: int = 1000, lag: Callable[[int], None] | None = None) -> Subscription:
    """The live report's consumer (what ``report --follow`` runs, and ``report`` before it answers)."""
    return Subscription(pool, NAME, _fold, transactional=True, batch=batch, lag=lag)


async def live_report(pool: asyncpg.Pool) -> tuple[Report, int]:
    """The figures as of the end of the log now (the consumer catches up first; at once when it is current),
    and how many events they cover."""
    await subscription(pool).catch_up()
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        stored = await conn.fetchval("SELECT figures FROM complaint_report_figures WHERE id = 1")
        rows = await conn.fetch("SELECT complaint_id, state FROM complaint_report_open")
    report = Report.from_json(stored) if stored is not None else Report()
    builder = ReportBuilder.resume(report, {r["complaint_id"]: Complaint.model_validate(r["state"]) for r in rows})
    return builder.finish(), (await position(pool, NAME)).events


@contextlib.asynccontextmanager
async def following(pool: asyncpg.Pool, lag: Callable[[int], None] | None = None
                    ) -> AsyncIterator[asyncio.Task[None]]:
    """Keep the live figures current in the background (woken by every append) until the block exits."""
    stop = asyncio.Event()
    task = asyncio.create_task(subscription(pool, lag=lag).run(stop))

    def ended(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("the live report stopped following the log; `complaints report` still catches it up",
                      error=str(done.exception())[:300])

    task.add_done_callback(ended)
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def rebuild(pool: asyncpg.Pool) -> tuple[Report, int]:
    """Forget the live figures and fold the whole log again."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT restart_complaint_report()")
    return await live_report(pool)
