"""Catch-up subscriptions over the log: from a position, in global order, woken by LISTEN/NOTIFY, with each
consumer's position kept in PostgreSQL (migrations/010_subscriptions.sql).

A :class:`Subscription` reads what follows its consumer's position in global order (only below the horizon,
so it never skips an event a transaction still running will commit; see :class:`~eventlog.store.Cursor`),
hands it to the consumer's handler batch by batch, and moves the position past the batch:

- **exactly once** (``transactional=True``): the handler gets the connection and writes to this database in
  the same transaction that moves the position. A crash mid-batch rolls both back; the batch is handled
  again, whole, by the next run. Two instances of one consumer cannot both apply a batch: the position moves
  only from where the batch was read (a compare-and-set, done first, which locks the consumer's row), so the
  second waits for the first and is then refused before its handler runs.
- **at least once** (the default): the handler does its work elsewhere (a webhook, a mail), and the position
  is moved after it returns. A crash between the two hands the batch over again: handlers are idempotent by
  the event's identity, its (complaint id, sequence), or its position.

Between batches the subscription waits for the notification the store sends after every append commits
(:data:`~eventlog.store.CHANNEL`), or for ``poll_seconds`` at most: a notification can be missed (a worker
that died between its commit and its notification), an event never is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from eventlog.connect import CONNECTION_ERRORS
from eventlog.errors import EventLogError
from eventlog.store import CHANNEL, HORIZON, START, Cursor, Positioned, PostgresEventStore

Handler = Callable[[Sequence[Positioned], asyncpg.Connection | None], Awaitable[None]]


class ConsumerMovedOn(EventLogError):
    """Another instance of the consumer moved its position first: this batch was handled there."""


@dataclass(frozen=True)
class ConsumerPosition:
    name: str
    cursor: Cursor
    events: int


async def position(pool: asyncpg.Pool, name: str) -> ConsumerPosition:
    """Where ``name`` stands (at the start when it never ran)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT tx, position, events FROM complaint_consumers WHERE name = $1", name)
    if row is None:
        return ConsumerPosition(name, START, 0)
    return ConsumerPosition(name, Cursor(row["tx"], row["position"]), row["events"])


async def behind(pool: asyncpg.Pool, name: str) -> int:
    """How many events the log holds that consumer ``name`` has not handled yet (below the horizon)."""
    at = (await position(pool, name)).cursor
    async with pool.acquire() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM complaint_events WHERE (tx, position) > ($1::text::xid8, $2::bigint)"
            f" AND tx < {HORIZON}", str(at.tx), at.position))


async def advance(conn: asyncpg.Connection, name: str, start: Cursor, to: Cursor, events: int) -> None:
    """Move ``name`` from ``start`` to ``to`` (in the caller's transaction, when it has one)."""
    try:
        await conn.execute("SELECT advance_complaint_consumer($1, $2, $3, $4, $5, $6)", name, start.tx,
                           start.position, to.tx, to.position, events)
    except asyncpg.PostgresError as error:
        if getattr(error, "sqlstate", None) == "CE021":
            raise ConsumerMovedOn(str(error)) from error
        raise


class Subscription:
    """One consumer of the log, named ``name``: see the module's note."""

    def __init__(self, pool: asyncpg.Pool, name: str, handler: Handler, *, transactional: bool = False,
                 batch: int = 500, poll_seconds: float = 5.0, lag: Callable[[int], None] | None = None) -> None:
        """``lag``, when given, is told after every catch-up of :meth:`run` how many events the consumer has
        not handled yet (its lag metric)."""
        if not name or len(name) > 200:
            raise ValueError("a consumer's name is 1 to 200 characters")
        self.pool = pool
        self.store = PostgresEventStore(pool)
        self.name = name
        self.handler = handler
        self.transactional = transactional
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.lag = lag

    async def once(self) -> int:
        """Handle one batch of what follows the consumer's position; returns how many events (0: caught up)."""
        start = (await position(self.pool, self.name)).cursor
        events = await self.store.read_all(start, self.batch)
        if not events:
            return 0
        end = events[-1].cursor
        async with self.pool.acquire() as conn:
            if self.transactional:
                async with conn.transaction():
                    # The position first: it locks the consumer's row, so another instance at the same
                    # place waits here, and is refused once this commits, before it handles anything.
                    await advance(conn, self.name, start, end, len(events))
                    await self.handler(events, conn)
            else:
                await self.handler(events, None)
                await advance(conn, self.name, start, end, len(events))
        return len(events)

    async def behind(self) -> int:
        return await behind(self.pool, self.name)

    async def catch_up(self) -> int:
        """Handle batches until caught up; returns how many events this instance handled. A batch another
        instance handled first is left to it, and this one goes on from where that one left."""
        total = 0
        while True:
            try:
                handled = await self.once()
            except ConsumerMovedOn:
                continue
            if not handled:
                return total
            total += handled

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Catch up, then wait for appends (notified at their commit) and handle them, until ``stop`` is set.
        A database that goes away is waited out, and a batch another instance handled first is left to it; a
        handler's error ends the run (the position stays before the batch that failed)."""
        stop = stop or asyncio.Event()
        woken = asyncio.Event()

        def wake(*_: object) -> None:
            woken.set()

        while not stop.is_set():
            listener: asyncpg.Connection | None = None
            try:
                listener = await self.pool.acquire()
                await listener.add_listener(CHANNEL, wake)
                while not stop.is_set():
                    woken.clear()
                    await self.catch_up()
                    if self.lag is not None:
                        self.lag(await self.behind())
                    await _first(woken.wait(), stop.wait(), timeout=self.poll_seconds)
            except CONNECTION_ERRORS:
                await _first(stop.wait(), timeout=1.0)
            finally:
                if listener is not None:
                    with contextlib.suppress(*CONNECTION_ERRORS):
                        await listener.remove_listener(CHANNEL, wake)
                    await self.pool.release(listener)


async def _first(*waits: Awaitable[object], timeout: float) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
