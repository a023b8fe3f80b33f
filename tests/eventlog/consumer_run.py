"""A consumer in a process of its own, for tests/eventlog/test_subscriptions.py to kill: ``python -m
tests.eventlog.consumer_run DSN NAME MODE DIE_AFTER OUT``. MODE ``exactly`` projects each event into the
table ``projected`` in the transaction that moves the position; ``least`` appends each event's position to
the file OUT. After DIE_AFTER events handled in all (0: never) the process kills itself with SIGKILL: in the
middle of a batch (exactly), or after the handler and before the position moves (least)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import asyncpg

from eventlog.connect import create_pool
from eventlog.store import Positioned
from eventlog.subscriptions import Subscription


async def main(dsn: str, name: str, mode: str, die_after: int, out: str) -> None:
    pool = await create_pool(dsn, max_size=2)
    handled = 0

    async def exactly(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        nonlocal handled
        assert conn is not None
        for event in events:
            await conn.execute("INSERT INTO projected (position, complaint_id, sequence) VALUES ($1, $2, $3)",
                               event.position, event.record.complaint_id, event.record.sequence)
            handled += 1
            if handled == die_after:
                os.kill(os.getpid(), signal.SIGKILL)

    async def least(events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        nonlocal handled
        with open(out, "a", encoding="utf-8") as file:
            for event in events:
                file.write(f"{event.position}\n")
        handled += len(events)
        if die_after and handled >= die_after:
            os.kill(os.getpid(), signal.SIGKILL)

    subscription = Subscription(pool, name, exactly if mode == "exactly" else least,
                                transactional=mode == "exactly", batch=10)
    try:
        await subscription.catch_up()
    finally:
        await pool.close()


if __name__ == "__main__":
    dsn, name, mode, die_after, out = sys.argv[1:6]
    asyncio.run(main(dsn, name, mode, int(die_after), out))
