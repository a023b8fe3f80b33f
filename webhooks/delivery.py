"""Delivering a webhook's events: POST, retry with backoff, park after the budget (see the package's note)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from domain.personal import open_payload
from eventlog.keys import CustomerKeyring
from eventlog.store import Positioned, to_record
from eventlog.subscriptions import Subscription
from logs import get_logger
from webhooks.registry import Webhook, listing
from webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    body,
    delivery_id,
    signature,
)

log = get_logger(__name__)

BEHIND = "parked behind an earlier event of the same complaint"


class Deliverer:
    """One webhook's deliveries: its consumer's handler, and the replay of what it parked."""

    def __init__(self, pool: asyncpg.Pool, webhook: Webhook, *, attempts: int = 8, backoff: float = 1.0,
                 max_backoff: float = 60.0, timeout: float = 10.0, keyring: CustomerKeyring | None = None) -> None:
        if webhook.personal and keyring is None:
            raise ValueError(f"webhook {webhook.id} may see personal fields: it needs the customer keyring")
        self.pool = pool
        self.webhook = webhook
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.keyring = keyring

    def subscription(self, poll_seconds: float = 5.0, lag: Callable[[int], None] | None = None) -> Subscription:
        return Subscription(self.pool, self.webhook.consumer, self.handle, batch=100, poll_seconds=poll_seconds,
                            lag=lag)

    async def handle(self, events: Sequence[Positioned], conn: asyncpg.Connection | None) -> None:
        """A batch: each wanted event delivered or parked, in order (at least once: the consumer moves past
        the batch after this returns)."""
        wanted = [e for e in events if self.webhook.wants(e.record.type)]
        if not wanted:
            return
        blocked = await self._blocked()
        for event in wanted:
            cid = event.record.complaint_id
            if cid in blocked:
                await self._park(event, 0, BEHIND)
                continue
            error = await self._deliver(event)
            if error is not None:
                await self._park(event, self.attempts, error)
                blocked.add(cid)

    async def replay_parked(self) -> tuple[int, int]:
        """Deliver what was parked, oldest first; a complaint whose delivery fails again stays parked from
        there on. Returns (delivered, still parked)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT p.position, e.complaint_id, e.sequence, e.type, e.schema_version, e.occurred_at, e.actor,"
                " e.payload, e.prev_hash, e.hash FROM complaint_webhook_parked p JOIN complaint_events e"
                " ON e.position = p.position WHERE p.webhook_id = $1 ORDER BY p.position", self.webhook.id)
        delivered, failed = 0, set()
        for row in rows:
            event = Positioned(row["position"], to_record(row))
            if event.record.complaint_id in failed:
                continue
            error = await self._deliver(event)
            if error is None:
                delivered += 1
                async with self.pool.acquire() as conn:
                    await conn.execute("DELETE FROM complaint_webhook_parked WHERE webhook_id = $1 AND position = $2",
                                       self.webhook.id, event.position)
            else:
                failed.add(event.record.complaint_id)
                async with self.pool.acquire() as conn:
                    await conn.execute("UPDATE complaint_webhook_parked SET attempts = attempts + $3, last_error = $4"
                                       " WHERE webhook_id = $1 AND position = $2", self.webhook.id, event.position,
                                       self.attempts, error)
        return delivered, len(rows) - delivered

    async def _blocked(self) -> set[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT DISTINCT complaint_id FROM complaint_webhook_parked WHERE webhook_id = $1",
                                    self.webhook.id)
        return {r["complaint_id"] for r in rows}

    async def _park(self, event: Positioned, attempts: int, error: str) -> None:
        log.warning("webhook delivery parked", webhook=self.webhook.id, position=event.position,
                    complaint_id=event.record.complaint_id, attempts=attempts, error=error[:200])
        async with self.pool.acquire() as conn:
            await conn.execute("INSERT INTO complaint_webhook_parked (webhook_id, position, complaint_id, attempts,"
                               " last_error) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", self.webhook.id,
                               event.position, event.record.complaint_id, attempts, error[:500])

    async def _payload(self, event: Positioned) -> dict[str, Any]:
        record = event.record
        if not self.webhook.personal or self.keyring is None:
            return record.payload  # as auditors see it: personal fields sealed
        opener = await self.keyring.opener(None)
        return open_payload(record.type, record.payload, record.complaint_id, record.sequence, opener,
                            on_broken=lambda *_: None)

    async def _deliver(self, event: Positioned) -> str | None:
        """None once the backend answered 2xx; else the last error, after the retry budget."""
        payload = body(self.webhook.id, event.position, event.record, await self._payload(event))
        error = ""
        for attempt in range(1, self.attempts + 1):
            error = await asyncio.to_thread(self._post, event, payload)
            if not error:
                return None
            if attempt < self.attempts:
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
        return error

    def _post(self, event: Positioned, payload: bytes) -> str:
        """One attempt (in a thread): '' when delivered, else what went wrong."""
        timestamp = int(time.time())
        request = urllib.request.Request(self.webhook.url, data=payload, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": "complaints-webhooks/1",
            SIGNATURE_HEADER: signature(self.webhook.secret, timestamp, payload),
            TIMESTAMP_HEADER: str(timestamp),
            DELIVERY_HEADER: delivery_id(self.webhook.id, event.position),
            EVENT_HEADER: event.record.type,
        })
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return "" if 200 <= answer.status < 300 else f"HTTP {answer.status}"
        except urllib.error.HTTPError as refused:
            return f"HTTP {refused.code}"
        except (urllib.error.URLError, OSError) as failed:
            return f"{type(failed).__name__}: {getattr(failed, 'reason', failed)}"


async def run_all(pool: asyncpg.Pool, stop: asyncio.Event, *, keyring: CustomerKeyring | None = None,
                  refresh_seconds: float = 10.0, lag: Callable[[str], Callable[[int], None] | None] | None = None,
                  **options: Any) -> None:
    """Deliver every webhook's events until ``stop`` is set, picking up webhooks added or removed meanwhile.
    ``lag`` gives each webhook's consumer its lag gauge (by the consumer's name)."""
    running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
    try:
        while not stop.is_set():
            current = {w.id: w for w in await listing(pool)}
            for gone in set(running) - set(current):
                task, halt = running.pop(gone)
                halt.set()
                await asyncio.wait([task], timeout=30)
            for webhook_id, webhook in current.items():
                if webhook_id in running and running[webhook_id][0].done():
                    ended = running[webhook_id][0]
                    if not ended.cancelled() and ended.exception() is not None:
                        log.error("webhook deliveries stopped; starting again", webhook=webhook_id,
                                  error=str(ended.exception())[:200])
                if webhook_id not in running or running[webhook_id][0].done():
                    if webhook.personal and keyring is None:
                        log.error("webhook skipped: it may see personal fields and no master key is set",
                                  webhook=webhook_id)
                        continue
                    halt = asyncio.Event()
                    deliverer = Deliverer(pool, webhook, keyring=keyring, **options)
                    gauge = lag(webhook.consumer) if lag else None
                    running[webhook_id] = (asyncio.create_task(deliverer.subscription(lag=gauge).run(halt)), halt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh_seconds)
    finally:
        for _, halt in running.values():
            halt.set()
        if running:
            await asyncio.wait([task for task, _ in running.values()], timeout=30)
