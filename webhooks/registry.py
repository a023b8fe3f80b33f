"""The webhook subscriptions and what they parked, in PostgreSQL (migrations/012_webhooks.sql)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from domain.events import EVENT_TYPES
from eventlog.store import START, Cursor, PostgresEventStore
from eventlog.subscriptions import advance, behind, position


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    personal: bool

    @property
    def consumer(self) -> str:
        """Its name as a consumer of the log."""
        return f"webhook:{self.id}"

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    @classmethod
    def of(cls, row: Any) -> Webhook:
        return cls(row["id"], row["url"], tuple(row["events"]), row["secret"], row["personal"])


def checked_url(url: str) -> str:
    """An http(s) URL with a host and no credentials in it (they would be stored and shown in clear)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url: {url!r} is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise ValueError("url: credentials in the URL are refused; the signature authenticates each delivery")
    return url


def checked_events(events: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"events: not event types (see domain/events.py): {', '.join(unknown)}")
    return chosen


async def add(pool: asyncpg.Pool, url: str, events: Iterable[str] = (), *, personal: bool = False) -> Webhook:
    """A new subscription, delivering what is appended from now on (``replay_from`` reaches back)."""
    webhook = Webhook(f"wh_{secrets.token_hex(6)}", checked_url(url), checked_events(events),
                      secrets.token_urlsafe(32), personal)
    end = await PostgresEventStore(pool).end()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO complaint_webhooks (id, url, events, secret, personal) VALUES ($1, $2, $3, $4,"
                           " $5)", webhook.id, webhook.url, list(webhook.events), webhook.secret, webhook.personal)
        if end != START:
            await advance(conn, webhook.consumer, START, end, 0)
    return webhook


async def remove(pool: asyncpg.Pool, webhook_id: str) -> bool:
    async with pool.acquire() as conn:
        return str(await conn.execute("DELETE FROM complaint_webhooks WHERE id = $1", webhook_id)) != "DELETE 0"


async def listing(pool: asyncpg.Pool) -> list[Webhook]:
    async with pool.acquire() as conn:
        return [Webhook.of(r) for r in await conn.fetch("SELECT * FROM complaint_webhooks ORDER BY created_at, id")]


async def get(pool: asyncpg.Pool, webhook_id: str) -> Webhook | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM complaint_webhooks WHERE id = $1", webhook_id)
    return Webhook.of(row) if row else None


async def parked(pool: asyncpg.Pool, webhook_id: str) -> list[dict[str, Any]]:
    """What a webhook parked, oldest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT position, complaint_id, attempts, last_error, parked_at"
                                " FROM complaint_webhook_parked WHERE webhook_id = $1 ORDER BY position", webhook_id)
    return [dict(r) for r in rows]


async def status(pool: asyncpg.Pool, webhook: Webhook) -> dict[str, Any]:
    """Where its deliveries stand: events delivered (or parked) so far, events of the log not reached yet,
    and what waits parked."""
    at = await position(pool, webhook.consumer)
    lag = await behind(pool, webhook.consumer)
    waiting = await parked(pool, webhook.id)
    return {"id": webhook.id, "url": webhook.url, "events": list(webhook.events) or "all",
            "personal": webhook.personal, "handled": at.events, "behind": lag, "parked": len(waiting),
            "oldest_parked": waiting[0]["position"] if waiting else None,
            "last_error": waiting[-1]["last_error"] if waiting else None}


async def replay_from(pool: asyncpg.Pool, webhook: Webhook, from_position: int) -> None:
    """Deliver again every event from ``from_position`` on (in global order), forgetting what was parked."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT tx::text::bigint AS tx_id FROM complaint_events WHERE position = $1",
                                  from_position)
        if row is None:
            raise ValueError(f"from: the log has no event at position {from_position}")
        before = Cursor(row["tx_id"], from_position - 1)
        await conn.execute("SELECT rewind_complaint_webhook($1, $2, $3)", webhook.id, before.tx, before.position)
